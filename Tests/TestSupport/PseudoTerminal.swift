// Test support for interactive use: runs a program on a pseudo-terminal and drives it like a
// user at a keyboard (typing lines, Ctrl-C, Ctrl-D), waiting for what it prints. For testing
// the REPL, line editing and interrupt handling, which only happen when stdin is a terminal.

import Dispatch
import Foundation
import Glibc
import Synchronization

/// A program running on a pseudo-terminal, driven like a user at a keyboard.
///
/// The program runs in its own session with the terminal as its controlling terminal and its
/// process group in the foreground, so the terminal driver turns Ctrl-C into SIGINT for it (and
/// for its children in the same group) exactly as a real terminal does. The terminal starts in
/// the kernel's defaults (cooked mode with echo, ISIG, ICRNL and ONLCR), `columns` × `rows`.
///
/// A reader thread (a plain thread, so a blocking read never holds a Swift concurrency thread)
/// collects the output. `expect` and `waitForExit` block the calling thread, polling every
/// 10 ms, until what they wait for happens or their timeout passes.
///
/// Text for matching (`expect`, `transcript`) is the output with escape sequences (CSI, OSC,
/// DCS and the like, and two-byte ESC sequences), `\r` and the other control characters except
/// `\n` and `\t` removed. Backspaces are removed too, not applied: `abc\u{8} \u{8}` reads as
/// `abc `. The text therefore only ever grows, so a match can never be taken back.
///
/// Sendable without `@unchecked`: the state shared with the reader thread is behind `Mutex`es,
/// the rest is immutable, and the descriptors are closed only after the reader has stopped.
public final class PseudoTerminal: Sendable {
  /// Thrown when what `expect` or `waitForExit` waits for does not happen in time.
  public struct Timeout: Error, CustomStringConvertible {
    /// The text awaited, or nil when waiting for the program to exit.
    public let expected: String?
    public let timeout: Duration
    /// True when `expect` gave up early because the program closed the terminal (it exited,
    /// usually), so the text could no longer come.
    public let terminalClosed: Bool
    /// The end of the transcript (about 2000 characters) when giving up.
    public let transcriptTail: String

    public var description: String {
      let what = expected.map { "for \($0.debugDescription)" } ?? "for the program to exit"
      let why = terminalClosed ? "the terminal closed while waiting" : "timed out after \(timeout) waiting"
      return "\(why) \(what); the terminal's last output:\n\(transcriptTail)"
    }
  }

  /// The program's process ID; also its session and process group ID.
  public let pid: Int32
  private let master: Int32
  /// What the program sees of this machine, kept until the terminal goes.
  private let machine: IsolatedMachine
  private let output = Output()
  private let readerFinished = DispatchSemaphore(value: 0)
  private let child = Mutex(ChildState())

  private struct ChildState {
    /// Exit status (or 128+signal) once the program is known to have ended.
    var status: Int32?
    /// Reaped with waitpid: until then the zombie keeps `pid` and the process group ID from
    /// being reused, so signalling the group is safe.
    var reaped = false
    var masterClosed = false
  }

  /// Starts `executable` on a new pseudo-terminal. The environment is this process's, with
  /// TERM=xterm-256color (COLUMNS and LINES dropped so the window size rules), on an
  /// `IsolatedMachine`, then `environment`.
  public init(
    _ executable: URL, arguments: [String] = [], environment: [String: String] = [:], columns: Int = 200,
    rows: Int = 50
  ) throws {
    var master: Int32 = -1
    var slave: Int32 = -1
    var name = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    var size = winsize(ws_row: UInt16(rows), ws_col: UInt16(columns), ws_xpixel: 0, ws_ypixel: 0)
    guard openpty(&master, &slave, &name, nil, &size) == 0 else { throw Self.systemError("openpty") }
    // openpty gives no O_CLOEXEC; a process spawned by another thread in between may inherit
    // these (Foundation's Process and Subprocess close stray descriptors in their children).
    _ = fcntl(master, F_SETFD, FD_CLOEXEC)
    _ = fcntl(slave, F_SETFD, FD_CLOEXEC)
    // The slave stays open until the child has opened its own, so the terminal never hangs up.
    defer { close(slave) }

    var base = ProcessInfo.processInfo.environment
    base["COLUMNS"] = nil
    base["LINES"] = nil
    base["TERM"] = "xterm-256color"
    let machine = try IsolatedMachine()
    self.machine = machine
    let env = machine.environment(environment, base: base)

    do {
      pid = try Self.spawn(executable.path, arguments: arguments, environment: env, terminal: name)
    } catch {
      close(master)
      throw error
    }
    self.master = master

    let fd = master
    let thread = Thread { [output, readerFinished] in
      Self.read(fd, into: output)
      readerFinished.signal()
    }
    thread.name = "PseudoTerminal reader"
    thread.start()
  }

