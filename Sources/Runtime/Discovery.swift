// Discovery: browsing and resolving DNS-SD services over mDNS through the local avahi-daemon
// (libavahi-client over D-Bus). Clients announce `_cfi._tcp` with TXT `group=NAME`; the server
// announces `_cfi-server._tcp` with its key. The C side lives in AvahiBrowser.swift.

/// The DNS-SD service types of cfi, named here only: Discovery browses them, enrollment and
/// `server init` publish them (`AvahiServiceFile`), help texts quote them.
public enum ServiceType {
  /// A client, with TXT `group=NAME` (`cfi-sh client enroll`).
  public static let client = "_cfi._tcp"
  /// The server's ssh key, with TXT `key=` and `fp=` (`cfi-sh server init`).
  public static let server = "_cfi-server._tcp"
}

/// One resolved service instance, as announced (nothing here is validated: TXT values in
/// particular come from the network and may be anything).
public struct DiscoveredService: Hashable, Sendable {
  /// The service instance name, unescaped (`pc01`, `Lab PC.03`); unique per type on a link.
  public var name: String
  /// The announcing host's mDNS name, e.g. `pc01.local`.
  public var hostName: String
  /// Its IPv4 address, dotted quad (avahi is asked for IPv4 only: no link-local IPv6 scope ids).
  public var address: String
  public var port: Int
  /// The TXT record's `key=value` strings. Keys are lower-cased (keys are case-insensitive,
  /// RFC 6763 §6.4) and the first occurrence of a key wins; a string without `=` maps to `""`,
  /// one starting with `=` is ignored. Values are raw text, invalid UTF-8 decoded lossily (U+FFFD);
  /// callers validate them.
  public var txt: [String: String]
  /// The interface index it was resolved on (per network namespace; informational).
  public var interface: Int32
  /// That interface's name (`eth0`) when this process could tell it, for messages.
  public var interfaceName: String?

  public init(
    name: String, hostName: String, address: String, port: Int, txt: [String: String], interface: Int32,
    interfaceName: String? = nil
  ) {
    self.name = name
    self.hostName = hostName
    self.address = address
    self.port = port
    self.txt = txt
    self.interface = interface
    self.interfaceName = interfaceName
  }

  /// `'NAME' (ADDRESS on INTERFACE, host HOST)`, printable: who announced it, and where from.
  public var origin: String {
    let interface = interfaceName ?? "interface \(self.interface)"
    return "'\(displayable(name))' (\(displayable(address)) on \(displayable(interface)), host \(displayable(hostName)))"
  }
}

/// What a browse reports, one service name at a time (a service seen on several interfaces is
/// reported once).
public enum DiscoveryEvent: Hashable, Sendable {
  /// A service name resolved for the first time (or again after it was `gone`).
  case appeared(DiscoveredService)
  /// A known service resolved to something different (TXT, address, port, host name).
  case changed(DiscoveredService)
  /// A service stopped being announced on every interface, for longer than
  /// `Discovery.goneGrace` (so a daemon reload that withdraws and re-adds it is a `changed`).
  case gone(name: String)
  /// Sent once, before `allForNow`: avahi-daemon has reported every service its cache holds
  /// (every host heard announcing itself within the records' lifetime) and each of those has
  /// been resolved or failed to resolve. Usually a few milliseconds into a browse; what the
  /// network's answers add comes after it.
  case cacheRead
  /// Sent once: avahi thinks the first answers are all in (its ~1 s heuristic) and every
  /// service seen until then has been resolved or failed to resolve. More may come later.
  case allForNow
}

/// What a browse of every resolution reports (`Discovery.resolutions`).
enum ResolutionEvent: Hashable, Sendable {
  /// One resolution of one instance on one interface: the first, or a later one that differs
  /// (TXT, address, port, host name).
  case resolved(DiscoveredService)
  /// avahi's "all for now" has come and every instance browsed so far has answered (resolved
  /// or failed to); sent again once the instances that came, or changed, since have answered.
  case settled
}

/// A failure reported by avahi, e.g. "Daemon not running" (no avahi-daemon, or no system D-Bus).
public struct DiscoveryError: Error, Hashable, Sendable, CustomStringConvertible {
  /// avahi's error code (`AVAHI_ERR_*`, negative).
  public var code: Int32
  /// avahi's message for it (`avahi_strerror`).
  public var description: String

  /// Whether avahi-daemon (or the system bus it is reached over) is not running.
  public var isDaemonNotRunning: Bool { code == Self.daemonNotRunningCode }
}

/// Browsing for DNS-SD services through the local avahi-daemon.
///
/// The daemon is reached over the system D-Bus: `DBUS_SYSTEM_BUS_ADDRESS` if set, else
/// `/run/dbus/system_bus_socket`. libdbus reads the variable once, at the process's first
/// connection: set it before the first browse, never between browses.
///
/// Only IPv4 is browsed and resolved. Services of this process's own avahi client are skipped
/// (it publishes none); services published by the local daemon itself (static service files,
/// e.g. a server that is also a client) are reported like any other.
public enum Discovery {
  /// How long a service must stay withdrawn before it is reported `gone`.
  public static let goneGrace: Duration = .seconds(1)

  /// Events buffered for a slow consumer; beyond that the oldest are dropped.
  public static let bufferLimit = 1024

