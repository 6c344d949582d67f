// MuxSession against a fake ControlMaster that takes a "new session" request as OpenSSH's
// does (the request, then three descriptors passed with SCM_RIGHTS), uses the descriptors it
// got (stdin read to its end, stdout and stderr written) and answers as told. The real
// master is the fleet's: every command of the fleet tests runs through MuxSession.

import Foundation
import Testing

@testable import Runtime

@Suite(.timeLimit(.minutes(1))) struct MuxSessionTests {
  /// What the fake master does once it has the descriptors.
  enum Behaviour: Sendable {
    /// Opens the session, writes stdout (with the number of stdin bytes read) and stderr,
    /// sends the exit message with `status`, or none when nil.
    case runs(stdout: String, stderr: String, status: UInt32?)
    /// Answers the request with MUX_S_FAILURE and `reason`.
    case refuses(String)
    /// Closes the connection before answering the request.
    case closesBeforeOpening
    /// Opens the session and then waits, holding everything open, until told to end.
    case hangs
    /// Opens the session and writes `bytes` to stdout.
    case floods(bytes: Int)
    /// Opens the session, then sends what no master sends: a packet of a megabyte.
    case garbles
  }

  static func path() -> String { "/tmp/cfi-mux-session-\(UUID().uuidString.prefix(8))" }

  @Test func aCommandGetsItsInputAndItsStatusAndOutputComeBack() async throws {
    let path = Self.path()
    defer { unlink(path) }
    let master = try SessionMaster(path: path, behaviour: .runs(stdout: "out", stderr: "err", status: 7))
    let input = String(repeating: "x", count: 300_000)  // more than a socket's buffer holds
    let result = try await MuxSession.run(socket: path, command: "the command", input: input, outputLimit: 1 << 20)
    await master.wait()
    #expect(result == ProgramResult(status: 7, stdout: "out 300000", stderr: "err"))
    #expect(master.command == "the command")
    #expect(master.descriptors == 3)
  }

  @Test func withoutAnExitMessageTheStatusIs255AsSshSays() async throws {
    let path = Self.path()
    defer { unlink(path) }
    let master = try SessionMaster(path: path, behaviour: .runs(stdout: "partial", stderr: "", status: nil))
    let result = try await MuxSession.run(socket: path, command: "c", input: nil, outputLimit: 1 << 20)
    await master.wait()
    #expect(result == ProgramResult(status: 255, stdout: "partial 0", stderr: ""))
  }

  @Test func aRefusalOrAnEarlyCloseSaysNothingRan() async throws {
    for (behaviour, reason) in [
      (Behaviour.refuses("Session open refused by peer"), "Session open refused by peer"),
      (.closesBeforeOpening, "the master closed the connection before the session opened"),
    ] {
      let path = Self.path()
      defer { unlink(path) }
      let master = try SessionMaster(path: path, behaviour: behaviour)
      await #expect(throws: MuxSession.Failure.refused(reason)) {
        try await MuxSession.run(socket: path, command: "c", input: nil, outputLimit: 1 << 20)
      }
      await master.wait()
    }
  }

  /// Once the session opened, the command may have run: a failure then is not a refusal.
  @Test func aFailureAfterTheSessionOpenedSaysItMayHaveRun() async throws {
    let path = Self.path()
    defer { unlink(path) }
    let master = try SessionMaster(path: path, behaviour: .garbles)
    await #expect(throws: MuxSession.Failure.lost("the master sent a packet of 1048576 bytes")) {
      try await MuxSession.run(socket: path, command: "c", input: nil, outputLimit: 1 << 20)
    }
    await master.wait()
  }

  @Test func noSocketOrNoListenerIsNoMaster() async throws {
    await #expect(throws: MuxSession.Failure.noMaster) {
      try await MuxSession.run(socket: Self.path(), command: "c", input: nil, outputLimit: 1)
    }
    let stale = Self.path()
    defer { unlink(stale) }
    #expect(FileManager.default.createFile(atPath: stale, contents: nil))
    await #expect(throws: MuxSession.Failure.noMaster) {
      try await MuxSession.run(socket: stale, command: "c", input: nil, outputLimit: 1)
    }
  }

  @Test func outputOverTheLimitEndsTheSession() async throws {
    let path = Self.path()
    defer { unlink(path) }
    let master = try SessionMaster(path: path, behaviour: .floods(bytes: 200_000))
    await #expect(throws: MuxSession.Failure.outputLimit) {
      try await MuxSession.run(socket: path, command: "c", input: nil, outputLimit: 100_000)
    }
    await master.wait()
  }

  /// Cancelling the task ends the session at once (the command's kill is the transport's).
  @Test func cancellingEndsTheSession() async throws {
    let path = Self.path()
    defer { unlink(path) }
    let master = try SessionMaster(path: path, behaviour: .hangs)
    let task = Task { try await MuxSession.run(socket: path, command: "c", input: "never read", outputLimit: 1 << 20) }
    await master.waitUntilOpened()
    task.cancel()
    await #expect(throws: CancellationError.self) { try await task.value }
    // The master sees the connection close: the session's side is gone.
    await master.wait()
    #expect(master.sawClose)
  }
}

