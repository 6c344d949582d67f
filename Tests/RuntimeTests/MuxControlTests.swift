// MuxControl against a fake ControlMaster: a unix socket server speaking the two requests
// of OpenSSH's mux protocol that cfi-sh uses (hello, terminate, alive check), answering as told.

import Foundation
import Testing

@testable import Runtime

@Suite struct MuxControlTests {
  /// How the fake master behaves after the client's hello.
  enum Behaviour: Sendable {
    case answersOK, exitsBeforeAnswering, answersFailure, wrongHello, silent
    case answersAlive(pid: UInt32)
    /// As OpenSSH's master: its hello is sent (late here) before the request is read, and a
    /// client gone by then loses its request.
    case dropsAClientThatLeft
  }

  @Test(arguments: [
    (Behaviour.answersOK, true), (.exitsBeforeAnswering, true), (.answersFailure, false), (.wrongHello, false), (.silent, false),
  ])
  func terminate(_ behaviour: Behaviour, _ expected: Bool) async throws {
    let path = "/tmp/cfi-mux-\(UUID().uuidString.prefix(8))"
    defer { unlink(path) }
    let server = try FakeMaster(path: path, behaviour: behaviour)
    let start = ContinuousClock.now
    #expect(MuxControl.terminate(path: path, timeout: 1) == expected)
    #expect(ContinuousClock.now - start < .seconds(3))
    server.wait()
    if expected { #expect(server.received == [[0x1, 4], [0x1000_0005, 0]]) }
  }

  /// Several masters at once (the end of a run): each answered as it says; nothing
  /// listening is no.
  @Test func terminatesSeveralAtOnce() throws {
    let behaviours: [Behaviour] = [.answersOK, .exitsBeforeAnswering, .answersFailure, .wrongHello, .silent]
    let paths = behaviours.map { _ in "/tmp/cfi-mux-\(UUID().uuidString.prefix(8))" }
    defer { for path in paths { unlink(path) } }
    let servers = try zip(paths, behaviours).map { try FakeMaster(path: $0, behaviour: $1) }
    let said = MuxControl.terminate(paths: paths + ["/tmp/cfi-mux-nothing-\(UUID().uuidString.prefix(8))"], timeout: 1)
    #expect(said == [paths[0], paths[1]])
    for server in servers { server.wait() }
  }

  /// A master asked to exit while the run goes on (`MasterExitRequests`): the request's
  /// connection stays open while the master answers, so that one which drops a client gone
  /// before its hello is sent still reads the request.
  @Test func anExitRequestNotWaitedForStillReachesTheMaster() throws {
    let path = "/tmp/cfi-mux-\(UUID().uuidString.prefix(8))"
    defer { unlink(path) }
    let server = try FakeMaster(path: path, behaviour: .dropsAClientThatLeft)
    let requests = MasterExitRequests()
    requests.request(path: path)
    server.wait()
    #expect(server.received == [[0x1, 4], [0x1000_0005, 0]])
    requests.closeAll()
    // Nothing listening: nothing sent, nothing kept.
    requests.request(path: "/tmp/cfi-mux-nothing-\(UUID().uuidString.prefix(8))")
  }

  @Test func noMasterListening() {
    #expect(!MuxControl.terminate(path: "/tmp/cfi-mux-nothing-\(UUID().uuidString.prefix(8))", timeout: 1))
    #expect(MuxControl.check(path: "/tmp/cfi-mux-nothing-\(UUID().uuidString.prefix(8))", timeout: 1) == nil)
    #expect(MuxControl.probe(path: "/tmp/cfi-mux-nothing-\(UUID().uuidString.prefix(8))", timeout: 1) == .gone)
    // What a master that exited leaves: a socket file nobody listens on.
    let stale = "/tmp/cfi-mux-stale-\(UUID().uuidString.prefix(8))"
    defer { unlink(stale) }
    #expect(FileManager.default.createFile(atPath: stale, contents: nil))
    #expect(MuxControl.probe(path: stale, timeout: 1) == .gone)
  }

  /// Only a socket nobody listens on is gone: one that answers late or oddly is not.
  @Test(arguments: [(Behaviour.answersAlive(pid: 4242), MuxControl.Probe.alive(4242)), (.silent, .silent), (.wrongHello, .silent)])
  func probe(_ behaviour: Behaviour, _ expected: MuxControl.Probe) throws {
    let path = "/tmp/cfi-mux-\(UUID().uuidString.prefix(8))"
    defer { unlink(path) }
    let server = try FakeMaster(path: path, behaviour: behaviour)
    #expect(MuxControl.probe(path: path, timeout: 1) == expected)
    server.wait()
  }

  @Test(arguments: [(Behaviour.answersAlive(pid: 4242), pid_t?.some(4242)), (.answersOK, nil), (.silent, nil), (.wrongHello, nil)])
  func check(_ behaviour: Behaviour, _ expected: pid_t?) throws {
    let path = "/tmp/cfi-mux-\(UUID().uuidString.prefix(8))"
    defer { unlink(path) }
    let server = try FakeMaster(path: path, behaviour: behaviour)
    #expect(MuxControl.check(path: path, timeout: 1) == expected)
    server.wait()
    if expected != nil { #expect(server.received == [[0x1, 4], [0x1000_0004, 0]]) }
  }
}

/// One connection's worth of a ControlMaster, on a thread of its own.
final class FakeMaster: @unchecked Sendable {
  private let listener: Int32
  private let done = DispatchSemaphore(value: 0)
  /// The packets the client sent (their words), guarded by `done`.
  private(set) var received: [[UInt32]] = []

  init(path: String, behaviour: MuxControlTests.Behaviour) throws {
    listener = try Self.listen(on: path)
    Thread.detachNewThread { [self] in
      defer {
        close(listener)
        done.signal()
      }
      let fd = accept(listener, nil, nil)
      guard fd >= 0 else { return }
      defer { close(fd) }
      guard let hello = readPacket(fd) else { return }
      received.append(hello)
      if case .wrongHello = behaviour {
        writePacket(fd, [0x7, 4])
        return
      }
      if case .dropsAClientThatLeft = behaviour {
        Thread.sleep(forTimeInterval: 0.2)
        guard MuxControl.send(fd, MuxControl.packet([0x1, 4])) else { return }
      } else {
        writePacket(fd, [0x1, 4])
      }
      guard let request = readPacket(fd) else { return }
      received.append(request)
      switch behaviour {
      case .answersOK: writePacket(fd, [0x8000_0001, request.count > 1 ? request[1] : 0])
      case .answersFailure: writePacket(fd, [0x8000_0003, request.count > 1 ? request[1] : 0])
      case .answersAlive(let pid): writePacket(fd, [0x8000_0005, request.count > 1 ? request[1] : 0, pid])
      case .silent: Thread.sleep(forTimeInterval: 2)
      case .exitsBeforeAnswering, .wrongHello, .dropsAClientThatLeft: break
      }
    }
  }

  func wait() { done.wait() }

  /// A Unix stream socket listening on `path`, for one connection.
  static func listen(on path: String) throws -> Int32 {
    let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
    let bound = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard bound == 0, Foundation.listen(listener, 1) == 0 else {
      close(listener)
      throw POSIXError(.EADDRINUSE)
    }
    return listener
  }

  // The framing is MuxControl's own (length, then big-endian words), used from the other end.
  private func readPacket(_ fd: Int32) -> [UInt32]? { MuxControl.receive(fd) }
  private func writePacket(_ fd: Int32, _ words: [UInt32]) { _ = MuxControl.send(fd, MuxControl.packet(words)) }
}