  /// Browses and resolves `type` (e.g. `"_cfi._tcp"`) in the default domain until the consumer
  /// stops iterating or its task is cancelled; then avahi's handles and thread are released (in
  /// the background, shortly after). Each name is resolved on every interface it is seen on and
  /// kept resolved, so TXT changes come as `changed`; the latest resolution of a name wins.
  /// Throws `DiscoveryError` when avahi fails: no daemon, an invalid type, the daemon going away.
  public static func browse(_ type: String) -> AsyncThrowingStream<DiscoveryEvent, any Error> {
    stream(type) { .names($0) }
  }

  /// Browses and resolves `type` like `browse`, but reports every resolution of every instance
  /// on every interface, none merged by name: two announcers of one name (on two links) are two.
  static func browseResolutions(_ type: String) -> AsyncThrowingStream<ResolutionEvent, any Error> {
    stream(type) { .resolutions($0) }
  }

  private static func stream<Event: Sendable>(
    _ type: String, _ output: (AsyncThrowingStream<Event, any Error>.Continuation) -> AvahiBrowseSession.Output
  ) -> AsyncThrowingStream<Event, any Error> {
    AsyncThrowingStream(Event.self, bufferingPolicy: .bufferingNewest(bufferLimit)) { continuation in
      let session = AvahiBrowseSession(output(continuation))
      // Set before start(): avahi may call back, and so finish the stream, from inside start.
      // The hop: stop() joins avahi's thread, and termination can begin on that thread.
      continuation.onTermination = { _ in Task.detached { session.stop() } }
      do {
        try session.start(type: type)
      } catch {
        continuation.finish(throwing: error)
      }
    }
  }

  /// When a snapshot ends (`duration` at the most, always).
  public enum SnapshotEnd: Hashable, Sendable {
    /// When `duration` is up.
    case afterDuration
    /// At avahi's "all for now" (about a second): everything there is now.
    case atAllForNow
    /// At "all for now" if a service is there by then, else as soon as one appears: the
    /// first answer, for a caller waiting for a server that may come up later.
    case atFirstFound
  }

  /// Browses `type` and returns the services present when the snapshot ends (see
  /// `SnapshotEnd`), one per name (the latest resolution), sorted by name.
  /// Throws as `browse` does, or `CancellationError`.
  public static func snapshot(
    _ type: String, for duration: Duration, ending end: SnapshotEnd = .afterDuration
  ) async throws -> [DiscoveredService] {
    struct Present: Sendable {
      var services: [String: DiscoveredService] = [:]
      var allForNow = false
    }
    let present = try await collect(browse(type), for: duration, into: Present()) { present, event in
      switch event {
      case .appeared(let service), .changed(let service): present.services[service.name] = service
      case .gone(let name): present.services[name] = nil
      case .allForNow: present.allForNow = true
      case .cacheRead: break
      }
      switch end {
      case .afterDuration: return false
      case .atAllForNow: return present.allForNow
      case .atFirstFound: return present.allForNow && !present.services.isEmpty
      }
    }
    return present.services.values.sorted { $0.name < $1.name }
  }

  /// Browses `type` and returns every distinct resolution seen until the browse ends (see
  /// `SnapshotEnd`; "all for now" here also waits for every instance seen by then to answer):
  /// each instance on each interface, and each later resolution of it that differs, including
  /// ones withdrawn or replaced before the end. For a decision that must see every announcer,
  /// such as whose key a client trusts: two announcers of one name on two links are both here,
  /// where `snapshot` keeps one. Sorted by name, then interface; otherwise in the order seen.
  /// Throws as `browse` does, or `CancellationError`.
  public static func resolutions(
    _ type: String, for duration: Duration, ending end: SnapshotEnd = .afterDuration
  ) async throws -> [DiscoveredService] {
    struct Seen: Sendable {
      var services: [DiscoveredService] = []
      var distinct: Set<DiscoveredService> = []
      var settled = false
    }
    let seen = try await collect(browseResolutions(type), for: duration, into: Seen()) { seen, event in
      switch event {
      case .resolved(let service):
        if seen.distinct.insert(service).inserted { seen.services.append(service) }
        seen.settled = false
      case .settled:
        seen.settled = true
      }
      switch end {
      case .afterDuration: return false
      case .atAllForNow: return seen.settled
      case .atFirstFound: return seen.settled && !seen.services.isEmpty
      }
    }
    return seen.services.enumerated().sorted { a, b in
      (a.element.name, a.element.interface, a.offset) < (b.element.name, b.element.interface, b.offset)
    }.map(\.element)
  }

  /// Folds `events` into `result` until `update` says it is done, the stream ends, or `duration`
  /// is up (then the browse is stopped and what was folded so far is returned).
  private static func collect<Event: Sendable, Result: Sendable>(
    _ events: AsyncThrowingStream<Event, any Error>, for duration: Duration, into initial: Result,
    _ update: @escaping @Sendable (inout Result, Event) -> Bool
  ) async throws -> Result {
    try await withThrowingTaskGroup(of: Result?.self) { group in
      group.addTask {
        var result = initial
        for try await event in events {
          if update(&result, event) { return result }
        }
        return result  // cancelled: the stream ends without error
      }
      group.addTask {
        try await Task.sleep(for: duration)
        return nil
      }
      while let outcome = try await group.next() {
        if let result = outcome {
          group.cancelAll()
          try Task.checkCancellation()  // the browse ended because we were cancelled
          return result
        }
        group.cancelAll()  // time is up: stop browsing; its result comes next
      }
      return initial
    }
  }
}
