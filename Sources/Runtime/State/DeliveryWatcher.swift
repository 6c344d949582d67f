// The delivery watcher (`cfi-sh watch`): runs the deliveries still owed to hosts that were
// off (`Deliveries`) when those hosts come back. It browses the announcements of clients
// continuously; a host with pending deliveries that announces itself (and that the
// inventory accepts as it announces itself: never a pending or rejected claim) gets them,
// in the order they were made. A host that stays silent is tried every `retryInterval`
// (it may be up without announcing). Running a delivery is the caller's (a normal run,
// limited to the hosts): the watcher decides when, claims, and settles.
//
// When a host is due, from its pending deliveries (oldest first):
//   - its last try is the newest of their last attempts and, for one never attempted, of
//     when it was recorded (the recording run found the host off then);
//   - an announcement after its last try makes it due at once (after `gather`, so that hosts
//     announcing together go in one run);
//   - silent, it is due `retryInterval` after its last try;
//   - after an attempt that failed on the host or could not run, it waits `retryInterval`
//     whatever it announces: no tight loop on a runbook that fails there. (An unreachable or
//     interrupted attempt is retried at the next announcement: that is news.)
// A host's deliveries go in order, and a host stops at its first one not done (the later
// ones wait: they may rely on it). The deliveries of one recording run that are next for
// several due hosts go as one run limited to those hosts. Every delivery is claimed before
// its run (`Deliveries.claim`: another watcher's, or a claim of a live process, is left
// alone) and settled after it; every pass first takes back the claims of processes that
// died (a `--once` killed mid-delivery). A result the database would not take is tried
// again at the next pass, and before the watcher returns. State lives in the database, so a
// watcher restarted carries on where the last one was, and never runs a delivery that is done.

import Foundation
import Synchronization

/// The time a watcher goes by: the wall clock, or a test's.
public protocol WatchClock: Sendable {
  func now() -> Date
  /// Returns at `deadline` (at once when it is past); throws when the task is cancelled.
  func sleep(until deadline: Date) async throws
}

/// The wall clock.
public struct SystemWatchClock: WatchClock {
  public init() {}
  public func now() -> Date { Date() }
  public func sleep(until deadline: Date) async throws {
    let seconds = deadline.timeIntervalSinceNow
    if seconds > 0 { try await Task.sleep(for: .milliseconds(Int64(seconds * 1000) + 1)) }
  }
}

/// What started an attempt.
public enum DeliveryTrigger: String, Sendable {
  /// The host announced itself.
  case announced
  /// It stayed silent for the retry interval.
  case retry
  /// `cfi-sh watch --once`: every host with pending deliveries.
  case once
}

/// How the run of one delivery batch went, as the caller ran it.
public struct DeliveryRunResult: Sendable {
  /// The run's id; nil when it did not start.
  public var run: String?
  /// Per host that took part: how it ended (the host's status and why).
  public var outcomes: [HostName: DeliveryAttempt]
  /// Why the run could not run (its runbook wrong now, the lock not had), for the hosts
  /// without an outcome.
  public var failure: String?
  /// A signal stopped it: the watcher settles its claims and stops.
  public var stopped: Bool

  public init(run: String?, outcomes: [HostName: DeliveryAttempt], failure: String? = nil, stopped: Bool = false) {
    self.run = run
    self.outcomes = outcomes
    self.failure = failure
    self.stopped = stopped
  }
}

/// One attempt at one delivery, for the watcher's log.
public struct DeliveryAttemptReport: Sendable {
  public var delivery: Int64
  public var host: HostName
  public var runbook: String
  public var trigger: DeliveryTrigger
  /// The host's status in the run (`not_run` when it had none).
  public var status: String
  /// Whether the delivery is done (else it stays pending).
  public var done: Bool
  /// Why (hashes redacted).
  public var reason: String?
  public var run: String?
}

/// What a watcher tells as it goes.
public enum DeliveryWatchEvent: Sendable {
  /// The claims of processes that died while delivering were given back (how many).
  case recovered(Int)
  case attempt(DeliveryAttemptReport)
  /// Deliveries past their expiry, given up.
  case expired([Delivery])
  /// Browsing failed (no avahi-daemon): tried again after `retryIn`; silent hosts are still
  /// tried on the interval meanwhile.
  case discoveryFailed(String, retryIn: Duration)
  /// Browsing works again after a failure.
  case discoveryResumed
  /// The database could not be read or written (the watcher tries again at its next pass).
  case databaseFailed(String)
  /// The claim of this delivery was taken back while its attempt ran (its process was
  /// deemed dead): the attempt's result is not recorded, the claim's new holder records its own.
  case claimLost(delivery: Int64, host: HostName)
  /// The results of these deliveries could not be recorded before the watcher returned:
  /// they stay `running` until the next watcher takes the claims back and runs them again.
  case unsettled([Int64])
}

