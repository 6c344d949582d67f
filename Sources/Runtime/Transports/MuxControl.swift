// Talking to an OpenSSH ControlMaster over its control socket, in-process: the requests of
// OpenSSH's mux protocol (PROTOCOL.mux, version 4) that cfi-sh needs — hello, then
// "terminate" at the end of a run, or "alive check" before a run reuses a master that
// outlived an earlier one — without starting an `ssh -O exit` or `ssh -O check` per host.
// Why: at the end of a run on 200 hosts, 200 ssh processes cost about a second of the two cores.

// pollfd's members: Swift attributes them to whichever C module included <poll.h> first,
// here CAvahi (avahi-common's watch.h); a release build (MemberImportVisibility) needs it named.
internal import CAvahi
import Foundation

/// Requests to a ControlMaster through its socket.
enum MuxControl {
  /// Both sides' first packet (type, protocol version): also `MuxSession`'s.
  static let hello: UInt32 = 0x0000_0001
  static let version: UInt32 = 4
  private static let terminate: UInt32 = 0x1000_0005
  private static let aliveCheck: UInt32 = 0x1000_0004
  private static let ok: UInt32 = 0x8000_0001
  private static let alive: UInt32 = 0x8000_0005

  /// Asks the master listening on `path` to exit, as `ssh -O exit` does; true if it said
  /// yes. Never blocks longer than `timeout` seconds.
  static func terminate(path: String, timeout: Int = 2) -> Bool {
    terminate(paths: [path], timeout: timeout).contains(path)
  }

  /// Asks the master on each of `paths` to exit, all at once: every request is sent first
  /// (hello and "terminate" together: the master reads one packet after the other), then the
  /// answers are awaited together, `timeout` seconds at most in all. Returns the paths whose
  /// master said yes: it answered OK, or (OpenSSH 9.x) exited before its answer left (end of
  /// file after its hello). Why all at once: at the end of a run, one after the other, each
  /// waiting for its master to be scheduled, 50 masters took 80 ms of a 3 s run.
  static func terminate(paths: [String], timeout: Int = 2) -> Set<String> {
    var waiting: [(path: String, fd: Int32, read: [UInt8])] = []
    defer { for entry in waiting { close(entry.fd) } }
    for path in paths {
      let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
      guard fd >= 0 else { continue }
      guard connect(fd, path: path, timeout: timeout) == .connected, send(fd, exitRequest)
      else {
        close(fd)
        continue
      }
      _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
      waiting.append((path, fd, []))
    }
    var said: Set<String> = []
    let deadline = ContinuousClock.now + .seconds(timeout)
    var chunk = [UInt8](repeating: 0, count: 4096)
    while !waiting.isEmpty, ContinuousClock.now < deadline {
      var watched = waiting.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
      let left = deadline - ContinuousClock.now
      let milliseconds = Int32(clamping: left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1)
      guard poll(&watched, nfds_t(watched.count), milliseconds) >= 0 || errno == EINTR else { break }
      var finished: Set<Int> = []
      for (index, entry) in watched.enumerated() where entry.revents != 0 {
        var ended = false
        while true {
          let got = chunk.withUnsafeMutableBytes { Foundation.read(entry.fd, $0.baseAddress, $0.count) }
          if got < 0 && (errno == EAGAIN || errno == EINTR) { break }
          if got <= 0 {
            ended = true
            break
          }
          waiting[index].read += chunk[..<got]
        }
        // Its hello first; then OK, another answer (no), or the end of the connection (yes
        // after its hello, no before).
        let answers = packets(in: waiting[index].read)
        let yes: Bool? =
          if let first = answers.first, first.first != hello { false }
          else if answers.count >= 2 { answers[1].first == ok }
          else if ended { answers.count == 1 }
          else { nil }
        guard let yes else { continue }
        if yes { said.insert(waiting[index].path) }
        finished.insert(index)
      }
      for index in finished.sorted(by: >) { close(waiting.remove(at: index).fd) }
    }
    return said
  }

  /// What asks a master to exit: hello and "terminate" together (the master reads one packet
  /// after the other).
  static let exitRequest = packet([hello, version]) + packet([terminate, 0])

  /// The whole packets at the start of `bytes`: each one's leading words.
  private static func packets(in bytes: [UInt8]) -> [[UInt32]] {
    var found: [[UInt32]] = []
    var offset = 0
    while bytes.count - offset >= 4 {
      let length = Int(word(bytes, offset))
      guard length >= 4, bytes.count - offset - 4 >= length else { break }
      found.append(stride(from: offset + 4, to: offset + 4 + length - 3, by: 4).map { word(bytes, $0) })
      offset += 4 + length
    }
    return found
  }