  deinit { terminate() }

  /// Types raw text (UTF-8) at the terminal. Does nothing after `terminate()` (but must not
  /// race with it: the descriptor may be closed under a concurrent write).
  ///
  /// Blocks if the terminal's input buffer is full because the program is not reading: keep
  /// what is typed ahead of the program short (the line buffer holds 4095 bytes).
  public func send(_ text: String) {
    guard !child.withLock({ $0.masterClosed }) else { return }
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
      let written = bytes.withUnsafeBytes { write(master, $0.baseAddress, $0.count) }
      if written > 0 {
        bytes = bytes.dropFirst(written)
      } else if written < 0 && errno == EINTR {
        continue
      } else {
        return  // the terminal is gone (EIO): there is nobody left to type to
      }
    }
  }

  /// Types `text` and Return (`\r`, which the terminal turns into `\n`).
  public func sendLine(_ text: String) { send(text + "\r") }

  /// Ctrl-C (0x03): the terminal driver sends SIGINT to the foreground process group.
  public func interrupt() { send("\u{3}") }

  /// Ctrl-D (0x04): end of input when typed on an empty line in cooked mode.
  public func endOfInput() { send("\u{4}") }

  /// Waits until the terminal text after the last match contains `needle`; returns the text from
  /// the previous mark up to and including the match, and moves the mark past it.
  ///
  /// Throws `Timeout` (with the end of the transcript in its description) after `timeout`, or as
  /// soon as the terminal closes without the text having appeared.
  @discardableResult
  public func expect(_ needle: String, timeout: Duration = .seconds(30)) throws -> String {
    let pattern = Array(needle.utf8)
    let deadline = ContinuousClock.now + timeout
    // Where the previous poll's search could resume: a match must end past what was searched.
    var searched: (mark: Int, end: Int)?
    while true {
      let (found, closed) = output.state.withLock { state -> (String?, Bool) in
        var start = state.mark
        if let searched, searched.mark == state.mark {
          start = max(start, searched.end - pattern.count + 1)
        }
        start = min(start, state.text.count)
        searched = (state.mark, state.text.count)
        guard let match = state.text[start...].firstRange(of: pattern) else { return (nil, state.closed) }
        let text = String(decoding: state.text[state.mark..<match.upperBound], as: UTF8.self)
        state.mark = match.upperBound
        return (text, state.closed)
      }
      if let found { return found }
      // Text read before the reader saw the close was searched in this same poll.
      if closed || ContinuousClock.now >= deadline {
        throw Timeout(expected: needle, timeout: timeout, terminalClosed: closed, transcriptTail: tail())
      }
      usleep(10_000)
    }
  }

  /// Everything the program printed so far, escape sequences and control characters other than
  /// `\n` and `\t` removed (see the type's documentation).
  public var transcript: String { output.state.withLock { String(decoding: $0.text, as: UTF8.self) } }

  /// Everything the program printed so far, as written (escape sequences, `\r\n`), for debugging.
  public var rawTranscript: String { output.state.withLock { String(decoding: $0.raw, as: UTF8.self) } }

  /// Waits for the program to exit and returns its exit status, or 128+signal if a signal ended
  /// it; throws `Timeout`. Also waits (briefly) for the rest of its output to be read.
  public func waitForExit(timeout: Duration = .seconds(30)) throws -> Int32 {
    let deadline = ContinuousClock.now + timeout
    while true {
      if let status = exitStatus() {
        // Normally the terminal closes as the program exits; a descendant holding it open
        // (a background job) should not hold up the caller for long.
        let drained = min(deadline, ContinuousClock.now + .seconds(2))
        while !output.state.withLock({ $0.closed }) && ContinuousClock.now < drained { usleep(10_000) }
        return status
      }
      if ContinuousClock.now >= deadline {
        throw Timeout(expected: nil, timeout: timeout, terminalClosed: false, transcriptTail: tail())
      }
      usleep(10_000)
    }
  }

  /// Kills the program (SIGKILL to its process group) if still running, reaps it, stops the
  /// reader and closes the terminal. Idempotent; also done in deinit.
  public func terminate() {
    child.withLock { state in
      guard !state.reaped else { return }
      killpg(pid, SIGKILL)
      var status: Int32 = 0
      var result: Int32
      repeat { result = waitpid(pid, &status, 0) } while result < 0 && errno == EINTR
      state.reaped = true
      if state.status == nil {
        // Same encoding as the shell's $?; -1 if someone else reaped it (should not happen).
        state.status = result == pid ? (status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + status & 0x7f) : -1
      }
    }
    let closing = child.withLock { state in
      defer { state.masterClosed = true }
      return !state.masterClosed
    }
    guard closing else { return }
    output.state.withLock { $0.stopRequested = true }
    readerFinished.wait()
    close(master)
  }

  // MARK: Internals

  /// The program's exit status if it has ended, without reaping it (see `ChildState.reaped`).
  private func exitStatus() -> Int32? {
    child.withLock { state in
      if let status = state.status { return status }
      var info = siginfo_t()
      var result: Int32
      repeat {
        result = waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT)
      } while result < 0 && errno == EINTR
      if result < 0 {
        state.status = -1  // ECHILD: reaped by someone else; the status is lost
      } else if info._sifields._sigchld.si_pid == pid {
        let value = info._sifields._sigchld.si_status
        state.status = info.si_code == Int32(CLD_EXITED) ? value : 128 + value
      }
      return state.status
    }
  }

  private func tail() -> String { String(transcript.suffix(2000)) }

  private static func systemError(_ call: String) -> NSError {
    let code = errno
    return NSError(
      domain: NSPOSIXErrorDomain, code: Int(code),
      userInfo: [NSLocalizedDescriptionKey: "\(call): \(String(cString: strerror(code)))"])
  }

  /// glibc's POSIX_SPAWN_SETSID (spawn.h, only declared under _GNU_SOURCE, which Swift's Glibc
  /// module does not define).
  private static let spawnSetSession: Int32 = 0x80

  /// `posix_spawn_file_actions_addclosefrom_np` (glibc 2.34), likewise hidden; nil if missing.
  private static let addCloseFrom:
    (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
      guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return nil }
      return unsafeBitCast(
        symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    }()

  /// Spawns the program in a new session whose controlling terminal is `terminal`: after
  /// setsid, the child opens the terminal by name (without O_NOCTTY) as its standard input,
  /// which makes it the controlling terminal with the child's group in the foreground.
  private static func spawn(
    _ path: String, arguments: [String], environment: [String: String], terminal: [CChar]
  ) throws -> Int32 {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, terminal, O_RDWR, 0)
    posix_spawn_file_actions_adddup2(&actions, 0, 1)
    posix_spawn_file_actions_adddup2(&actions, 0, 2)
    // Nothing else leaks in: a pipe end inherited from another test's program could keep that
    // test waiting for end of file as long as this program runs.
    _ = addCloseFrom?(&actions, 3)

    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var allSignals = sigset_t()
    sigfillset(&allSignals)
    var noSignals = sigset_t()
    sigemptyset(&noSignals)
    // Default dispositions and nothing blocked, whatever the test runner ignores or blocks.
    posix_spawnattr_setsigdefault(&attributes, &allSignals)
    posix_spawnattr_setsigmask(&attributes, &noSignals)
    posix_spawnattr_setflags(
      &attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | spawnSetSession))

    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer { (argv + envp).forEach { free($0) } }
    var pid: Int32 = 0
    let result = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
    guard result == 0 else {
      errno = result
      throw systemError("posix_spawn \(path)")
    }
    return pid
  }

  /// Reads the terminal until it closes (EIO once no process has the slave side open) or
  /// `terminate` asks the reader to stop.
  private static func read(_ master: Int32, into output: Output) {
    var buffer = [UInt8](repeating: 0, count: 4096)
    while !output.state.withLock({ $0.stopRequested }) {
      var descriptor = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
      let ready = poll(&descriptor, 1, 50)
      if ready == 0 || (ready < 0 && errno == EINTR) { continue }
      guard ready > 0 else { break }
      let count = buffer.withUnsafeMutableBytes { Glibc.read(master, $0.baseAddress, $0.count) }
      if count > 0 {
        output.state.withLock { $0.append(buffer[..<count]) }
      } else if count < 0 && errno == EINTR {
        continue
      } else {
        break
      }
    }
    output.state.withLock { $0.closed = true }
  }
}