/// How one pass went (for `--once`'s exit status).
public struct DeliveryPassSummary: Sendable, Equatable {
  public var done = 0
  /// Failed on the host (pending with the reason).
  public var failed = 0
  /// Unreachable or interrupted (pending: the host is still off).
  public var waiting = 0
  /// Could not run (the runbook, the lock, the database).
  public var notRun = 0
  /// Ran, but their results could not be recorded (the database busy).
  public var unsettled = 0
  /// A signal stopped the pass.
  public var stopped = false

  public init() {}
}

/// Watches for hosts with pending deliveries and runs them.
public struct DeliveryWatcher: Sendable {
  public typealias Runner = @Sendable (_ runbook: DeliveryRunbook, _ hosts: [HostName]) async -> DeliveryRunResult

  public var deliveries: Deliveries
  public var retryInterval: Duration
  /// How long after an announcement the pass waits for other hosts announcing at the same time.
  public var gather: Duration
  public var clock: any WatchClock
  /// A browse of client announcements (`Discovery.browse(ServiceType.client)`).
  public var announcements: @Sendable () -> AsyncThrowingStream<DiscoveryEvent, any Error>
  /// The host an announcement is, when the inventory accepts it as announced; nil otherwise.
  public var accept: @Sendable (DiscoveredService) -> HostName?
  public var run: Runner
  public var report: @Sendable (DeliveryWatchEvent) -> Void

  /// Longest wait between two browse attempts after failures.
  public static let maximumBackoff: Duration = .seconds(60)

  public init(
    deliveries: Deliveries, retryInterval: Duration, gather: Duration = .seconds(1), clock: any WatchClock = SystemWatchClock(),
    announcements: @escaping @Sendable () -> AsyncThrowingStream<DiscoveryEvent, any Error>,
    accept: @escaping @Sendable (DiscoveredService) -> HostName?, run: @escaping Runner,
    report: @escaping @Sendable (DeliveryWatchEvent) -> Void
  ) {
    self.deliveries = deliveries
    self.retryInterval = retryInterval
    self.gather = gather
    self.clock = clock
    self.announcements = announcements
    self.accept = accept
    self.run = run
    self.report = report
  }

  private enum Wake: Sendable {
    /// A host announced itself at this time (`Memory.announced` has it already).
    case announced(Date)
    case timer
  }

  /// What a watcher keeps between passes: when each host last announced itself (written by
  /// the browse as announcements come), the attempts whose settling failed (tried again
  /// first), and whether it has made a pass yet (before its first, no claim is its own).
  struct Memory: Sendable {
    let announced = Announced()
    var unsettled: [(id: Int64, host: HostName, attempt: DeliveryAttempt)] = []
    var started = false
  }

  /// How many times the results not yet recorded are tried before a watcher returns (each
  /// try waits up to the database's busy timeout).
  static let finalSettleTries = 3

  /// Watches until the task is cancelled or a signal stops a delivery's run.
  public func watch() async {
    let (wakes, continuation) = AsyncStream.makeStream(of: Wake.self, bufferingPolicy: .bufferingNewest(1024))
    var memory = Memory()
    let discovery = Task { [announced = memory.announced] in await browse(into: continuation, announced: announced) }
    defer {
      discovery.cancel()
      continuation.finish()
      settleLeft(&memory)
    }
    var passAt = clock.now()
    var iterator = wakes.makeAsyncIterator()
    while !Task.isCancelled {
      if clock.now() >= passAt {
        let (summary, next) = await pass(&memory, everyHost: false)
        if summary.stopped { return }
        passAt = next
      }
      let deadline = passAt
      let timer = Task { [clock] in
        if (try? await clock.sleep(until: deadline)) != nil { continuation.yield(.timer) }
      }
      let wake = await iterator.next()
      timer.cancel()
      switch wake {
      case nil: return
      case .timer: continue
      case .announced(let date):
        passAt = min(passAt, date.adding(gather))
      }
    }
  }

  /// One pass for cron (`--once`): every host with pending deliveries is tried once.
  public func once() async -> DeliveryPassSummary {
    var memory = Memory()
    var summary = await pass(&memory, everyHost: true).summary
    summary.unsettled = settleLeft(&memory)
    return summary
  }

