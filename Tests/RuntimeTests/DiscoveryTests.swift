// Discovery against a real avahi-daemon that touches nothing of the machine's: PrivateAvahi runs
// a dbus-daemon on a path socket in a temp dir, and an avahi-daemon in its own mount namespace
// (its own /run and /etc/avahi) and network namespace (only `lo`), publishing static service
// files. Needs root; in CI it must run, so there it fails without root instead of skipping.

import Foundation
import Synchronization
import Testing

@testable import Runtime

private let discoveryTestsEnabled = geteuid() == 0 || ProcessInfo.processInfo.environment["CI"] == "true"

// Serialised: every test's daemon listens on the same bus path, because libdbus reads
// DBUS_SYSTEM_BUS_ADDRESS only once per process.
@Suite(.serialized, .enabled(if: discoveryTestsEnabled, "needs root (namespaces, private daemons)"))
struct DiscoveryTests {
  @Test func resolvesNameAddressPortAndTXT() async throws {
    let bulk = (0..<40).map { "k\($0)=" + String(repeating: "y", count: 250) }  // 10 KB of TXT
    let avahi = try await PrivateAvahi.start(services: [
      "pc01": .init(name: "pc01", port: 22, txt: ["group=lab"]),
      "pc03": .init(
        name: "Lab PC.03", port: 2222,
        txt: ["GROUP=Office", "flag", "dup=first", "dup=second", "big=" + String(repeating: "x", count: 240)],
        rawTXT: [#"<txt-record value-format="binary-hex">junk=fffe41c3</txt-record>"#]),
      "bulk": .init(name: "bulk", port: 1, txt: bulk),
      "web": .init(name: "web", type: "_http._tcp", port: 80),
    ])
    defer { avahi.stop() }
    let log = EventLog(browsing: "_cfi._tcp")
    defer { log.cancel() }
    try await eventually("allForNow", avahi) { log.events.contains(.allForNow) }

    let events = log.events
    let beforeAllForNow = events.prefix { $0 != .allForNow }.filter { $0 != .cacheRead }
    #expect(beforeAllForNow.count == 3, "\(events)")
    // Said once, before "all for now".
    #expect(events.filter { $0 == .cacheRead }.count == 1, "\(events)")
    #expect(events.firstIndex(of: .cacheRead)! < events.firstIndex(of: .allForNow)!, "\(events)")
    let pc01 = try #require(log.appeared("pc01"))
    #expect(pc01.hostName == "\(PrivateAvahi.hostName).local")
    #expect(pc01.address == "127.0.0.1")
    #expect(pc01.port == 22)
    #expect(pc01.txt == ["group": "lab"])
    #expect(pc01.interface > 0)
    let pc03 = try #require(log.appeared("Lab PC.03"))
    #expect(pc03.address == "127.0.0.1")
    #expect(pc03.port == 2222)
    #expect(
      pc03.txt == [
        "group": "Office", "flag": "", "dup": "first", "big": String(repeating: "x", count: 240),
        "junk": "\u{FFFD}\u{FFFD}A\u{FFFD}",
      ])
    #expect(log.appeared("bulk")?.txt.count == bulk.count)
    #expect(log.appeared("bulk")?.txt["k39"] == String(repeating: "y", count: 250))
  }

  @Test func aWarmCacheIsReadBeforeTheNetworkIsAsked() async throws {
    let avahi = try await PrivateAvahi.start(services: [
      "pc01": .init(name: "pc01", port: 22, txt: ["group=lab"]),
      "pc02": .init(name: "pc02", port: 22, txt: ["group=lab"]),
    ])
    defer { avahi.stop() }
    // The first browse fills the daemon's cache.
    _ = try await Discovery.snapshot("_cfi._tcp", for: .seconds(5), ending: .atAllForNow)
    let log = EventLog(browsing: "_cfi._tcp")
    defer { log.cancel() }
    try await eventually("cacheRead", avahi) { log.events.contains(.cacheRead) }
    // Both services, resolved, come before the cache is said to be read: a run may rely on it.
    let beforeCacheRead = log.events.prefix { $0 != .cacheRead }.compactMap(\.name)
    #expect(Set(beforeCacheRead) == ["pc01", "pc02"], "\(log.events)")
    #expect(!log.events.prefix { $0 != .cacheRead }.contains(.allForNow))
  }

  @Test func reportsChangesDeparturesAndLateArrivals() async throws {
    let avahi = try await PrivateAvahi.start(services: [
      "pc01": .init(name: "pc01", port: 22, txt: ["group=lab"]),
      "pc02": .init(name: "pc02", port: 22, txt: ["group=lab"]),
    ])
    defer { avahi.stop() }
    let log = EventLog(browsing: "_cfi._tcp")
    defer { log.cancel() }
    try await eventually("both appeared", avahi) { log.appeared("pc01") != nil && log.appeared("pc02") != nil }

    try avahi.write("pc01", .init(name: "pc01", port: 22, txt: ["group=office"]))
    avahi.reload()
    try await eventually("pc01 changed", avahi) { log.changed("pc01")?.txt == ["group": "office"] }

    try avahi.remove("pc02")
    avahi.reload()
    try await eventually("pc02 gone", avahi) { log.events.contains(.gone(name: "pc02")) }

    try avahi.write("pc03", .init(name: "pc03", port: 2200, txt: ["group=lab"]))
    avahi.reload()
    try await eventually("pc03 appeared", avahi) { log.appeared("pc03") != nil }
    #expect(log.appeared("pc03")?.port == 2200)

    // A reload that withdraws and re-adds pc01 is a change, not a departure and an arrival.
    let pc01Events = log.events.filter { $0.name == "pc01" }
    #expect(pc01Events.count == 2, "\(pc01Events)")
    #expect(!log.events.contains(.gone(name: "pc01")))
  }

  @Test func aServiceBackWithinTheGracePeriodHasNotGone() async throws {
    let avahi = try await PrivateAvahi.start(services: ["pc01": .init(name: "pc01", port: 22, txt: ["group=lab"])])
    defer { avahi.stop() }
    let log = EventLog(browsing: "_cfi._tcp")
    defer { log.cancel() }
    try await eventually("pc01 appeared", avahi) { log.appeared("pc01") != nil }

    // Withdrawn, then back with another group before `Discovery.goneGrace` has passed.
    try avahi.remove("pc01")
    avahi.reload()
    try await Task.sleep(for: .milliseconds(200))
    try avahi.write("pc01", .init(name: "pc01", port: 22, txt: ["group=office"]))
    avahi.reload()
    try await eventually("pc01 changed", avahi) { log.changed("pc01")?.txt == ["group": "office"] }
    try await Task.sleep(for: Discovery.goneGrace + .milliseconds(500))
    #expect(log.events.filter { $0.name == "pc01" }.count == 2, "\(log.events)")
  }

  @Test func snapshotListsWhatIsPresent() async throws {
    let avahi = try await PrivateAvahi.start(services: [
      "pc02": .init(name: "pc02", port: 22, txt: ["group=office"]),
      "pc01": .init(name: "pc01", port: 22, txt: ["group=lab"]),
    ])
    defer { avahi.stop() }
    let services = try await Discovery.snapshot("_cfi._tcp", for: .seconds(2))
    #expect(services.map(\.name) == ["pc01", "pc02"])
    #expect(services.map { $0.txt["group"] } == ["lab", "office"])
    #expect(services.allSatisfy { $0.address == "127.0.0.1" })
    #expect(try await Discovery.snapshot("_nothing._tcp", for: .milliseconds(500)).isEmpty)
  }

  /// Every resolution is reported, not merged by name: a name resolved again with another TXT
  /// is a second resolution, where `browse` reports one name `changed` (issue 10, defect 5).
  @Test func resolutionsKeepEveryAnnouncementSeen() async throws {
    let avahi = try await PrivateAvahi.start(services: ["pc01": .init(name: "pc01", port: 22, txt: ["group=lab"])])
    defer { avahi.stop() }
    let log = EventLog(Discovery.browseResolutions("_cfi._tcp"))
    defer { log.cancel() }
    try await eventually("settled", avahi) { log.events.contains(.settled) }
    #expect(log.groups("pc01") == ["lab"])
    let first = try #require(log.events.first.flatMap { if case .resolved(let s) = $0 { s } else { nil } })
    // The daemon's namespace has only lo, index 1 as in every namespace.
    #expect(first.interfaceName == "lo", "\(first)")
    #expect(first.origin == "'pc01' (127.0.0.1 on lo, host \(PrivateAvahi.hostName).local)")

    try avahi.write("pc01", .init(name: "pc01", port: 22, txt: ["group=office"]))
    try avahi.write("pc02", .init(name: "pc02", port: 22, txt: ["group=lab"]))
    avahi.reload()
    try await eventually("pc01's new group and pc02", avahi) { log.groups("pc01").last == "office" && !log.groups("pc02").isEmpty }
    #expect(log.groups("pc01").first == "lab", "the first resolution was reported too")
    try await eventually("settled again", avahi) { log.events.last == .settled }

    // A whole browse: every distinct resolution present, sorted by name.
    let now = try await Discovery.resolutions("_cfi._tcp", for: .seconds(10), ending: .atAllForNow)
    #expect(now.map(\.name) == ["pc01", "pc02"])
    #expect(now.map { $0.txt["group"] } == ["office", "lab"])
  }

  @Test func stoppingReleasesEverything() async throws {
    let avahi = try await PrivateAvahi.start(services: ["pc01": .init(name: "pc01", port: 22)])
    defer { avahi.stop() }
    // Warm up (runtime threads, the first D-Bus connection), then take the baseline.
    _ = try await Discovery.snapshot("_cfi._tcp", for: .milliseconds(300))
    try await eventually("the warm-up browse to end", avahi) { (try? avahi.busConnections()) == 1 }
    let threads = threadCount()

    for round in 0..<20 {
      switch round % 4 {
      case 0:  // the consumer stops iterating
        for try await event in Discovery.browse("_cfi._tcp") {
          #expect(event.name == "pc01" || event == .cacheRead || event == .allForNow)
          break
        }
      case 1:  // the consumer's task is cancelled while it waits
        let task = Task {
          for try await _ in Discovery.browse("_cfi._tcp") {}
        }
        try await Task.sleep(for: .milliseconds(Int.random(in: 0...100)))
        task.cancel()
        try await task.value
      case 2:  // nobody ever iterates
        _ = Discovery.browse("_cfi._tcp")
      default:
        let found = try await Discovery.snapshot("_cfi._tcp", for: .milliseconds(Int.random(in: 0...300)))
        #expect(found.count <= 1)
      }
    }
    // Teardown happens in detached tasks: wait for every client to leave the bus (only the
    // daemon stays) and avahi's threads to end (one per browse; with some slack for threads
    // that tests running in parallel start).
    try await eventually("every avahi client to disconnect", avahi) { (try? avahi.busConnections()) == 1 }
    try await eventually("avahi's threads to end", avahi) { threadCount() <= threads + 8 }

    let found = try await Discovery.snapshot("_cfi._tcp", for: .seconds(1))
    #expect(found.map(\.name) == ["pc01"])
  }

  @Test func failsWhenNoDaemonRuns() async throws {
    for setup in [PrivateAvahi.Setup.nothing, .busOnly] {
      let avahi = try await PrivateAvahi.start(setup)
      defer { avahi.stop() }
      let error = await #expect(throws: DiscoveryError.self, "\(setup)") {
        for try await _ in Discovery.browse("_cfi._tcp") {}
      }
      #expect(error?.description == "Daemon not running")
      #expect(error?.isDaemonNotRunning == true)
      await #expect(throws: DiscoveryError.self) {
        _ = try await Discovery.snapshot("_cfi._tcp", for: .seconds(5))
      }
    }
  }

  @Test func failsOnAnInvalidType() async throws {
    let avahi = try await PrivateAvahi.start()
    defer { avahi.stop() }
    let error = await #expect(throws: DiscoveryError.self) {
      for try await _ in Discovery.browse("not a type") {}
    }
    #expect(error?.description == "Invalid service type")
  }

  @Test func endsWithAnErrorWhenTheDaemonGoesAway() async throws {
    let avahi = try await PrivateAvahi.start(services: ["pc01": .init(name: "pc01", port: 22)])
    defer { avahi.stop() }
    let log = EventLog(browsing: "_cfi._tcp")
    defer { log.cancel() }
    try await eventually("pc01 appeared", avahi) { log.appeared("pc01") != nil }
    avahi.stopAvahi()
    try await eventually("the browse to end", avahi) { log.ended }
    #expect(log.error is DiscoveryError, "\(String(describing: log.error))")
  }
}

