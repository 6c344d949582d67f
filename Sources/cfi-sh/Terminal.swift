// The terminal: whether a stream is one, colours, and unbuffered writes.

import Foundation

/// Where output goes; writes are whole strings, so lines from different tasks don't mix.
enum Stream {
  case standardOutput, standardError

  var handle: FileHandle { self == .standardOutput ? .standardOutput : .standardError }
  var descriptor: Int32 { self == .standardOutput ? 1 : 2 }

  /// Whether the stream is a terminal.
  var isTerminal: Bool { isatty(descriptor) == 1 }

  func write(_ text: String) {
    handle.write(Data(text.utf8))
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