  /// Takes back the claims of processes that died; `starting`: this watcher has made none yet.
  private func recover(starting: Bool) {
    do {
      let count = try deliveries.recoverAbandoned(starting: starting)
      if count > 0 { report(.recovered(count)) }
    } catch {
      report(.databaseFailed("\(error)"))
    }
  }

  /// Before returning: tries a few times more to record the results not recorded yet, and
  /// tells those left; returns how many are left.
  @discardableResult
  private func settleLeft(_ memory: inout Memory) -> Int {
    for _ in 0..<Self.finalSettleTries where !memory.unsettled.isEmpty {
      memory.unsettled = memory.unsettled.filter { !settle($0.id, $0.host, $0.attempt) }
    }
    if !memory.unsettled.isEmpty { report(.unsettled(memory.unsettled.map(\.id))) }
    return memory.unsettled.count
  }

  /// Browses until cancelled; a failure is told and the browse tried again, backing off.
  private func browse(into wakes: AsyncStream<Wake>.Continuation, announced: Announced) async {
    var backoff: Duration = .seconds(1)
    var failing = false
    while !Task.isCancelled {
      do {
        for try await event in announcements() {
          if failing {
            failing = false
            backoff = .seconds(1)
            report(.discoveryResumed)
          }
          switch event {
          case .appeared(let service), .changed(let service):
            if let host = accept(service) {
              let now = clock.now()
              announced.dates.withLock { $0[host] = now }
              wakes.yield(.announced(now))
            }
          case .gone, .cacheRead, .allForNow:
            break
          }
        }
        if Task.isCancelled { return }
        report(.discoveryFailed("the browse ended", retryIn: backoff))
      } catch {
        if Task.isCancelled { return }
        report(.discoveryFailed("\(error)", retryIn: backoff))
      }
      failing = true
      do { try await clock.sleep(until: clock.now().adding(backoff)) } catch { return }
      backoff = min(backoff * 2, Self.maximumBackoff)
    }
  }

  // MARK: One pass

  /// Expires, runs what is due, and returns how it went and when the next pass is due.
  func pass(_ memory: inout Memory, everyHost: Bool) async -> (summary: DeliveryPassSummary, next: Date) {
    var summary = DeliveryPassSummary()
    let start = clock.now()
    memory.unsettled = memory.unsettled.filter { !settle($0.id, $0.host, $0.attempt) }
    recover(starting: !memory.started)
    memory.started = true
    let announced = memory.announced.dates.withLock { $0 }
    do {
      let expired = try deliveries.expire(at: start)
      if !expired.isEmpty { report(.expired(expired)) }
      var queues = Self.queues(try deliveries.list(states: [.pending, .running]), now: start)
      var triggers: [HostName: DeliveryTrigger] = [:]
      for (host, queue) in queues {
        if let trigger = everyHost ? .once : due(queue, announced: announced[host], now: start) {
          triggers[host] = trigger
        }
      }
      queues = queues.filter { triggers[$0.key] != nil }
      while let batch = Self.nextBatch(queues) {
        for host in batch.map(\.host) { queues[host]?.removeFirst() }
        let claimed = try deliveries.claim(batch.map(\.id), at: clock.now())
        // A delivery another process holds: its host's later ones wait for it.
        for delivery in batch where !claimed.contains(delivery.id) { queues[delivery.host] = nil }
        let running = batch.filter { claimed.contains($0.id) }
        guard let first = running.first else { continue }
        let result: DeliveryRunResult
        do {
          let runbook = try deliveries.runbook(of: first)
          result = await run(runbook, running.map(\.host))
        } catch {
          result = DeliveryRunResult(run: nil, outcomes: [:], failure: "\(error)")
        }
        for delivery in running {
          let attempt =
            result.outcomes[delivery.host]
            ?? DeliveryAttempt(status: nil, reason: result.failure ?? "the run gave no result for it", run: result.run)
          if !settle(delivery.id, delivery.host, attempt) { memory.unsettled.append((delivery.id, delivery.host, attempt)) }
          let done = attempt.status == .ok || attempt.status == .changed
          count(attempt.status, done: done, in: &summary)
          if !done { queues[delivery.host] = nil }
          report(
            .attempt(
              DeliveryAttemptReport(
                delivery: delivery.id, host: delivery.host, runbook: delivery.runbook,
                trigger: triggers[delivery.host] ?? .retry, status: attempt.status?.rawValue ?? "not_run", done: done,
                reason: attempt.reason.map(Secret.redactingHashes(in:)), run: attempt.run)))
        }
        if result.stopped || Task.isCancelled {
          summary.stopped = true
          break
        }
      }
      return (summary, try nextPass(after: clock.now(), memory: memory))
    } catch {
      report(.databaseFailed("\(error)"))
      summary.notRun += 1
      return (summary, clock.now().adding(min(retryInterval, Self.maximumBackoff)))
    }
  }