// MARK: - Helpers

extension DiscoveryEvent {
  /// The service name it is about.
  fileprivate var name: String? {
    switch self {
    case .appeared(let service), .changed(let service): service.name
    case .gone(let name): name
    case .cacheRead, .allForNow: nil
    }
  }
}

/// The events of one browse, collected in the background for a test to wait on.
private final class EventLog<Event: Sendable>: Sendable {
  private struct State {
    var events: [Event] = []
    var error: (any Error)?
    var ended = false
  }
  private let state = Mutex(State())
  private let task = Mutex<Task<Void, Never>?>(nil)

  init(_ stream: AsyncThrowingStream<Event, any Error>) {
    task.withLock { task in
      task = Task {
        do {
          for try await event in stream { self.state.withLock { $0.events.append(event) } }
          self.state.withLock { $0.ended = true }
        } catch {
          self.state.withLock {
            $0.error = error
            $0.ended = true
          }
        }
      }
    }
  }

  var events: [Event] { state.withLock { $0.events } }
  var error: (any Error)? { state.withLock { $0.error } }
  var ended: Bool { state.withLock { $0.ended } }

  func cancel() { task.withLock { $0?.cancel() } }
}

extension EventLog where Event == DiscoveryEvent {
  convenience init(browsing type: String) { self.init(Discovery.browse(type)) }

