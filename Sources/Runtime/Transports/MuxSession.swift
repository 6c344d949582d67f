// A command run over an OpenSSH ControlMaster by cfi-sh itself: the "new session" request of
// OpenSSH's mux protocol (PROTOCOL.mux, version 4), with the command's stdin, stdout and
// stderr handed to the master as descriptors (SCM_RIGHTS) and its exit status taken from the
// master's exit message: what `ssh -o ControlMaster=no HOST COMMAND` does over a master,
// without an ssh process per command.
// Why: an ssh client costs about 5 ms of CPU to start (its libraries, OpenSSL's set-up), for
// a command that then costs the master well under a millisecond; on 200 hosts that is a
// second of the two cores spent before anything runs, and most of a run over open masters.
// The master writes the command's output straight into our sockets; the session ends when it
// closes them and the control connection (after the exit message, or without one when the
// connection to the host died: status 255, as ssh reports it). Each session is driven by a
// thread of its own, blocked in poll(2) on its descriptors: a fan-out's worth of small
// threads, and no descriptor ever closed while another part of the process watches it.

// pollfd's members: Swift attributes them to whichever C module included <poll.h> first,
// here CAvahi (avahi-common's watch.h); a release build (MemberImportVisibility) needs it named.
internal import CAvahi
import Foundation
import Synchronization

enum MuxSession {
  /// Why a session did not run its command.
  enum Failure: Error, Equatable {
    /// Nothing listens on the socket (no socket, or a master that exited): nothing ran.
    case noMaster
    /// The master did not open the session (its reason: the host refused a channel, a master
    /// speaking another protocol, a socket error): nothing ran.
    case refused(String)
    /// The session opened, then went wrong on our side or the master's (its reason): the
    /// command may have run.
    case lost(String)
    /// stdout or stderr grew past the limit: the session was closed.
    case outputLimit
  }

  private static let newSession: UInt32 = 0x1000_0002
  private static let permissionDenied: UInt32 = 0x8000_0002
  private static let failure: UInt32 = 0x8000_0003
  private static let exitMessage: UInt32 = 0x8000_0004
  private static let sessionOpened: UInt32 = 0x8000_0006

  /// Runs `command` (a line for the host's login shell) over the master on `socket`, with
  /// `input` on its stdin (nil: an empty stdin). Returns the exit status the master reported
  /// (255 when it reported none: the connection died, or the command ended by a signal) and
  /// the output, each stream at most `outputLimit` bytes (more: `Failure.outputLimit`).
  /// Throws `Failure`, or `CancellationError` when the task is cancelled (the session is
  /// closed; the command may go on on the host: see `TaggedCommand`). Everything that may
  /// block (connecting, sending, waiting) happens on the session's own thread.
  static func run(socket path: String, command: String, input: String?, outputLimit: Int) async throws -> ProgramResult {
    let session = try Conversation(path: path, command: command, input: Array((input ?? "").utf8), outputLimit: outputLimit)
    return try await session.run()
  }

  /// The "new session" request for `command`: no tty, no forwarding, no escape character,
  /// no environment (PROTOCOL.mux, "Requesting a new session").
  static func request(_ command: String) -> [UInt8] {
    packet { message in
      message.word(newSession)
      message.word(1)  // request id
      message.string("")  // reserved
      message.word(0)  // no tty
      message.word(0)  // no X11 forwarding
      message.word(0)  // no agent forwarding
      message.word(0)  // not a subsystem
      message.word(0xFFFF_FFFF)  // no escape character
      message.string("")  // terminal type
      message.string(command)
    }
  }

