// The C side of Discovery: one AvahiBrowseSession per browse owns libavahi-client's handles (a
// threaded poll, a client, a service browser, a timer and one resolver per service instance)
// and turns their callbacks into DiscoveryEvents (merged by name) or ResolutionEvents (every
// resolution). Discovery.swift is the public face.
//
// avahi runs its event loop on its own thread (avahi_threaded_poll) and calls back there with
// the poll's lock held. Any other thread calls avahi only under that lock (`start`), or after
// the loop's thread has been joined (`stop`).

internal import CAvahi
import Glibc
import Synchronization

extension DiscoveryError {
  init(code: Int32) {
    self.init(code: code, description: String(cString: avahi_strerror(code)))
  }

  static var daemonNotRunningCode: Int32 { Int32(AVAHI_ERR_NO_DAEMON) }
}

/// One browse: avahi's handles and what has been seen, reported through `output`.
///
/// Invariant (why `@unchecked Sendable` holds): every stored `var` and every avahi handle is
/// touched only (a) with the poll's lock held: in avahi's callbacks (on its thread, or on the
/// caller's inside `avahi_client_new`) and in `start`; or (b) in `stop`, after avahi's thread has
/// been joined. `start` and `stop` are serialised by `lifecycle`; `stop` runs once, never on
/// avahi's thread.
/// The callbacks' userdata is this object, unretained: `browse`'s `onTermination` (and then the
/// task that calls `stop`) keeps it alive until no callback can run.
final class AvahiBrowseSession: @unchecked Sendable {
  /// Where an instance was seen; with the name, it identifies one browse result.
  private struct Slot: Hashable {
    var interface: Int32
    var proto: Int32
  }

  /// One browse result (a name on an interface and protocol) and its resolver.
  private struct Instance {
    var resolver: OpaquePointer?
    var service: DiscoveredService?
    /// Order of resolution, so the latest one can be reported when another goes away.
    var sequence: UInt64 = 0
    /// No answer yet (found or failed): `allForNow` waits for it.
    var awaitingFirstAnswer = true
  }

  /// Where a session's findings go.
  enum Output {
    /// One event per name, the latest resolution winning (`Discovery.browse`).
    case names(AsyncThrowingStream<DiscoveryEvent, any Error>.Continuation)
    /// Every resolution (`Discovery.browseResolutions`).
    case resolutions(AsyncThrowingStream<ResolutionEvent, any Error>.Continuation)
  }

  private let output: Output
  /// Whether `stop` has run; held for all of `start` and `stop`.
  private let lifecycle = Mutex(false)

  private var poll: OpaquePointer?
  private var api: UnsafePointer<AvahiPoll>?
  private var client: OpaquePointer?
  private var browser: OpaquePointer?
  /// Fires when a withdrawn name's grace period ends; disabled when none is pending.
  private var timer: OpaquePointer?

  private var instances: [String: [Slot: Instance]] = [:]
  private var resolverOwners: [OpaquePointer: (name: String, slot: Slot)] = [:]
  /// What the consumer was last told about each name.
  private var reported: [String: DiscoveredService] = [:]
  /// Names withdrawn everywhere, and when they will be reported `gone` unless they come back.
  private var departing: [String: ContinuousClock.Instant] = [:]
  private var sequence: UInt64 = 0
  private var browserSaidAllForNow = false
  private var sentAllForNow = false
  private var browserReadCache = false
  private var sentCacheRead = false
  /// (`resolutions`) Whether every instance had answered after the previous callback, and
  /// whether a resolution was reported since `settled` was last sent.
  private var wasSettled = false
  private var resolvedSinceSettled = false

  init(_ output: Output) {
    self.output = output
  }