  func appeared(_ name: String) -> DiscoveredService? {
    events.lazy.compactMap { if case .appeared(let s) = $0, s.name == name { s } else { nil } }.last
  }

  func changed(_ name: String) -> DiscoveredService? {
    events.lazy.compactMap { if case .changed(let s) = $0, s.name == name { s } else { nil } }.last
  }
}

extension EventLog where Event == ResolutionEvent {
  /// The TXT `group` of every resolution of `name`, in order.
  func groups(_ name: String) -> [String?] {
    events.compactMap { if case .resolved(let s) = $0, s.name == name { s.txt["group"] } else { nil } }
  }
}

/// Why a test gave up (after recording an issue with the details, where there are any).
private struct FixtureError: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}

/// Waits until `condition` holds, polling; records an issue (with the daemon's log) and throws
/// after `timeout`.
private func eventually(
  _ what: String, _ avahi: PrivateAvahi, timeout: Duration = .seconds(15),
  sourceLocation: SourceLocation = #_sourceLocation, _ condition: () -> Bool
) async throws {
  let deadline = ContinuousClock.now + timeout
  while !condition() {
    guard ContinuousClock.now < deadline else {
      Issue.record(
        "timed out waiting for \(what)\n--- avahi-daemon:\n\(avahi.avahiLog)", sourceLocation: sourceLocation)
      throw FixtureError("gave up waiting for \(what)")
    }
    try await Task.sleep(for: .milliseconds(50))
  }
}