  /// A connected pair of Unix stream sockets, close-on-exec: one end ours, the other the
  /// master's (or the wake-up's).
  private static func makePair() throws -> (ours: Int32, theirs: Int32) {
    var ends: [Int32] = [-1, -1]
    guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
      throw Failure.refused("cannot make a socket pair: \(String(cString: strerror(errno)))")
    }
    return (ends[0], ends[1])
  }

  /// Sends `fd` over `socket` as OpenSSH's mm_send_fd does: one byte, the descriptor in an
  /// SCM_RIGHTS control message.
  private static func sendDescriptor(_ fd: Int32, over socket: Int32) -> Bool {
    // struct cmsghdr { size_t len; int level; int type; } then the int, padded to size_t:
    // CMSG_LEN(4) = header + 4, CMSG_SPACE(4) = header + 8 (the CMSG_ macros are not imported).
    let header = MemoryLayout<cmsghdr>.size
    var control = [UInt8](repeating: 0, count: header + MemoryLayout<Int>.size)
    control.withUnsafeMutableBytes { bytes in
      bytes.storeBytes(of: header + MemoryLayout<Int32>.size, toByteOffset: 0, as: Int.self)
      bytes.storeBytes(of: SOL_SOCKET, toByteOffset: MemoryLayout<Int>.size, as: Int32.self)
      bytes.storeBytes(of: 1 /* SCM_RIGHTS */, toByteOffset: MemoryLayout<Int>.size + 4, as: Int32.self)
      bytes.storeBytes(of: fd, toByteOffset: header, as: Int32.self)
    }
    var byte: UInt8 = 0
    return withUnsafeMutablePointer(to: &byte) { bytePointer in
      var vector = iovec(iov_base: bytePointer, iov_len: 1)
      return withUnsafeMutablePointer(to: &vector) { vectorPointer in
        control.withUnsafeMutableBytes { controlBytes in
          var message = msghdr()
          message.msg_iov = vectorPointer
          message.msg_iovlen = 1
          message.msg_control = controlBytes.baseAddress
          message.msg_controllen = controlBytes.count
          return sendmsg(socket, &message, Int32(MSG_NOSIGNAL)) == 1
        }
      }
    }
  }

  /// A mux packet: its length, then the body `build` writes (big-endian words, strings as
  /// a length and their bytes).
  static func packet(_ build: (inout PacketBody) -> Void) -> [UInt8] {
    var body = PacketBody()
    build(&body)
    return PacketBody.bigEndian(UInt32(body.bytes.count)) + body.bytes
  }

  struct PacketBody {
    var bytes: [UInt8] = []
    mutating func word(_ value: UInt32) { bytes += Self.bigEndian(value) }
    mutating func string(_ text: String) {
      word(UInt32(text.utf8.count))
      bytes += text.utf8
    }
    static func bigEndian(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.bigEndian, Array.init) }
  }

  /// The master's replies to one session request, as they come: its hello, "session opened"
  /// or a refusal, the exit message; then it closes the connection.
  struct Replies {
    /// The exit status, once reported.
    var exitStatus: Int32?
    var opened = false
    /// A refusal's reason.
    var refusal: String?
    private var buffer: [UInt8] = []

    /// Takes `bytes` read from the control socket, handling every whole packet among them.
    mutating func take(_ bytes: some Sequence<UInt8>) {
      buffer += bytes
      while buffer.count >= 4 {
        let length = Int(MuxControl.word(buffer, 0))
        guard length <= 1 << 16 else {
          refusal = "the master sent a packet of \(length) bytes"
          buffer = []
          return
        }
        guard buffer.count >= 4 + length else { return }
        handle(Array(buffer[4..<4 + length]))
        buffer.removeFirst(4 + length)
      }
    }

    private mutating func handle(_ body: [UInt8]) {
      guard body.count >= 4 else { return }
      switch MuxControl.word(body, 0) {
      case MuxSession.sessionOpened: opened = true
      case MuxSession.permissionDenied, MuxSession.failure:
        // type, request id, reason
        let reason = body.count >= 12 ? Self.string(body, 8) ?? "" : ""
        refusal = reason.isEmpty ? "the master refused the session" : reason
      case MuxSession.exitMessage where body.count >= 12:
        // type, session id, exit value
        exitStatus = Int32(truncatingIfNeeded: MuxControl.word(body, 8))
      default: break  // its hello; a tty allocation failure (none is asked for)
      }
    }

    private static func string(_ bytes: [UInt8], _ offset: Int) -> String? {
      let length = Int(MuxControl.word(bytes, offset))
      guard bytes.count >= offset + 4 + length else { return nil }
      return String(decoding: bytes[(offset + 4)..<(offset + 4 + length)], as: UTF8.self)
    }
  }

  /// One session on a thread of its own: connecting to the master and sending the request
  /// and the descriptors, then the control socket and the output read as they come and the
  /// input written as the master takes it, until the master has closed all three (or the task
  /// is cancelled: a byte on the wake socket ends it).
  private final class Conversation: @unchecked Sendable {
    private let path: String
    private let command: String
    private let input: [UInt8]
    private let outputLimit: Int
    private let wakeRead: Int32
    /// The wake socket's writing end while the thread runs; nil once it has ended (the
    /// descriptor closed: a late cancellation must not write to its number).
    private let wakeWrite: Mutex<Int32?>

    init(path: String, command: String, input: [UInt8], outputLimit: Int) throws {
      let wake = try MuxSession.makePair()
      (self.path, self.command, self.input, self.outputLimit) = (path, command, input, outputLimit)
      wakeRead = wake.ours
      wakeWrite = Mutex(wake.theirs)
    }

    func run() async throws -> ProgramResult {
      try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ProgramResult, any Error>) in
          let started = SessionThread.start { continuation.resume(with: self.converse()) }
          if let problem = started {
            closeWake()
            continuation.resume(throwing: Failure.refused("cannot start a thread for the session: \(problem)"))
          }
        }
      } onCancel: {
        wakeWrite.withLock { fd in
          guard let fd else { return }
          var byte: UInt8 = 0
          _ = Foundation.send(fd, &byte, 1, Int32(MSG_NOSIGNAL))
        }
      }
    }

    private func closeWake() {
      close(wakeRead)
      wakeWrite.withLock { fd in
        if let fd { close(fd) }
        fd = nil
      }
    }

    /// The whole session, on its thread; every descriptor is closed when it returns.
    private func converse() -> Result<ProgramResult, any Error> {
      var owned: [Int32] = []
      defer {
        for fd in owned { close(fd) }
        closeWake()
      }
      do {
        let (control, outputs, stdin) = try start(&owned)
        return exchange(control: control, outputs: outputs, stdin: stdin, owned: &owned)
      } catch {
        return .failure(error)
      }
    }

    /// Connects, sends the request, then the three descriptors, each with one byte: the
    /// master reads the request's exact length first, so that nothing of the descriptors'
    /// messages is read as part of it (OpenSSH's own client sends them the same way, without
    /// waiting). Socket pairs rather than pipes: close-on-exec from the start, and writing the
    /// input to a master that stopped reading it is EPIPE (MSG_NOSIGNAL), never SIGPIPE.
    /// Nothing has run when this throws. Returns our ends (all non-blocking).
    private func start(_ owned: inout [Int32]) throws -> (control: Int32, outputs: [Int32], stdin: Int32?) {
      let control = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
      guard control >= 0 else { throw Failure.refused("cannot make a socket: \(String(cString: strerror(errno)))") }
      owned.append(control)
      switch MuxControl.connect(control, path: path, timeout: 5) {
      case .connected: break
      case .refused: throw Failure.noMaster
      case .failed(let reason): throw Failure.refused("cannot reach the connection's master: \(reason)")
      }
      var theirs: [Int32] = []
      defer { for fd in theirs { close(fd) } }
      var ours: [Int32] = []
      for _ in 0..<3 {
        let pair = try MuxSession.makePair()
        owned.append(pair.ours)
        ours.append(pair.ours)
        theirs.append(pair.theirs)
      }
      // No input: the master reads /dev/null, as `ssh -n` gives it.
      var stdin: Int32? = ours[0]
      if input.isEmpty {
        let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
        guard null >= 0 else { throw Failure.refused("cannot open /dev/null: \(String(cString: strerror(errno)))") }
        close(theirs[0])
        theirs[0] = null
        stdin = nil
      }
      guard MuxControl.send(control, MuxControl.packet([MuxControl.hello, MuxControl.version])),
        MuxControl.send(control, MuxSession.request(command)), theirs.allSatisfy({ sendDescriptor($0, over: control) })
      else { throw Failure.refused("the master did not take the request: \(String(cString: strerror(errno)))") }
      for fd in [control] + ours { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
      return (control, Array(ours[1...]), stdin)
    }

    /// The session once its request is sent: replies, output and input until the master has
    /// closed the control connection, stdout and stderr.
    private func exchange(control: Int32, outputs: [Int32], stdin: Int32?, owned: inout [Int32]) -> Result<ProgramResult, any Error> {
      var replies = Replies()
      var output: [[UInt8]] = [[], []]
      var open = [true, true, true]  // control, stdout, stderr
      var stdin = stdin
      var written = 0
      var chunk = [UInt8](repeating: 0, count: 65536)
      /// What went wrong after the request was sent: the command may have run.
      func lost(_ reason: String) -> Result<ProgramResult, any Error> {
        .failure(replies.opened ? Failure.lost(reason) : Failure.refused(reason))
      }
      while open.contains(true) {
        var watched = [pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
        for (index, fd) in ([control] + outputs).enumerated() where open[index] {
          watched.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0))
        }
        if let stdin { watched.append(pollfd(fd: stdin, events: Int16(POLLOUT), revents: 0)) }
        guard poll(&watched, nfds_t(watched.count), -1) >= 0 || errno == EINTR else {
          return lost("poll: \(String(cString: strerror(errno)))")
        }
        for entry in watched where entry.revents != 0 {
          if entry.fd == wakeRead { return .failure(CancellationError()) }
          if entry.fd == stdin {
            let sent = input[written...].withUnsafeBytes { Foundation.send(entry.fd, $0.baseAddress, min($0.count, 65536), Int32(MSG_NOSIGNAL)) }
            if sent > 0 { written += sent }
            // All of it sent (the end of our socket is the command's end of file), or the
            // master stopped reading it (the command did not want it).
            if written == input.count || (sent < 0 && errno != EAGAIN && errno != EINTR) {
              close(entry.fd)
              owned.removeAll { $0 == entry.fd }
              stdin = nil
            }
            continue
          }
          let index = entry.fd == control ? 0 : outputs[0] == entry.fd ? 1 : 2
          while true {
            let got = chunk.withUnsafeMutableBytes { read(entry.fd, $0.baseAddress, $0.count) }
            if got < 0 && (errno == EAGAIN || errno == EINTR) { break }
            if got <= 0 {
              // End of file (or an error, taken as one).
              open[index] = false
              if index == 0 && !replies.opened {
                return .failure(Failure.refused(replies.refusal ?? "the master closed the connection before the session opened"))
              }
              break
            }
            if index == 0 {
              replies.take(chunk[..<got])
              if let refusal = replies.refusal { return lost(refusal) }
            } else {
              guard output[index - 1].count + got <= outputLimit else { return .failure(Failure.outputLimit) }
              output[index - 1] += chunk[..<got]
            }
          }
        }
      }
      return .success(
        ProgramResult(
          status: replies.exitStatus ?? 255, stdout: String(decoding: output[0], as: UTF8.self),
          stderr: String(decoding: output[1], as: UTF8.self)))
    }
  }
}

/// A detached thread with a small stack (the session's buffers are on the heap), started with
/// pthread_create itself: Foundation's Thread does not say when a thread could not be made.
enum SessionThread {
  private final class Body {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
  }

  /// Starts `body` on a new thread; what went wrong when none could be started.
  static func start(_ body: @escaping () -> Void) -> String? {
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    defer { pthread_attr_destroy(&attributes) }
    pthread_attr_setstacksize(&attributes, 1 << 18)
    pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
    let context = Unmanaged.passRetained(Body(body)).toOpaque()
    var thread = pthread_t()
    let status = pthread_create(&thread, &attributes, { context in
      Unmanaged<Body>.fromOpaque(context!).takeRetainedValue().run()
      return nil
    }, context)
    guard status != 0 else { return nil }
    Unmanaged<Body>.fromOpaque(context).release()
    return String(cString: strerror(status))
  }
}