  /// Connects to avahi-daemon and starts browsing `type`; events follow on avahi's thread.
  /// On failure, what was created stays for `stop` to free.
  func start(type: String) throws(DiscoveryError) {
    try lifecycle.withLock { (stopped: inout Bool) throws(DiscoveryError) in
      guard !stopped else { return }
      guard let poll = avahi_threaded_poll_new() else { throw DiscoveryError(code: Int32(AVAHI_ERR_NO_MEMORY)) }
      self.poll = poll
      guard let api = avahi_threaded_poll_get(poll) else { throw DiscoveryError(code: Int32(AVAHI_ERR_FAILURE)) }
      self.api = api
      guard avahi_threaded_poll_start(poll) == 0 else { throw DiscoveryError(code: Int32(AVAHI_ERR_FAILURE)) }
      avahi_threaded_poll_lock(poll)
      defer { avahi_threaded_poll_unlock(poll) }
      let me = Unmanaged.passUnretained(self).toOpaque()
      guard let timer = api.pointee.timeout_new(api, nil, avahiTimerCallback, me) else {
        throw DiscoveryError(code: Int32(AVAHI_ERR_NO_MEMORY))
      }
      self.timer = timer
      var error: Int32 = 0
      // Calls back already from inside avahi_client_new (pitfall 7): the callbacks use their
      // own handle arguments, never the properties being set here.
      guard let client = avahi_client_new(api, AvahiClientFlags(0), avahiClientCallback, me, &error) else {
        throw DiscoveryError(code: error)
      }
      self.client = client
      guard
        let browser = avahi_service_browser_new(
          client, AvahiIfIndex(AVAHI_IF_UNSPEC), AvahiProtocol(AVAHI_PROTO_INET), type, nil, AvahiLookupFlags(0),
          avahiBrowserCallback, me)
      else { throw DiscoveryError(code: avahi_client_errno(client)) }
      self.browser = browser
    }
  }

  /// Stops avahi's thread, then frees every handle. Idempotent; never call it on avahi's thread.
  func stop() {
    lifecycle.withLock { stopped in
      guard !stopped else { return }
      stopped = true
      guard let poll else { return }
      avahi_threaded_poll_stop(poll)  // joins the thread: no callback runs after this
      if let timer, let api { api.pointee.timeout_free(timer) }
      // Frees the browser and every resolver with it (client.h), and closes the D-Bus connection.
      if let client { avahi_client_free(client) }
      avahi_threaded_poll_free(poll)
      self.poll = nil
      api = nil
      client = nil
      browser = nil
      timer = nil
      resolverOwners = [:]
      instances = [:]
    }
  }

  // MARK: Callbacks (avahi's thread, lock held)

  fileprivate func fail(_ code: Int32) {
    switch output {
    case .names(let continuation): continuation.finish(throwing: DiscoveryError(code: code))
    case .resolutions(let continuation): continuation.finish(throwing: DiscoveryError(code: code))
    }
  }

  fileprivate func browserEvent(
    _ browser: OpaquePointer, _ interface: AvahiIfIndex, _ proto: AvahiProtocol, _ event: AvahiBrowserEvent,
    _ name: UnsafePointer<CChar>?, _ type: UnsafePointer<CChar>?, _ domain: UnsafePointer<CChar>?,
    _ flags: AvahiLookupResultFlags
  ) {
    switch event {
    case AVAHI_BROWSER_NEW:
      guard let name, let type, flags.rawValue & AVAHI_LOOKUP_RESULT_OUR_OWN.rawValue == 0 else { return }
      let key = String(cString: name)
      let slot = Slot(interface: interface, proto: proto)
      guard instances[key]?[slot] == nil else { return }
      // Kept until the instance goes away, so it reports TXT and address changes too.
      let resolver = avahi_service_resolver_new(
        avahi_service_browser_get_client(browser), interface, proto, name, type, domain,
        AvahiProtocol(AVAHI_PROTO_INET), AvahiLookupFlags(0), avahiResolverCallback,
        Unmanaged.passUnretained(self).toOpaque())
      instances[key, default: [:]][slot] = Instance(resolver: resolver, awaitingFirstAnswer: resolver != nil)
      if let resolver { resolverOwners[resolver] = (key, slot) }
    case AVAHI_BROWSER_REMOVE:
      guard let name else { return }
      remove(String(cString: name), Slot(interface: interface, proto: proto))
    case AVAHI_BROWSER_ALL_FOR_NOW:
      browserSaidAllForNow = true
    case AVAHI_BROWSER_FAILURE:
      fail(avahi_client_errno(avahi_service_browser_get_client(browser)))
    default:  // AVAHI_BROWSER_CACHE_EXHAUSTED
      browserReadCache = true
    }
    sendAllForNowIfDone()
  }