  private func count(_ status: StepStatus?, done: Bool, in summary: inout DeliveryPassSummary) {
    switch status {
    case _ where done: summary.done += 1
    case .failed?: summary.failed += 1
    case .unreachable?, .interrupted?: summary.waiting += 1
    default: summary.notRun += 1
    }
  }

  /// Settles an attempt (or tells that its claim is no longer this process's); false when
  /// the database would not have it (tried again next pass).
  private func settle(_ id: Int64, _ host: HostName, _ attempt: DeliveryAttempt) -> Bool {
    do {
      if try !deliveries.settle(id, attempt, at: clock.now()) { report(.claimLost(delivery: id, host: host)) }
      return true
    } catch {
      report(.databaseFailed("\(error)"))
      return false
    }
  }

  /// The pending deliveries not past their expiry, per host, oldest first; none for a host
  /// with one running (in another process, or not yet settled here): its later ones wait.
  static func queues(_ open: [Delivery], now: Date) -> [HostName: [Delivery]] {
    let busy = Set(open.filter { $0.state == .running }.map(\.host))
    let waiting = open.filter { $0.state == .pending && !busy.contains($0.host) && ($0.expires.map { $0 > now } ?? true) }
    return Dictionary(grouping: waiting.sorted { $0.id < $1.id }, by: \.host)
  }

  /// The host's last try: the newest of its deliveries' last attempts and, for those never
  /// attempted, when they were recorded (the recording run found it off then).
  static func lastTry(_ queue: [Delivery]) -> Date {
    queue.map { $0.lastAttempt ?? $0.created }.max() ?? .distantPast
  }

  /// Whether an attempt that ended so holds the host back for the retry interval whatever it
  /// announces: it failed there, or could not run.
  public static func holdsBack(_ status: String?) -> Bool {
    guard let status else { return false }
    return status != StepStatus.unreachable.rawValue && status != StepStatus.interrupted.rawValue
  }

  /// Why a host with these deliveries is due now, or nil when it is not.
  func due(_ queue: [Delivery], announced: Date?, now: Date) -> DeliveryTrigger? {
    let last = Self.lastTry(queue)
    let latest = queue.filter { $0.lastAttempt != nil }.max { $0.lastAttempt! < $1.lastAttempt! }
    let heldUntil = latest.flatMap { Self.holdsBack($0.lastStatus) ? $0.lastAttempt!.adding(retryInterval) : nil }
    if let heldUntil, now < heldUntil { return nil }
    if let announced, announced > last { return .announced }
    return now >= last.adding(retryInterval) ? .retry : nil
  }

  /// The next batch: the heads of the queues (each host's oldest delivery) that come from the
  /// recording run of the oldest head, in host order.
  static func nextBatch(_ queues: [HostName: [Delivery]]) -> [Delivery]? {
    let heads = queues.values.compactMap(\.first)
    guard let oldest = heads.min(by: { $0.id < $1.id }) else { return nil }
    return heads.filter { $0.origin == oldest.origin }.sorted { HostFolding.naturalLess($0.host, $1.host) }
  }

  /// When the next pass is due: the first silent host's retry, or the first expiry; at the
  /// latest one retry interval from now (deliveries recorded meanwhile by other runs).
  private func nextPass(after now: Date, memory: Memory) throws(StateDatabaseError) -> Date {
    var next = now.adding(retryInterval)
    let open = try deliveries.list(states: [.pending, .running])
    for queue in Self.queues(open, now: now).values {
      next = min(next, max(now, Self.lastTry(queue).adding(retryInterval)))
    }
    for expires in open.compactMap(\.expires) where expires > now { next = min(next, expires) }
    if !memory.unsettled.isEmpty { next = min(next, now.adding(.seconds(5))) }
    return next
  }
}

/// When each host last announced itself (as the inventory accepts it).
final class Announced: Sendable {
  let dates = Mutex<[HostName: Date]>([:])
}

extension Date {
  /// This date plus a duration.
  func adding(_ duration: Duration) -> Date {
    addingTimeInterval(TimeInterval(duration.wholeMilliseconds) / 1000)
  }
}