private func threadCount() -> Int {
  (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count) ?? 0
}

/// A private avahi-daemon for one test (see the top of this file), in a directory of its own
/// that `stop()` removes. Its bus has the same address in every test, the one this process's
/// DBUS_SYSTEM_BUS_ADDRESS is set to: libdbus reads that only on the first connection.
private final class PrivateAvahi {
  static let hostName = "cfitest"

  enum Setup { case nothing, busOnly, busAndAvahi }

  /// One static service file.
  struct Service {
    var name: String
    var type = "_cfi._tcp"
    var port: Int
    var txt: [String] = []
    /// `<txt-record …>` lines as they are.
    var rawTXT: [String] = []

    var xml: String {
      let records = txt.map { "    <txt-record>\(escaped($0))</txt-record>" } + rawTXT.map { "    " + $0 }
      return """
        <?xml version="1.0" standalone='no'?>
        <!DOCTYPE service-group SYSTEM "avahi-service.dtd">
        <service-group>
          <name>\(escaped(name))</name>
          <service protocol="ipv4">
            <type>\(escaped(type))</type>
            <port>\(port)</port>
        \(records.joined(separator: "\n"))
          </service>
        </service-group>

        """
    }

    private func escaped(_ text: String) -> String {
      text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;")
    }
  }