/// One session's worth of a ControlMaster, on a thread of its own.
final class SessionMaster: @unchecked Sendable {
  private let listener: Int32
  private let done = DispatchSemaphore(value: 0)
  private let opened = DispatchSemaphore(value: 0)
  /// What it got, read after `wait()`.
  private(set) var command: String?
  private(set) var descriptors = 0
  private(set) var sawClose = false

  init(path: String, behaviour: MuxSessionTests.Behaviour) throws {
    listener = try FakeMaster.listen(on: path)
    Thread.detachNewThread { [self] in
      defer {
        close(listener)
        done.signal()
      }
      let fd = accept(listener, nil, nil)
      guard fd >= 0 else { return }
      defer { close(fd) }
      // Its hello at once, as the master sends it; the client's hello, then the request, read
      // by their exact lengths, as the master reads them.
      _ = MuxControl.send(fd, MuxControl.packet([0x1, 4]))
      guard MuxControl.receive(fd)?.first == 0x1, let request = Self.readBody(fd) else { return }
      command = Self.command(in: request)
      var fds: [Int32] = []
      for _ in 0..<3 {
        guard let received = Self.receiveDescriptor(fd) else { return }
        fds.append(received)
      }
      descriptors = fds.count
      defer { for received in fds { close(received) } }
      switch behaviour {
      case .refuses(let reason):
        _ = MuxControl.send(fd, Self.packet([0x8000_0003, 1], string: reason))
        return
      case .closesBeforeOpening:
        return
      default: break
      }
      _ = MuxControl.send(fd, MuxControl.packet([0x8000_0006, 1, 9]))
      switch behaviour {
      case .runs(let stdout, let stderr, let status):
        var count = 0
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
          let got = read(fds[0], &buffer, buffer.count)
          if got <= 0 { break }
          count += got
        }
        Self.write(fds[1], "\(stdout) \(count)")
        Self.write(fds[2], stderr)
        if let status { _ = MuxControl.send(fd, MuxControl.packet([0x8000_0004, 9, status])) }
      case .floods(let bytes):
        Self.write(fds[1], String(repeating: "y", count: bytes))
      case .garbles:
        _ = MuxControl.send(fd, [0, 0x10, 0, 0])
      case .hangs:
        opened.signal()
        // Until the client closes the control connection.
        var byte: UInt8 = 0
        sawClose = recv(fd, &byte, 1, 0) <= 0  // end of file, or a reset: the client closed with replies unread
      case .refuses, .closesBeforeOpening: break
      }
    }
  }

  /// Waits for the master's thread to end, off the test's threads (blocking one of the
  /// cooperative pool's few threads would stall every other test of the process).
  func wait() async { await Self.off(done) }
  func waitUntilOpened() async { await Self.off(opened) }

  private static func off(_ semaphore: DispatchSemaphore) async {
    await withCheckedContinuation { continuation in
      DispatchQueue.global().async {
        semaphore.wait()
        continuation.resume()
      }
    }
  }

  static func write(_ fd: Int32, _ text: String) {
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
      let sent = bytes.withUnsafeBytes { Foundation.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
      if sent <= 0 { return }
      bytes = bytes.dropFirst(sent)
    }
  }

  static func readBody(_ fd: Int32) -> [UInt8]? {
    guard let header = MuxControl.read(fd, count: 4) else { return nil }
    let length = header.reduce(0) { $0 << 8 | Int($1) }
    return MuxControl.read(fd, count: length)
  }

  /// The command of a "new session" request: after type, id, reserved string, four flags,
  /// the escape character and the terminal string.
  static func command(in body: [UInt8]) -> String? {
    var offset = 8
    func word() -> Int {
      defer { offset += 4 }
      return body[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) }
    }
    offset += word()  // the reserved string
    offset += 4 * 5
    offset += word()  // the terminal type
    let length = word()
    return String(decoding: body[offset..<offset + length], as: UTF8.self)
  }

  static func packet(_ words: [UInt32], string: String) -> [UInt8] {
    MuxSession.packet { body in
      for word in words { body.word(word) }
      body.string(string)
    }
  }

  /// One descriptor sent as OpenSSH's mm_send_fd sends it.
  static func receiveDescriptor(_ socket: Int32) -> Int32? {
    var byte: UInt8 = 0
    var control = [UInt8](repeating: 0, count: 64)
    return withUnsafeMutablePointer(to: &byte) { bytePointer in
      var vector = iovec(iov_base: bytePointer, iov_len: 1)
      return withUnsafeMutablePointer(to: &vector) { vectorPointer in
        control.withUnsafeMutableBytes { controlBytes -> Int32? in
          var message = msghdr()
          message.msg_iov = vectorPointer
          message.msg_iovlen = 1
          message.msg_control = controlBytes.baseAddress
          message.msg_controllen = controlBytes.count
          guard recvmsg(socket, &message, 0) == 1, message.msg_controllen >= MemoryLayout<cmsghdr>.size + 4 else { return nil }
          return controlBytes.load(fromByteOffset: MemoryLayout<cmsghdr>.size, as: Int32.self)
        }
      }
    }
  }
}