  fileprivate func resolverEvent(
    _ resolver: OpaquePointer, _ interface: AvahiIfIndex, _ event: AvahiResolverEvent,
    _ hostName: UnsafePointer<CChar>?, _ address: UnsafePointer<AvahiAddress>?, _ port: UInt16,
    _ txt: UnsafeMutablePointer<AvahiStringList>?
  ) {
    guard let (name, slot) = resolverOwners[resolver], var instance = instances[name]?[slot] else { return }
    instance.awaitingFirstAnswer = false
    // A failure (timeout) leaves the resolver running: it reports the service if it answers later.
    if event == AVAHI_RESOLVER_FOUND, let hostName, let address,
      address.pointee.proto == AvahiProtocol(AVAHI_PROTO_INET)
    {
      let text = withUnsafeTemporaryAllocation(of: CChar.self, capacity: Int(AVAHI_ADDRESS_STR_MAX)) { buffer in
        avahi_address_snprint(buffer.baseAddress, buffer.count, address).map { String(cString: $0) } ?? ""
      }
      let service = DiscoveredService(
        name: name, hostName: String(cString: hostName), address: text, port: Int(port),
        txt: Self.decodeTXT(txt), interface: interface, interfaceName: Self.interfaceName(interface))
      sequence += 1
      instance.service = service
      instance.sequence = sequence
      instances[name]?[slot] = instance
      departing[name] = nil
      switch output {
      case .names: report(service)
      case .resolutions(let continuation):
        continuation.yield(.resolved(service))
        resolvedSinceSettled = true
      }
    } else {
      instances[name]?[slot] = instance
    }
    sendAllForNowIfDone()
  }

  fileprivate func timerFired() {
    let now = ContinuousClock.now
    for (name, deadline) in departing where deadline <= now {
      departing[name] = nil
      if instances[name] == nil, reported.removeValue(forKey: name) != nil, case .names(let continuation) = output {
        continuation.yield(.gone(name: name))
      }
    }
    armTimer()
  }

  // MARK: Bookkeeping (avahi's thread)

  private func remove(_ name: String, _ slot: Slot) {
    guard var slots = instances[name], let instance = slots.removeValue(forKey: slot) else { return }
    if let resolver = instance.resolver {
      resolverOwners[resolver] = nil
      avahi_service_resolver_free(resolver)
    }
    // Every resolution was reported as it came: a withdrawal takes nothing back.
    guard case .names = output else {
      instances[name] = slots.isEmpty ? nil : slots
      return
    }
    if slots.isEmpty {
      instances[name] = nil
      if reported[name] != nil {
        departing[name] = .now + Discovery.goneGrace
        armTimer()
      }
    } else {
      instances[name] = slots
      let latest = slots.values.filter { $0.service != nil }.max { $0.sequence < $1.sequence }
      if let service = latest?.service { report(service) }
    }
  }

  /// Tells the consumer about `service` unless that is what it already knows (`names`).
  private func report(_ service: DiscoveredService) {
    guard case .names(let continuation) = output else { return }
    switch reported[service.name] {
    case nil: continuation.yield(.appeared(service))
    case service?: return
    default: continuation.yield(.changed(service))
    }
    reported[service.name] = service
  }

  /// Once the browser has said "cache exhausted" (or "all for now") and every instance has
  /// answered: `cacheRead`, once (`names`). Once it has said "all for now" and every instance
  /// has answered: `allForNow`, once (`names`); `settled`, again whenever more came since
  /// (`resolutions`).
  private func sendAllForNowIfDone() {
    guard browserReadCache || browserSaidAllForNow else { return }
    let settled = !instances.values.contains { $0.values.contains(where: \.awaitingFirstAnswer) }
    if settled, !sentCacheRead, case .names(let continuation) = output {
      sentCacheRead = true
      continuation.yield(.cacheRead)
    }
    guard browserSaidAllForNow else { return }
    defer { wasSettled = settled }
    guard settled else { return }
    switch output {
    case .names(let continuation):
      guard !sentAllForNow else { return }
      sentAllForNow = true
      continuation.yield(.allForNow)
    case .resolutions(let continuation):
      guard !wasSettled || resolvedSinceSettled else { return }
      resolvedSinceSettled = false
      continuation.yield(.settled)
    }
  }