  /// One per test process; one test at a time uses it.
  let directory = FileManager.default.temporaryDirectory.path + "/cfi-discovery.\(getpid())"
  var busAddress: String { "unix:path=\(directory)/bus.sock" }
  private var dbus: Child?
  private var avahi: Child?
  private var pids: [pid_t] = []
  private var stopped = false

  private var servicesDirectory: String { directory + "/avahi/services" }
  var avahiLog: String { (try? String(contentsOfFile: directory + "/avahi.log", encoding: .utf8)) ?? "" }

  /// Starts what `setup` says, publishing `services` (file name → service), and waits until the
  /// daemon has established them all.
  static func start(_ setup: Setup = .busAndAvahi, services: [String: Service] = [:]) async throws -> PrivateAvahi {
    guard geteuid() == 0 else {
      throw FixtureError("discovery tests need root (namespaces, private daemons); CI must run them as root")
    }
    let fixture = try PrivateAvahi()
    do {
      for (file, service) in services { try fixture.write(file, service) }
      if setup != .nothing { try await fixture.startBus() }
      if setup == .busAndAvahi { try await fixture.startAvahi(expecting: services.count) }
      return fixture
    } catch {
      fixture.stop()
      throw error
    }
  }

  private init() throws {
    Self.sweepLeftovers()
    // Always the same value, and never unset: other threads may be reading the environment.
    setenv("DBUS_SYSTEM_BUS_ADDRESS", busAddress, 1)
    try FileManager.default.createDirectory(atPath: servicesDirectory, withIntermediateDirectories: true)
    try """
      [server]
      host-name=\(Self.hostName)
      use-ipv4=yes
      use-ipv6=no
      allow-interfaces=lo
      enable-dbus=yes
      [wide-area]
      enable-wide-area=no
      [publish]
      publish-hinfo=no
      publish-workstation=no

      """.write(toFile: directory + "/avahi/avahi-daemon.conf", atomically: true, encoding: .utf8)
  }

  deinit { stop() }