/// The output shared between the reader thread and the callers.
private final class Output: Sendable {
  struct State {
    var raw: [UInt8] = []
    /// `raw` without escape sequences and control characters; only ever grows.
    var text: [UInt8] = []
    var stripper = EscapeStripper()
    /// Where the next `expect` starts looking, in `text`.
    var mark = 0
    /// The reader has stopped: the terminal closed, or `stopRequested`.
    var closed = false
    var stopRequested = false

    mutating func append(_ bytes: ArraySlice<UInt8>) {
      raw.append(contentsOf: bytes)
      for byte in bytes { stripper.feed(byte, into: &text) }
    }
  }

  let state = Mutex(State())
}

/// Removes escape sequences and control characters from terminal output, a byte at a time, so a
/// sequence split between two reads is still recognised (a simplified ECMA-48 / VT500 parser).
private struct EscapeStripper {
  private enum Mode {
    case text
    /// After ESC.
    case escape
    /// ESC and intermediate bytes (e.g. `ESC ( B`), up to a final byte.
    case escapeIntermediate
    /// CSI (`ESC [`): parameters and intermediates up to a final byte in 0x40–0x7E.
    case controlSequence
    /// OSC, DCS, SOS, PM or APC: up to BEL or ST (`ESC \`).
    case string
    /// ESC inside a string: `\` ends it, anything else starts a new sequence.
    case stringEscape
  }

