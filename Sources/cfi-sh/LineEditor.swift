// LineEditor: the interactive shell's line editing, on GNU readline (Sources/CReadline).
//
// What it owns:
// - readline's state, which is global to the process: one LineEditor per process, and every
//   readline call goes through its one serial queue (so one thread at a time);
// - the terminal while a read() is pending: readline puts it in raw mode for the prompt and
//   gives it back in cooked mode before read() returns, so Ctrl-C raises SIGINT normally
//   while the caller runs the statement;
// - the history file: loaded at init, appended to (and truncated) by addHistory;
// - LC_CTYPE: set from the environment at init (C.UTF-8 if that isn't UTF-8), as every
//   shell does, so readline edits multibyte characters as characters.
//
// What it must not do: install or change signal handlers (the caller owns signals and routes
// SIGINT to interrupt(); readline's own handlers are turned off), change the environment
// (readline's LINES/COLUMNS export is turned off), touch the terminal between reads, or block
// Swift's cooperative thread pool (the poll loop runs on the queue's own thread). It is not
// used when stdin is not a terminal: the caller reads plain lines then.

// readline's C globals (rl_point, history_length, ...) are shared mutable state to Swift 6;
// @preconcurrency accepts the references. They are sound: every one is made on `queue`.
@preconcurrency import CReadline
import Dispatch
import Foundation
import Synchronization

/// What one read from the terminal gave.
enum LineInput: Equatable, Sendable {
  case line(String)
  case interrupted
  case endOfInput
}

/// A readline-backed line editor for the interactive shell.
///
/// `@unchecked Sendable` is sound because the only shared Swift state is `state` (behind a
/// Mutex) and the immutable descriptors, queue and paths; readline's own state is touched only
/// on `queue`, a serial queue, one work item at a time.
final class LineEditor: @unchecked Sendable {
  /// Completion: given the whole line buffer, the start/end offsets (UTF-8) of the word being
  /// completed and that word, return candidates (full replacements for the word).
  typealias Completer = @Sendable (_ line: String, _ start: Int, _ end: Int, _ word: String) -> [String]

  /// The completer readline's C completion hook calls (a C function pointer can't capture).
  /// `nonisolated(unsafe)` is sound: it is set once, in init, on `queue`, and read only by
  /// readline's completion hook, which runs on `queue` inside read().
  nonisolated(unsafe) private static var completer: Completer?
  /// What the line handler was given in the current read (nil: nothing yet). Written by the C
  /// line handler and read by the poll loop, both on `queue` inside read().
  nonisolated(unsafe) private static var delivered: LineInput?

  private struct State {
    /// Whether a read() is pending (from the call until it returns): interrupt() wakes only then.
    var reading = false
    var closed = false
  }

  /// Bytes on the self-pipe that wake the poll loop.
  private enum Wake: UInt8 {
    case interrupt = 0x69  // "i"
    case resize = 0x77  // "w"
  }

  private let queue = DispatchQueue(label: "cfi-sh.line-editor")
  private let state = Mutex(State())
  /// The self-pipe: interrupt() and the SIGWINCH source write, the poll loop reads. Both ends
  /// non-blocking, so a writer never waits.
  private let wakeRead: Int32
  private let wakeWrite: Int32
  private let historyFile: String?
  private let historyLimit: Int
  private let resizeSource: any DispatchSourceSignal

  init(historyFile: String?, historyLimit: Int = 1000, completer: @escaping Completer) {
    self.historyFile = historyFile
    self.historyLimit = max(historyLimit, 1)
    var ends: [Int32] = [-1, -1]
    if pipe(&ends) != 0 {
      fatalError("LineEditor: pipe: \(String(cString: strerror(errno)))")
    }
    for end in ends {
      _ = fcntl(end, F_SETFD, FD_CLOEXEC)
      _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
    }
    wakeRead = ends[0]
    wakeWrite = ends[1]
    resizeSource = DispatchSource.makeSignalSource(signal: SIGWINCH, queue: .global())
    queue.sync { setUp(completer: completer) }
    resizeSource.setEventHandler { [weak self] in self?.wake(.resize) }
    resizeSource.activate()
  }

  deinit {
    resizeSource.cancel()
    Foundation.close(wakeRead)
    Foundation.close(wakeWrite)
  }

  /// Readline's configuration, once per process. Runs on `queue`.
  private func setUp(completer: @escaping Completer) {
    // Editing multibyte text needs a UTF-8 LC_CTYPE; the environment's, else C.UTF-8.
    setlocale(LC_CTYPE, "")
    if let codeset = nl_langinfo(nl_item(CODESET)), String(cString: codeset) != "UTF-8" {
      setlocale(LC_CTYPE, "C.UTF-8")
    }
    Readline.configure()
    LineEditor.completer = completer
    rl_attempted_completion_function = { text, start, end in
      LineEditor.complete(text: text, start: start, end: end)
    }
    using_history()
    stifle_history(Int32(clamping: historyLimit))
    if let historyFile { _ = read_history(historyFile) }
  }