  /// What a crashed test process (or an earlier one with our pid) left: its directory, and its
  /// daemons, whose pids are in the directory's `pids`. A pid is killed only if that process
  /// still has the directory's bus address in its environment (so it was not reused).
  private static func sweepLeftovers() {
    let temporary = FileManager.default.temporaryDirectory.path
    for entry in (try? FileManager.default.contentsOfDirectory(atPath: temporary)) ?? [] {
      guard entry.hasPrefix("cfi-discovery."), let owner = pid_t(entry.dropFirst("cfi-discovery.".count)),
        owner == getpid() || (kill(owner, 0) == -1 && errno == ESRCH)
      else { continue }
      let directory = temporary + "/" + entry
      let marker = Array("DBUS_SYSTEM_BUS_ADDRESS=unix:path=\(directory)/bus.sock".utf8)
      let pids = (try? String(contentsOfFile: directory + "/pids", encoding: .utf8)) ?? ""
      for pid in pids.split(separator: "\n").compactMap({ pid_t($0) }) {
        guard let environment = FileManager.default.contents(atPath: "/proc/\(pid)/environ"),
          environment.split(separator: 0).contains(where: { Array($0) == marker })
        else { continue }
        kill(pid, SIGKILL)
      }
      try? FileManager.default.removeItem(atPath: directory)
    }
  }

  func write(_ file: String, _ service: Service) throws {
    try service.xml.write(toFile: "\(servicesDirectory)/\(file).service", atomically: true, encoding: .utf8)
  }

  func remove(_ file: String) throws {
    try FileManager.default.removeItem(atPath: "\(servicesDirectory)/\(file).service")
  }

  /// Makes the daemon reread its service files (it also notices changes by itself, via inotify).
  func reload() {
    if let avahi, avahi.isRunning { kill(avahi.pid, SIGHUP) }
  }

  /// The connections on the private bus, the daemon's included (not this query's).
  func busConnections() throws -> Int {
    let file = directory + "/dbus-send.out"
    try? FileManager.default.removeItem(atPath: file)
    _ = try Child(
      Self.tool("dbus-send"),
      ["--bus=\(busAddress)", "--print-reply", "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus",
       "org.freedesktop.DBus.ListNames"], output: file
    ).wait()
    let output = try String(contentsOfFile: file, encoding: .utf8)
    return output.split(separator: "\n").filter { $0.contains("string \":") }.count - 1
  }

  func stopAvahi() {
    avahi?.terminate()
    avahi = nil
  }

  /// Stops both daemons and removes the directory. Idempotent.
  func stop() {
    guard !stopped else { return }
    stopped = true
    stopAvahi()
    dbus?.terminate()
    dbus = nil
    try? FileManager.default.removeItem(atPath: directory)
  }

  private func startBus() async throws {
    try """
      <!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
       "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
      <busconfig>
        <type>system</type>
        <listen>\(busAddress)</listen>
        <auth>EXTERNAL</auth>
        <policy context="default">
          <allow user="*"/>
          <allow own="*"/>
          <allow send_type="method_call"/>
          <allow send_type="signal"/>
          <allow send_type="method_return"/>
          <allow send_type="error"/>
          <allow receive_type="method_call"/>
          <allow receive_type="signal"/>
          <allow receive_type="method_return"/>
          <allow receive_type="error"/>
        </policy>
      </busconfig>

      """.write(toFile: directory + "/dbus.conf", atomically: true, encoding: .utf8)
    dbus = try spawn(
      Self.tool("dbus-daemon"), ["--config-file=\(directory)/dbus.conf", "--nofork", "--nopidfile"], log: "dbus.log")
    try await waitFor("the bus socket") { FileManager.default.fileExists(atPath: self.directory + "/bus.sock") }
  }

  private func startAvahi(expecting services: Int) async throws {
    // A private /run (pid file, socket) and /etc/avahi; a network namespace with only `lo`.
    let script = """
      set -e
      \(Self.tool("ip")) link set lo up
      mount -t tmpfs tmpfs /run
      mkdir -p /run/avahi-daemon
      mount --bind '\(directory)/avahi' /etc/avahi
      exec \(Self.tool("avahi-daemon")) --no-drop-root --no-chroot --no-rlimits -f /etc/avahi/avahi-daemon.conf
      """
    avahi = try spawn(
      Self.tool("unshare"), ["--mount", "--net", "--propagation", "private", "/bin/sh", "-c", script], log: "avahi.log")
    try await waitFor("avahi-daemon to start") {
      let log = self.avahiLog
      return log.contains("Server startup complete")
        && log.components(separatedBy: "successfully established").count - 1 >= services
    }
  }

