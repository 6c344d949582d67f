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
  /// closed; the command may go on on the host: see `TaggedCommand`).
  static func run(socket path: String, command: String, input: String?, outputLimit: Int) async throws -> ProgramResult {
    let control = try connect(path)
    var handedOver: [Int32] = []
    var ours: [Int32] = [control]
    defer { for fd in handedOver { close(fd) } }
    do {
      // Socket pairs rather than pipes: close-on-exec from the start, and writing the input
      // to a master that stopped reading it is EPIPE (MSG_NOSIGNAL), never SIGPIPE.
      let (outOurs, outTheirs) = try makePair()
      ours.append(outOurs)
      handedOver.append(outTheirs)
      let (errOurs, errTheirs) = try makePair()
      ours.append(errOurs)
      handedOver.append(errTheirs)
      var inOurs: Int32? = nil
      let inTheirs: Int32
      if let input, !input.isEmpty {
        let pair = try makePair()
        (inOurs, inTheirs) = pair
        ours.append(pair.ours)
      } else {
        inTheirs = open("/dev/null", O_RDONLY | O_CLOEXEC)
        guard inTheirs >= 0 else { throw Failure.refused("cannot open /dev/null: \(String(cString: strerror(errno)))") }
      }
      handedOver.append(inTheirs)
      // The request, then the three descriptors, each with one byte: the master reads the
      // request's exact length first, so that nothing of the descriptors' messages is read
      // as part of it (OpenSSH's own client sends them the same way, without waiting).
      guard MuxControl.send(control, MuxControl.packet([MuxControl.hello, MuxControl.version])), MuxControl.send(control, request(command)),
        sendDescriptor(inTheirs, over: control), sendDescriptor(outTheirs, over: control), sendDescriptor(errTheirs, over: control)
      else { throw Failure.refused("the master did not take the request: \(String(cString: strerror(errno)))") }
      for fd in handedOver { close(fd) }
      handedOver = []
      let session = try Conversation(
        control: control, stdout: outOurs, stderr: errOurs, stdin: inOurs, input: Array((input ?? "").utf8), outputLimit: outputLimit)
      ours = []
      return try await session.run()
    } catch {
      for fd in ours { close(fd) }
      throw error
    }
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

  /// A socket connected to the master on `path`, blocking, with send and receive timeouts.
  private static func connect(_ path: String) throws -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw Failure.refused("cannot make a socket: \(String(cString: strerror(errno)))") }
    switch MuxControl.connect(fd, path: path, timeout: 5) {
    case .connected: return fd
    case .refused:
      close(fd)
      throw Failure.noMaster
    case .failed(let reason):
      close(fd)
      throw Failure.refused("cannot reach the connection's master: \(reason)")
    }
  }

  /// A connected pair of Unix stream sockets, close-on-exec: ours, and the master's.
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
        let length = Int(Self.word(buffer, 0))
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
      switch Self.word(body, 0) {
      case MuxSession.sessionOpened: opened = true
      case MuxSession.permissionDenied, MuxSession.failure:
        // type, request id, reason
        let reason = body.count >= 12 ? Self.string(body, 8) : nil
        refusal = reason.map { $0.isEmpty ? "the master refused the session" : $0 } ?? "the master refused the session"
      case MuxSession.exitMessage where body.count >= 12:
        // type, session id, exit value
        exitStatus = Int32(truncatingIfNeeded: Self.word(body, 8))
      default: break  // its hello; a tty allocation failure (none is asked for)
      }
    }

    private static func word(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
      bytes[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
    }

    private static func string(_ bytes: [UInt8], _ offset: Int) -> String? {
      let length = Int(word(bytes, offset))
      guard bytes.count >= offset + 4 + length else { return nil }
      return String(decoding: bytes[(offset + 4)..<(offset + 4 + length)], as: UTF8.self)
    }
  }

  /// One session once its request is sent, on a thread of its own: the control socket and
  /// the output read as they come, the input written as the master takes it, until the
  /// master has closed all three (or the task is cancelled: a byte on `wake` ends it).
  private final class Conversation: @unchecked Sendable {
    private let control: Int32
    private let outputs: [Int32]
    private var stdin: Int32?
    private let input: [UInt8]
    private let outputLimit: Int
    private let wakeRead: Int32
    /// The wake socket's writing end while the thread runs; nil once it has ended (the
    /// descriptor closed: a late cancellation must not write to its number).
    private let wakeWrite: Mutex<Int32?>

    init(control: Int32, stdout: Int32, stderr: Int32, stdin: Int32?, input: [UInt8], outputLimit: Int) throws {
      let wake = try MuxSession.makePair()
      (self.control, outputs, self.stdin, self.input, self.outputLimit) = (control, [stdout, stderr], stdin, input, outputLimit)
      wakeRead = wake.ours
      wakeWrite = Mutex(wake.theirs)
      for fd in [control, stdout, stderr] + (stdin.map { [$0] } ?? []) {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
      }
    }

    func run() async throws -> ProgramResult {
      try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ProgramResult, any Error>) in
          let thread = Thread { continuation.resume(with: self.converse()) }
          thread.stackSize = 1 << 18
          thread.start()
        }
      } onCancel: {
        wakeWrite.withLock { fd in
          guard let fd else { return }
          var byte: UInt8 = 0
          _ = Foundation.send(fd, &byte, 1, Int32(MSG_NOSIGNAL))
        }
      }
    }

    /// The session's loop, on its thread; every descriptor is closed when it returns.
    private func converse() -> Result<ProgramResult, any Error> {
      var replies = Replies()
      var output: [[UInt8]] = [[], []]
      var open = [true, true, true]  // control, stdout, stderr
      var written = 0
      defer {
        for fd in [control, wakeRead] + outputs + (stdin.map { [$0] } ?? []) { close(fd) }
        wakeWrite.withLock { fd in
          if let fd { close(fd) }
          fd = nil
        }
      }
      var chunk = [UInt8](repeating: 0, count: 65536)
      while open.contains(true) {
        var watched = [pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
        for (index, fd) in ([control] + outputs).enumerated() where open[index] {
          watched.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0))
        }
        if let stdin { watched.append(pollfd(fd: stdin, events: Int16(POLLOUT), revents: 0)) }
        guard poll(&watched, nfds_t(watched.count), -1) >= 0 || errno == EINTR else {
          return .failure(Failure.refused("poll: \(String(cString: strerror(errno)))"))
        }
        for entry in watched where entry.revents != 0 {
          if entry.fd == wakeRead { return .failure(CancellationError()) }
          if entry.fd == stdin {
            let sent = input[written...].withUnsafeBytes { Foundation.send(entry.fd, $0.baseAddress, min($0.count, 65536), Int32(MSG_NOSIGNAL)) }
            if sent > 0 { written += sent }
            // All of it sent, or the master stopped reading it (the command did not want it).
            if written == input.count || (sent < 0 && errno != EAGAIN && errno != EINTR) {
              close(entry.fd)
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
              if let refusal = replies.refusal { return .failure(Failure.refused(refusal)) }
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