  /// What answers on a control socket.
  enum Probe: Equatable {
    /// A master, with its pid.
    case alive(pid_t)
    /// Nobody: no socket there, or nothing listens on it (connecting is refused): what a
    /// master that exited leaves. Only such a socket may be removed.
    case gone
    /// Something listens but gave no answer (in time, or in this protocol): a busy master,
    /// perhaps; never taken for a dead one.
    case silent
  }

  /// The pid of the master listening on `path`, as `ssh -O check` tells it; nil when none
  /// answers there (no socket, a stale one, a master gone). Never blocks longer than `timeout` seconds.
  static func check(path: String, timeout: Int = 2) -> pid_t? {
    if case .alive(let pid) = probe(path: path, timeout: timeout) { return pid }
    return nil
  }

  /// Who answers on `path` (`Probe`). Never blocks longer than `timeout` seconds.
  static func probe(path: String, timeout: Int = 2) -> Probe {
    var refused = false
    let pid = session(path: path, timeout: timeout, refused: &refused) { fd -> pid_t? in
      // The answer: type, request id, pid.
      guard send(fd, packet([aliveCheck, 0])), let answer = receive(fd), answer.count >= 3, answer[0] == alive,
        answer[2] > 0, answer[2] <= UInt32(Int32.max)
      else { return nil }
      return pid_t(answer[2])
    }
    if let pid = pid ?? nil { return .alive(pid) }
    return refused ? .gone : .silent
  }

  /// Connects to the socket at `path`, says hello both ways, then hands the connection to
  /// `request`; nil when any of that fails, with `refused` set when connecting found no
  /// socket or no listener on it.
  private static func session<T>(path: String, timeout: Int, refused: inout Bool, _ request: (Int32) -> T) -> T? {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    switch connect(fd, path: path, timeout: timeout) {
    case .connected: break
    case .refused:
      refused = true
      return nil
    case .failed: return nil
    }
    // Both sides say hello (type, version); then the request (type, request id) and its answer.
    guard send(fd, packet([hello, version])), let theirs = receive(fd), theirs.first == hello else {
      return nil
    }
    return request(fd)
  }

  /// How connecting to a control socket went.
  enum Connecting: Equatable {
    case connected
    /// No socket there, or nothing listens on it: what a master that exited leaves.
    case refused
    /// Any other failure (why).
    case failed(String)
  }

  /// Connects `fd` (a Unix stream socket) to the control socket at `path`, with send and
  /// receive timeouts of `timeout` seconds on it.
  static func connect(_ fd: Int32, path: String, timeout: Int) -> Connecting {
    // A timeval as (seconds, microseconds): Swift attributes timeval's members to whichever C
    // module included <sys/time.h> first (here CAvahi), so its fields are not used by name.
    var limit: (Int, Int) = (timeout, 0)
    guard MemoryLayout<timeval>.size == MemoryLayout.size(ofValue: limit) else { return .failed("unexpected timeval layout") }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout.size(ofValue: limit)))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout.size(ofValue: limit)))
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return .failed("socket path too long: \(path)") }
    withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
    let connected = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Foundation.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    if connected == 0 { return .connected }
    if [ENOENT, ECONNREFUSED].contains(errno) { return .refused }
    return .failed(String(cString: strerror(errno)))
  }

  /// A mux packet: its length, then the words, all big-endian.
  static func packet(_ words: [UInt32]) -> [UInt8] {
    ([UInt32(words.count * 4)] + words).flatMap { word in withUnsafeBytes(of: word.bigEndian, Array.init) }
  }

  static func send(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
    bytes.withUnsafeBytes { Foundation.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
  }

  /// Reads one packet; its leading words (enough for the type and the request id).
  static func receive(_ fd: Int32) -> [UInt32]? {
    guard let header = read(fd, count: 4) else { return nil }
    let length = Int(word(header, 0))
    guard length >= 4, length <= 1 << 16, let body = read(fd, count: length) else { return nil }
    return stride(from: 0, to: body.count - 3, by: 4).map { word(body, $0) }
  }

  static func read(_ fd: Int32, count: Int) -> [UInt8]? {
    var bytes = [UInt8](repeating: 0, count: count)
    var done = 0
    while done < count {
      let got = bytes.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + done, count - done, 0) }
      if got <= 0 { return nil }
      done += got
    }
    return bytes
  }

  /// The big-endian word at `offset` of `bytes`.
  static func word(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
    bytes[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
  }
}