  /// Starts a daemon with the bus address in its environment, noting its pid for `sweepLeftovers`.
  private func spawn(_ tool: String, _ arguments: [String], log: String) throws -> Child {
    let child = try Child(
      tool, arguments, environment: ["DBUS_SYSTEM_BUS_ADDRESS": busAddress], output: directory + "/" + log)
    pids.append(child.pid)
    try pids.map { "\($0)\n" }.joined().write(toFile: directory + "/pids", atomically: true, encoding: .utf8)
    return child
  }

  private func waitFor(_ what: String, _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(15)
    while !condition() {
      guard ContinuousClock.now < deadline else {
        Issue.record("timed out waiting for \(what)\n--- avahi-daemon:\n\(avahiLog)")
        throw FixtureError("gave up waiting for \(what)")
      }
      guard dbus?.isRunning ?? true, avahi?.isRunning ?? true else {
        Issue.record("a daemon exited while waiting for \(what)\n--- avahi-daemon:\n\(avahiLog)")
        throw FixtureError("a daemon exited")
      }
      try await Task.sleep(for: .milliseconds(50))
    }
  }

  private static func tool(_ name: String) -> String {
    let directories = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    for directory in directories where FileManager.default.isExecutableFile(atPath: "\(directory)/\(name)") {
      return "\(directory)/\(name)"
    }
    return name  // fails at launch, with the name in the error
  }
}

/// A child process, started with posix_spawn rather than Foundation's Process: with default
/// signal handling and an empty signal mask (a Swift concurrency thread blocks SIGTERM, SIGHUP…,
/// and Process passes that mask on, so the daemons would ignore them), stdin from /dev/null, and
/// stdout and stderr appended to `output`. Reaped by `wait` or `terminate` (or `isRunning`).
private final class Child {
  let pid: pid_t
  private var status: Int32?

  init(_ tool: String, _ arguments: [String], environment: [String: String] = [:], output: String) throws {
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var mask = sigset_t()
    sigemptyset(&mask)
    posix_spawnattr_setsigmask(&attributes, &mask)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    for signal in [SIGHUP, SIGINT, SIGQUIT, SIGPIPE, SIGTERM, SIGUSR1, SIGUSR2, SIGCHLD, SIGALRM] {
      sigaddset(&defaults, signal)
    }
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)

    let argv = ([tool] + arguments).map { strdup($0) } + [nil]
    let env = ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { strdup("\($0)=\($1)") } + [nil]
    defer { (argv + env).forEach { free($0) } }
    var pid: pid_t = 0
    let result = posix_spawn(&pid, tool, &actions, &attributes, argv, env)
    guard result == 0 else { throw POSIXError(POSIXErrorCode(rawValue: result) ?? .EINVAL) }
    self.pid = pid
  }

  var isRunning: Bool {
    reap(WNOHANG)
    return status == nil
  }

  /// Waits for it to exit; returns the wait status.
  @discardableResult
  func wait() -> Int32 {
    while status == nil { reap(0) }
    return status ?? -1
  }

  /// SIGTERM, then SIGKILL if it has not exited within 5 s; reaps it.
  func terminate() {
    guard isRunning else { return }
    kill(pid, SIGTERM)
    let deadline = ContinuousClock.now + .seconds(5)
    while isRunning, ContinuousClock.now < deadline { usleep(10_000) }
    if isRunning { kill(pid, SIGKILL) }
    wait()
  }

  private func reap(_ options: Int32) {
    guard status == nil else { return }
    var wstatus: Int32 = 0
    let result = waitpid(pid, &wstatus, options)
    if result == pid {
      status = wstatus
    } else if result == -1, errno != EINTR {
      status = -1  // not our child any more (ECHILD): nothing left to wait for
    }
  }
}