  /// The name of interface `index` in this network namespace, if it has one.
  private static func interfaceName(_ index: AvahiIfIndex) -> String? {
    withUnsafeTemporaryAllocation(of: CChar.self, capacity: Int(IF_NAMESIZE)) { buffer in
      guard index > 0, let name = if_indextoname(UInt32(index), buffer.baseAddress) else { return nil }
      return String(cString: name)
    }
  }

  /// Sets the timer to the earliest pending `gone`, or disables it.
  private func armTimer() {
    guard let api, let timer else { return }
    guard let earliest = departing.values.min() else {
      api.pointee.timeout_update(timer, nil)
      return
    }
    let wait = ContinuousClock.now.duration(to: earliest) / .milliseconds(1)
    var when = timeval()
    avahi_elapse_time(&when, UInt32(max(0, wait.rounded(.up))) + 1, 0)
    api.pointee.timeout_update(timer, &when)
  }

  /// The TXT strings as a dictionary (see `DiscoveredService.txt`). Sizes come from avahi (each
  /// string ≤ 255 bytes, the record ≤ 64 KiB), and bytes are decoded lossily, so junk cannot trap.
  static func decodeTXT(_ list: UnsafeMutablePointer<AvahiStringList>?) -> [String: String] {
    // In wire order here: avahi-daemon keeps TXT lists reversed (avahi_string_list_parse prepends,
    // _serialize reverses), sends them over D-Bus as kept, and libavahi-client prepends again.
    // (avahi-browse reverses once more for display, so it shows them backwards.)
    var txt: [String: String] = [:]
    var node = list
    while let current = node {
      node = avahi_string_list_get_next(current)
      let bytes = UnsafeRawBufferPointer(
        start: avahi_string_list_get_text(current), count: avahi_string_list_get_size(current))
      let equals = bytes.firstIndex(of: UInt8(ascii: "="))
      let key = String(decoding: bytes[..<(equals ?? bytes.endIndex)], as: UTF8.self).lowercased()
      guard !key.isEmpty, txt[key] == nil else { continue }
      txt[key] = equals.map { String(decoding: bytes[($0 + 1)...], as: UTF8.self) } ?? ""
    }
    return txt
  }
}

// C callbacks: plain functions (C function pointers cannot capture); userdata is the session.

private func session(_ userdata: UnsafeMutableRawPointer?) -> AvahiBrowseSession? {
  userdata.map { Unmanaged<AvahiBrowseSession>.fromOpaque($0).takeUnretainedValue() }
}

private func avahiClientCallback(
  _ client: OpaquePointer?, _ state: AvahiClientState, _ userdata: UnsafeMutableRawPointer?
) {
  guard state == AVAHI_CLIENT_FAILURE, let client else { return }
  session(userdata)?.fail(avahi_client_errno(client))
}

private func avahiBrowserCallback(
  _ browser: OpaquePointer?, _ interface: AvahiIfIndex, _ proto: AvahiProtocol, _ event: AvahiBrowserEvent,
  _ name: UnsafePointer<CChar>?, _ type: UnsafePointer<CChar>?, _ domain: UnsafePointer<CChar>?,
  _ flags: AvahiLookupResultFlags, _ userdata: UnsafeMutableRawPointer?
) {
  guard let browser else { return }
  session(userdata)?.browserEvent(browser, interface, proto, event, name, type, domain, flags)
}

private func avahiResolverCallback(
  _ resolver: OpaquePointer?, _ interface: AvahiIfIndex, _ proto: AvahiProtocol, _ event: AvahiResolverEvent,
  _ name: UnsafePointer<CChar>?, _ type: UnsafePointer<CChar>?, _ domain: UnsafePointer<CChar>?,
  _ hostName: UnsafePointer<CChar>?, _ address: UnsafePointer<AvahiAddress>?, _ port: UInt16,
  _ txt: UnsafeMutablePointer<AvahiStringList>?, _ flags: AvahiLookupResultFlags, _ userdata: UnsafeMutableRawPointer?
) {
  guard let resolver else { return }
  session(userdata)?.resolverEvent(resolver, interface, event, hostName, address, port, txt)
}

private func avahiTimerCallback(_ timer: OpaquePointer?, _ userdata: UnsafeMutableRawPointer?) {
  session(userdata)?.timerFired()
}
