// The terminal: whether a stream is one, colours, and unbuffered writes that survive a closed pipe.

import Foundation

/// Where output goes; writes are whole strings, so lines from different tasks don't mix.
enum Stream {
  case standardOutput, standardError

  var handle: FileHandle { self == .standardOutput ? .standardOutput : .standardError }
  var descriptor: Int32 { self == .standardOutput ? 1 : 2 }

  /// Says `message` on stderr, as cfi-sh's own line: `cfi-sh: message`.
  static func say(_ message: String) { standardError.write("cfi-sh: \(message)\n") }

  /// Whether the stream is a terminal.
  var isTerminal: Bool { isatty(descriptor) == 1 }

  /// Writes all of `text`, with write(2): FileHandle traps on EPIPE and EIO, which a closed
  /// pipe (`| head`) and a hung-up terminal give. A broken stdout stops the run
  /// (`StopSignals`) and is written no more; a failing stderr has nowhere to say so.
  func write(_ text: String) {
    if self == .standardOutput, StopSignals.shared.isOutputBroken { return }
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
      let written = bytes.withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress, $0.count) }
      if written >= 0 {
        bytes = bytes.dropFirst(written)
      } else if errno != EINTR {
        if errno == EPIPE, self == .standardOutput { StopSignals.shared.outputBroken() }
        return
      }
    }
  }
}

/// ANSI styles, applied only when colours are on.
struct Style {
  var enabled: Bool

  /// Colours are on for a terminal, unless NO_COLOR is set (https://no-color.org) or TERM is dumb.
  static func forStream(_ stream: Stream) -> Style {
    let environment = ProcessInfo.processInfo.environment
    return Style(enabled: stream.isTerminal && environment["NO_COLOR"] == nil && environment["TERM"] != "dumb")
  }

  func apply(_ text: String, _ code: String) -> String {
    enabled ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
  }
  func bold(_ text: String) -> String { apply(text, "1") }
  func dim(_ text: String) -> String { apply(text, "2") }
  func red(_ text: String) -> String { apply(text, "31") }
  func green(_ text: String) -> String { apply(text, "32") }
  func yellow(_ text: String) -> String { apply(text, "33") }
  func magenta(_ text: String) -> String { apply(text, "35") }
  func cyan(_ text: String) -> String { apply(text, "36") }
}