  /// Reads one line with the prompt. Ctrl-C (via interrupt()) clears the line being edited,
  /// prints "^C" and a newline, returns .interrupted. Ctrl-D on an empty line prints a newline
  /// and returns .endOfInput (so does a hung-up terminal, or a read after close()). Invisible
  /// sequences in the prompt (colours) must be bracketed by "\u{01}" and "\u{02}" so readline
  /// can measure it. A pasted block (bracketed paste) comes back as one line with its newlines.
  /// One read at a time.
  func read(prompt: String) async -> LineInput {
    let started = state.withLock { state -> Bool in
      if state.closed { return false }
      precondition(!state.reading, "LineEditor.read: a read is already pending")
      state.reading = true
      drainWakeups()  // wake-ups from before this read are stale
      return true
    }
    guard started else { return .endOfInput }
    return await withTaskCancellationHandler {
      await withCheckedContinuation { continuation in
        queue.async {
          let input = self.readOnQueue(prompt: prompt)
          self.state.withLock { $0.reading = false }
          continuation.resume(returning: input)
        }
      }
    } onCancel: {
      interrupt()
    }
  }

  /// Wakes a pending read() as if Ctrl-C was pressed; safe to call from any thread or a signal
  /// source handler (not from a C signal handler: it takes a lock). Does nothing when no read
  /// is pending.
  func interrupt() {
    wake(.interrupt)
  }