  private var mode = Mode.text

  private static let escape: UInt8 = 0x1B
  /// CAN and SUB abort a sequence.
  private static let cancel: Set<UInt8> = [0x18, 0x1A]

  mutating func feed(_ byte: UInt8, into text: inout [UInt8]) {
    switch mode {
    case .text:
      if byte == Self.escape { mode = .escape } else { Self.emit(byte, into: &text) }
    case .escape, .escapeIntermediate, .controlSequence:
      if byte == Self.escape {
        mode = .escape
      } else if Self.cancel.contains(byte) {
        mode = .text
      } else if byte < 0x20 {
        Self.emit(byte, into: &text)  // controls inside a sequence take effect (a real \n stays)
      } else {
        mode = next(after: byte)
      }
    case .string:
      if byte == Self.escape {
        mode = .stringEscape
      } else if byte == 0x07 || Self.cancel.contains(byte) {
        mode = .text
      }
    case .stringEscape:
      if byte == UInt8(ascii: "\\") {
        mode = .text
      } else {
        mode = .escape
        feed(byte, into: &text)
      }
    }
  }

  /// The mode after a byte from 0x20 up within an escape or control sequence.
  private func next(after byte: UInt8) -> Mode {
    switch mode {
    case .escape:
      switch byte {
      case UInt8(ascii: "["): return .controlSequence
      case UInt8(ascii: "]"), UInt8(ascii: "P"), UInt8(ascii: "X"), UInt8(ascii: "^"), UInt8(ascii: "_"):
        return .string
      case 0x20...0x2F: return .escapeIntermediate
      default: return .text  // a final byte: a two-byte sequence such as ESC 7 or ESC =
      }
    case .escapeIntermediate:
      return (0x20...0x2F).contains(byte) ? .escapeIntermediate : .text
    case .controlSequence:
      return (0x40...0x7E).contains(byte) ? .text : .controlSequence
    case .text, .string, .stringEscape:
      return mode
    }
  }

  /// Keeps printable text (including UTF-8), `\n` and `\t`; drops `\r`, backspace, BEL and the
  /// other control characters.
  private static func emit(_ byte: UInt8, into text: inout [UInt8]) {
    if byte >= 0x20 && byte != 0x7F || byte == 0x0A || byte == 0x09 { text.append(byte) }
  }
}