  /// Adds a line to the in-memory history and appends it to the history file right away (file
  /// created with mode 0600; truncated to historyLimit entries with history_truncate_file).
  /// Skips empty (or all-blank) lines and a line equal to the previous entry. Call it between
  /// reads: while a read is pending it waits for that read to finish.
  func addHistory(_ line: String) {
    guard !line.allSatisfy(\.isWhitespace) else { return }
    queue.sync {
      if history_length > 0, let last = history_get(history_base + history_length - 1),
        let text = last.pointee.line, String(cString: text) == line
      {
        return
      }
      add_history(line)
      guard let historyFile else { return }
      // append_history opens the file without O_CREAT: make it first, private.
      let descriptor = open(historyFile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
      guard descriptor >= 0 else { return }
      Foundation.close(descriptor)
      _ = append_history(1, historyFile)
      _ = history_truncate_file(historyFile, Int32(clamping: historyLimit))
    }
  }

  /// Restores the terminal (call at exit). A pending read is interrupted first; reads after
  /// close() return .endOfInput.
  func close() {
    interrupt()
    queue.sync { Readline.removeHandler() }
    state.withLock { state in
      state.closed = true
    }
    resizeSource.cancel()
  }

  // MARK: - On the queue

  /// The poll loop of one read: feeds readline a character whenever stdin has one, and handles
  /// wake-ups from the self-pipe. Runs on `queue`.
  private func readOnQueue(prompt: String) -> LineInput {
    LineEditor.delivered = nil
    Readline.resetScreenSize()  // the window may have changed since the last read
    rl_callback_handler_install(prompt) { line in
      // Remove the handler here, not after rl_callback_read_char returns: readline installs
      // the prompt again right after calling a handler that didn't.
      rl_callback_handler_remove()
      LineEditor.delivered = line.map { .line(String(cString: $0)) } ?? .endOfInput
      free(line)
    }
    var descriptors = [pollfd(fd: 0, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
    while true {
      if let input = LineEditor.delivered {
        // End the prompt's line: readline does it itself only when bracketed paste is on.
        if input == .endOfInput && !Readline.bracketedPaste { Readline.write("\n") }
        return input
      }
      if poll(&descriptors, 2, -1) < 0 {
        if errno == EINTR { continue }
        Readline.removeHandler()
        return .endOfInput
      }
      let wakeups = descriptors[1].revents & Int16(POLLIN) != 0 ? drainWakeups() : []
      if wakeups.contains(.resize) { rl_resize_terminal() }
      if wakeups.contains(.interrupt) {
        Readline.clearLine()
        Readline.write("^C\n")
        Readline.removeHandler()
        return .interrupted
      }
      let events = descriptors[0].revents
      if events & Int16(POLLIN) != 0 {
        rl_callback_read_char()
      } else if events & Int16(POLLHUP | POLLERR | POLLNVAL) != 0 {
        Readline.removeHandler()  // the terminal is gone
        return .endOfInput
      }
    }
  }

  /// Empties the self-pipe and says what was in it.
  @discardableResult
  private func drainWakeups() -> Set<Wake> {
    var found: Set<Wake> = []
    var buffer = [UInt8](repeating: 0, count: 64)
    while true {
      let count = buffer.withUnsafeMutableBytes { Foundation.read(wakeRead, $0.baseAddress, $0.count) }
      if count > 0 {
        for byte in buffer[..<count] { if let wake = Wake(rawValue: byte) { found.insert(wake) } }
      } else if count < 0 && errno == EINTR {
        continue
      } else {
        return found  // empty (EAGAIN)
      }
    }
  }

  /// Writes a wake-up byte, if a read is pending.
  private func wake(_ wake: Wake) {
    state.withLock { state in
      guard state.reading, !state.closed else { return }
      var byte = wake.rawValue
      _ = Foundation.write(wakeWrite, &byte, 1)  // a full pipe already holds a wake-up
    }
  }

  /// readline's attempted-completion hook: asks the completer and hands readline the matches
  /// (never falling back to file names).
  private static func complete(
    text: UnsafePointer<CChar>?, start: Int32, end: Int32
  ) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? {
    rl_attempted_completion_over = 1
    guard let completer else { return nil }
    let word = text.map { String(cString: $0) } ?? ""
    var seen: Set<String> = []
    let candidates = completer(Readline.lineBuffer, Int(start), Int(end), word).filter { seen.insert($0).inserted }
    guard let first = candidates.first else { return nil }
    if candidates.count == 1 && (first.hasSuffix("/") || first.contains("$")) {
      // A directory, or a variable inside a string: the user goes on typing there, so no
      // space and no closing quote.
      rl_completion_suppress_append = 1
      rl_completion_suppress_quote = 1
    }
    // readline's match list: [0] replaces the word (the one match, or the candidates' longest
    // common prefix), then the candidates, then NULL; readline frees the strings and the array.
    let entries = candidates.count == 1 ? candidates : [commonPrefix(candidates)] + candidates
    guard let matches = malloc((entries.count + 1) * MemoryLayout<UnsafeMutablePointer<CChar>?>.stride)?
      .assumingMemoryBound(to: UnsafeMutablePointer<CChar>?.self)
    else { return nil }
    for (index, entry) in entries.enumerated() { matches[index] = strdup(entry) }
    matches[entries.count] = nil
    return matches
  }

  /// The longest common prefix, by Unicode scalars (so it stays valid UTF-8).
  private static func commonPrefix(_ strings: [String]) -> String {
    guard var prefix = strings.first.map({ Array($0.unicodeScalars) }) else { return "" }
    for string in strings.dropFirst() {
      let scalars = Array(string.unicodeScalars)
      var length = 0
      while length < min(prefix.count, scalars.count) && prefix[length] == scalars[length] { length += 1 }
      prefix.removeLast(prefix.count - length)
    }
    var result = String.UnicodeScalarView()
    result.append(contentsOf: prefix)
    return String(result)
  }
}

/// Small helpers over readline's C globals, used only on LineEditor's queue.
private enum Readline {
  /// Once per process, before anything else reads the terminal. (readline keeps the strings:
  /// they are copied once and never freed.)
  static func configure() {
    rl_readline_name = UnsafePointer(strdup("cfi-sh"))  // for `$if cfi-sh` in ~/.inputrc
    rl_catch_signals = 0
    rl_catch_sigwinch = 0
    rl_change_environment = 0
    _ = rl_initialize()
    // Word breaks for completion: not ':' '@' '$' '[' ']' '/' '.' '-', which occur inside the
    // words cfi-sh completes (hosts, paths, variables). Inside a quote the word starts after it.
    let wordBreaks = UnsafePointer(strdup(" \t\n\"'<>;=(),"))
    rl_basic_word_break_characters = wordBreaks
    rl_completer_word_break_characters = wordBreaks
    rl_completer_quote_characters = UnsafePointer(strdup("\"'"))
  }

  /// The whole line being edited.
  static var lineBuffer: String {
    rl_line_buffer.map { String(cString: $0) } ?? ""
  }

  /// Whether bracketed paste is on (off for a dumb terminal, or by ~/.inputrc); when it is,
  /// readline ends the prompt's line itself on end of input.
  static var bracketedPaste: Bool {
    rl_variable_value("enable-bracketed-paste").map { String(cString: $0) == "on" } ?? false
  }

  static func resetScreenSize() {
    rl_reset_screen_size()
  }

  /// Forgets the line being edited (the callback-mode Ctrl-C pattern). First leaves any
  /// multi-key state (an incremental search puts its own prompt back) and moves the cursor to
  /// the end of the line, so the "^C" that follows doesn't land inside it.
  static func clearLine() {
    rl_callback_sigcleanup()
    rl_point = rl_end
    rl_redisplay()
    rl_free_line_state()
    rl_replace_line("", 0)
    rl_point = 0
    rl_end = 0
    rl_mark = 0
  }

  /// Writes to readline's output stream, flushed (so it stays in order with readline's own).
  static func write(_ text: String) {
    fputs(text, rl_outstream)
    fflush(rl_outstream)
  }

  /// Leaves callback mode and gives the terminal back (idempotent).
  static func removeHandler() {
    rl_callback_handler_remove()
  }
}
