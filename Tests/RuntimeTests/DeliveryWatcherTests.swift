// The delivery watcher's scheduling without a lab: announcements from a stream the test
// feeds, a clock the test moves, a runner that records its calls and answers per host, and
// the real queue on a scratch database. A "barrier" host (its own delivery, announced last)
// shows that nothing else ran before it: runs are sequential, announcements handled in order.

import Foundation
import GRDB
import Synchronization
import Testing

@testable import Runtime
import TestSupport

/// A clock that moves only when the test says.
final class ManualClock: WatchClock {
  private struct Sleeper {
    var id: Int
    var deadline: Date
    var continuation: CheckedContinuation<Void, any Error>
  }

  private struct State {
    var now: Date
    var nextID = 0
    var sleepers: [Sleeper] = []
    var cancelled: Set<Int> = []
  }

  private let state: Mutex<State>

  init(_ start: Date) { state = Mutex(State(now: start)) }

  func now() -> Date { state.withLock { $0.now } }

  func sleep(until deadline: Date) async throws {
    let id = state.withLock { state in
      defer { state.nextID += 1 }
      return state.nextID
    }
    try await withTaskCancellationHandler {
      try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
        let now: Result<Void, any Error>? = state.withLock { state in
          if state.cancelled.contains(id) { return .failure(CancellationError()) }
          if deadline <= state.now { return .success(()) }
          state.sleepers.append(Sleeper(id: id, deadline: deadline, continuation: continuation))
          return nil
        }
        if let now { continuation.resume(with: now) }
      }
    } onCancel: {
      let sleeper = state.withLock { state -> Sleeper? in
        state.cancelled.insert(id)
        guard let index = state.sleepers.firstIndex(where: { $0.id == id }) else { return nil }
        return state.sleepers.remove(at: index)
      }
      sleeper?.continuation.resume(throwing: CancellationError())
    }
  }

  func advance(_ duration: Duration) {
    let due = state.withLock { state in
      state.now = state.now.adding(duration)
      let due = state.sleepers.filter { $0.deadline <= state.now }
      state.sleepers.removeAll { $0.deadline <= state.now }
      return due
    }
    for sleeper in due { sleeper.continuation.resume() }
  }
}

/// Values appended as they come; a test awaits the n-th (a watchdog fails it when it never comes).
final class Arrivals<Value: Sendable>: Sendable {
  private struct State {
    var values: [Value] = []
    var waiters: [(id: Int, index: Int, continuation: CheckedContinuation<Value?, Never>)] = []
    var nextID = 0
  }

  private let state = Mutex(State())

  var all: [Value] { state.withLock { $0.values } }

  func append(_ value: Value) {
    let ready = state.withLock { state in
      state.values.append(value)
      let ready = state.waiters.filter { $0.index < state.values.count }
      state.waiters.removeAll { $0.index < state.values.count }
      return ready.map { ($0.continuation, state.values[$0.index]) }
    }
    for (continuation, value) in ready { continuation.resume(returning: value) }
  }

  /// The value at `index`, once it has come; fails the test after `seconds` (a watchdog).
  func value(at index: Int, within seconds: Int = 10, _ what: String) async throws -> Value {
    let value = await withTaskGroup(of: Value?.self) { group in
      group.addTask { await self.wait(index) }
      group.addTask {
        try? await Task.sleep(for: .seconds(seconds))
        return nil
      }
      let first = await group.next() ?? nil
      group.cancelAll()
      return first
    }
    guard let value else {
      Issue.record("watchdog: \(what) did not come")
      throw CancellationError()
    }
    return value
  }

  private func wait(_ index: Int) async -> Value? {
    let id = state.withLock { state in
      defer { state.nextID += 1 }
      return state.nextID
    }
    return await withTaskCancellationHandler {
      await withCheckedContinuation { (continuation: CheckedContinuation<Value?, Never>) in
        let now: Value?? = state.withLock { state in
          if Task.isCancelled { return .some(nil) }
          if index < state.values.count { return .some(state.values[index]) }
          state.waiters.append((id, index, continuation))
          return .none
        }
        if let now { continuation.resume(returning: now) }
      }
    } onCancel: {
      let waiter = state.withLock { state in
        state.waiters.firstIndex { $0.id == id }.map { state.waiters.remove(at: $0) }
      }
      waiter?.continuation.resume(returning: nil)
    }
  }
}

/// One call of the runner: the runbook's name and the hosts.
struct RunCall: Sendable, Equatable {
  var runbook: String
  var hosts: [String]
}

@Suite struct DeliveryWatcherTests {
  let scratch = FleetRunScratch()
  let start = Date(timeIntervalSince1970: 1_800_000_000)
  let retry: Duration = .seconds(600)

  /// A watcher and what it does, with a queue of deliveries of its own.
  final class Fixture: Sendable {
    let deliveries: Deliveries
    let clock: ManualClock
    let calls = Arrivals<RunCall>()
    let events = Arrivals<DeliveryWatchEvent>()
    /// The hosts whose announcements the watcher took.
    let accepted = Arrivals<String>()
    let announcer: AsyncThrowingStream<DiscoveryEvent, any Error>.Continuation
    private let stream: AsyncThrowingStream<DiscoveryEvent, any Error>
    /// How the runner answers per host (default ok).
    let answers = Mutex<[String: StepStatus]>([:])
    /// The runner says a signal stopped its run.
    let stopRun = Mutex(false)
    /// Why a host's run did not go well (default "it went STATUS").
    let reason = Mutex<String?>(nil)
    /// What happens meanwhile, while a run runs.
    let meanwhile = Mutex<(@Sendable () throws -> Void)?>(nil)
    let refused: Set<String>
    /// The browses the watcher opened; the first `failedBrowses` fail at once.
    let browses = Mutex(0)
    let failedBrowses: Int

    init(database: StateDatabase, clock: ManualClock, refused: Set<String> = [], failedBrowses: Int = 0) {
      deliveries = Deliveries(database: database)
      self.clock = clock
      (stream, announcer) = AsyncThrowingStream.makeStream(of: DiscoveryEvent.self)
      self.refused = refused
      self.failedBrowses = failedBrowses
    }

    func watcher(retry: Duration, gather: Duration = .zero) -> DeliveryWatcher {
      DeliveryWatcher(
        deliveries: deliveries, retryInterval: retry, gather: gather, clock: clock,
        announcements: { [self] in
          let count = browses.withLock { count in
            count += 1
            return count
          }
          guard count > failedBrowses else {
            return AsyncThrowingStream { $0.finish(throwing: POSIXError(.ECONNREFUSED)) }
          }
          return stream
        },
        accept: { [self] service in
          guard !refused.contains(service.name) else { return nil }
          accepted.append(service.name)
          return HostName(service.name)
        },
        run: { [self] runbook, hosts in
          calls.append(RunCall(runbook: runbook.name, hosts: hosts.map(\.rawValue)))
          #expect(throws: Never.self) { try meanwhile.withLock { $0 }?() }
          let answers = answers.withLock { $0 }
          let reason = reason.withLock { $0 }
          var outcomes: [HostName: DeliveryAttempt] = [:]
          for host in hosts {
            let status = answers[host.rawValue] ?? .ok
            outcomes[host] = DeliveryAttempt(
              status: status, reason: status == .ok ? nil : reason ?? "it went \(status)", run: "run-\(calls.all.count)")
          }
          return DeliveryRunResult(run: "run-\(calls.all.count)", outcomes: outcomes, stopped: stopRun.withLock { $0 })
        },
        report: { [events] in events.append($0) })
    }

    func announce(_ name: String) {
      announcer.yield(
        .appeared(DiscoveredService(name: name, hostName: name + ".local", address: "10.0.0.9", port: 22, txt: ["group": "lab"], interface: 1)))
    }

    /// Records `runbook` (its name is its text too) for `hosts` from run `origin`.
    @discardableResult
    func record(_ runbook: String, _ hosts: [String], origin: String, at date: Date, expires: Date? = nil) throws -> [Int64] {
      try deliveries.record(
        DeliveryRunbook(name: runbook, files: [.init(name: runbook, text: "# \(runbook)")], arguments: [], options: []),
        hosts: hosts.map { HostName($0)! }, origin: origin, expires: expires, at: date)
    }

    func state(_ id: Int64) throws -> Delivery? {
      try deliveries.list().first { $0.id == id }
    }
  }

  private func fixture(refused: Set<String> = [], failedBrowses: Int = 0) throws -> Fixture {
    let database = try StateDatabase(path: scratch.path + "/state.sqlite")
    return Fixture(database: database, clock: ManualClock(start.addingTimeInterval(1)), refused: refused, failedBrowses: failedBrowses)
  }

  /// Runs the watcher in a task; the caller cancels it.
  private func watching(_ fixture: Fixture, gather: Duration = .zero) -> Task<Void, Never> {
    let watcher = fixture.watcher(retry: retry, gather: gather)
    return Task { await watcher.watch() }
  }

  @Test func anAnnouncedHostGetsItsDeliveryOnceEvenWhenItAnnouncesAgain() async throws {
    let fixture = try fixture()
    let owed = try fixture.record("site.cfi", ["pc01"], origin: "A", at: start)
    try fixture.record("barrier.cfi", ["pc09"], origin: "B", at: start)
    let task = watching(fixture)
    defer { task.cancel() }
    fixture.announce("pc01")
    #expect(try await fixture.calls.value(at: 0, "the delivery") == RunCall(runbook: "site.cfi", hosts: ["pc01"]))
    fixture.announce("pc01")
    fixture.announce("pc01")
    fixture.announce("pc09")
    #expect(try await fixture.calls.value(at: 1, "the barrier") == RunCall(runbook: "barrier.cfi", hosts: ["pc09"]))
    #expect(try fixture.state(owed[0])?.state == .done)
    #expect(try fixture.state(owed[0])?.lastRun == "run-1")
  }

  @Test func aClaimOfALiveProcessIsLeftAloneAndOneOfADeadProcessIsTakenOver() async throws {
    let fixture = try fixture()
    let done = try fixture.record("site.cfi", ["pc01"], origin: "A", at: start)
    let held = try fixture.record("held.cfi", ["pc02"], origin: "B", at: start)
    let after = try fixture.record("after.cfi", ["pc02"], origin: "E", at: start)
    let abandoned = try fixture.record("abandoned.cfi", ["pc03"], origin: "C", at: start)
    try fixture.record("barrier.cfi", ["pc09"], origin: "D", at: start)
    // A first watcher delivered pc01 and was stopped.
    let first = watching(fixture)
    fixture.announce("pc01")
    _ = try await fixture.calls.value(at: 0, "the first watcher's delivery")
    first.cancel()
    await first.value
    #expect(try fixture.state(done[0])?.state == .done)
    #expect(try fixture.deliveries.claim(held, by: DeliveryClaimer(pid: 1, boot: DeliveryClaimer.current.boot)) == held, "pid 1 lives")
    #expect(try fixture.deliveries.claim(abandoned, by: DeliveryClaimer(pid: 999_999_999, boot: DeliveryClaimer.current.boot)) == abandoned, "no such process")

    let restarted = try Fixture(database: StateDatabase(path: scratch.path + "/state.sqlite"), clock: fixture.clock)
    let second = watching(restarted)
    defer { second.cancel() }
    restarted.announce("pc01")
    restarted.announce("pc02")
    restarted.announce("pc03")
    #expect(try await restarted.calls.value(at: 0, "the abandoned delivery") == RunCall(runbook: "abandoned.cfi", hosts: ["pc03"]))
    restarted.announce("pc09")
    #expect(try await restarted.calls.value(at: 1, "the barrier") == RunCall(runbook: "barrier.cfi", hosts: ["pc09"]))
    #expect(try fixture.state(held[0])?.state == .running, "still the live process's")
    #expect(try fixture.state(after[0])?.state == .pending, "a host's later delivery waits for the one running")
    if case .recovered(let count) = try await restarted.events.value(at: 0, "the recovery") {
      #expect(count == 1)
    } else {
      Issue.record("the first thing said is not the recovery: \(restarted.events.all)")
    }
  }

  @Test func aSilentHostIsTriedEveryRetryInterval() async throws {
    let fixture = try fixture()
    fixture.answers.withLock { $0 = ["pc01": .unreachable] }
    let owed = try fixture.record("site.cfi", ["pc01"], origin: "A", at: start)
    let task = watching(fixture)
    defer { task.cancel() }
    // Not yet: the recording run found it off a moment ago.
    try fixture.record("barrier.cfi", ["pc09"], origin: "B", at: start.addingTimeInterval(1))
    fixture.clock.advance(retry - .seconds(2))
    fixture.announce("pc09")
    #expect(try await fixture.calls.value(at: 0, "the barrier") == RunCall(runbook: "barrier.cfi", hosts: ["pc09"]))
    fixture.clock.advance(.seconds(1))
    #expect(try await fixture.calls.value(at: 1, "the first retry") == RunCall(runbook: "site.cfi", hosts: ["pc01"]))
    guard case .attempt(let attempt) = try await fixture.events.value(at: 1, "the attempt's report") else {
      Issue.record("not an attempt: \(fixture.events.all)")
      return
    }
    #expect(attempt.trigger == .retry && attempt.status == "unreachable" && !attempt.done)
    fixture.clock.advance(retry)
    #expect(try await fixture.calls.value(at: 2, "the second retry") == RunCall(runbook: "site.cfi", hosts: ["pc01"]))
    // An unreachable host that announces itself is tried at once.
    fixture.answers.withLock { $0 = [:] }
    fixture.clock.advance(.seconds(1))
    fixture.announce("pc01")
    #expect(try await fixture.calls.value(at: 3, "the announced try") == RunCall(runbook: "site.cfi", hosts: ["pc01"]))
    _ = try await fixture.events.value(at: 3, "its report, once it is settled")
    #expect(try fixture.state(owed[0])?.state == .done)
    #expect(try fixture.state(owed[0])?.attempts == 3)
  }

  @Test func aDeliveryThatFailedWaitsForTheRetryIntervalWhateverItsHostAnnounces() async throws {
    let fixture = try fixture()
    fixture.answers.withLock { $0 = ["pc01": .failed] }
    let owed = try fixture.record("site.cfi", ["pc01"], origin: "A", at: start)
    try fixture.record("barrier.cfi", ["pc09"], origin: "B", at: start)
    let task = watching(fixture)
    defer { task.cancel() }
    fixture.announce("pc01")
    _ = try await fixture.events.value(at: 0, "the first attempt, settled")
    let failed = try #require(try fixture.state(owed[0]))
    #expect(failed.state == .pending && failed.displayState == "failed" && failed.lastReason == "it went failed")
    fixture.announce("pc01")
    fixture.announce("pc09")
    #expect(try await fixture.calls.value(at: 1, "the barrier") == RunCall(runbook: "barrier.cfi", hosts: ["pc09"]))
    fixture.answers.withLock { $0 = [:] }
    fixture.clock.advance(retry)
    #expect(try await fixture.calls.value(at: 2, "the retry") == RunCall(runbook: "site.cfi", hosts: ["pc01"]))
    #expect(fixture.calls.all.count == 3)
  }

  @Test func hostsDueTogetherGoInOneRunPerRecordingRunInTheOrderTheyWereMade() async throws {
    let fixture = try fixture()
    try fixture.record("first.cfi", ["pc01", "pc02"], origin: "A", at: start)
    try fixture.record("second.cfi", ["pc01", "pc03"], origin: "B", at: start)
    try fixture.record("third.cfi", ["pc02"], origin: "C", at: start)
    fixture.answers.withLock { $0 = ["pc02": .failed] }
    let task = watching(fixture)
    defer { task.cancel() }
    fixture.clock.advance(retry)
    #expect(try await fixture.calls.value(at: 0, "the first batch") == RunCall(runbook: "first.cfi", hosts: ["pc01", "pc02"]))
    #expect(try await fixture.calls.value(at: 1, "the second batch") == RunCall(runbook: "second.cfi", hosts: ["pc01", "pc03"]))
    // pc02's first delivery failed: its later one waits for it.
    fixture.answers.withLock { $0 = [:] }
    fixture.clock.advance(retry)
    #expect(try await fixture.calls.value(at: 2, "pc02's first again") == RunCall(runbook: "first.cfi", hosts: ["pc02"]))
    #expect(try await fixture.calls.value(at: 3, "then its next") == RunCall(runbook: "third.cfi", hosts: ["pc02"]))
  }

  @Test func announcementsTogetherAreGatheredIntoOneRun() async throws {
    let fixture = try fixture()
    try fixture.record("site.cfi", ["pc01", "pc02"], origin: "A", at: start)
    let task = watching(fixture, gather: .seconds(1))
    defer { task.cancel() }
    fixture.announce("pc01")
    fixture.announce("pc02")
    // The browse has taken both announcements (the pass they make due is a second later).
    _ = try await fixture.accepted.value(at: 1, "the second announcement")
    fixture.clock.advance(.seconds(1))
    #expect(try await fixture.calls.value(at: 0, "the gathered run") == RunCall(runbook: "site.cfi", hosts: ["pc01", "pc02"]))
  }

  @Test func aDeliveryPastItsExpiryIsGivenUpNotRun() async throws {
    let fixture = try fixture()
    let owed = try fixture.record("site.cfi", ["pc01"], origin: "A", at: start, expires: start.addingTimeInterval(300))
    try fixture.record("barrier.cfi", ["pc09"], origin: "B", at: start)
    let task = watching(fixture)
    defer { task.cancel() }
    fixture.clock.advance(.seconds(300))
    guard case .expired(let expired) = try await fixture.events.value(at: 0, "the expiry") else {
      Issue.record("not an expiry: \(fixture.events.all)")
      return
    }
    #expect(expired.map(\.id) == owed)
    fixture.announce("pc01")
    fixture.announce("pc09")
    #expect(try await fixture.calls.value(at: 0, "the barrier") == RunCall(runbook: "barrier.cfi", hosts: ["pc09"]))
    #expect(try fixture.state(owed[0])?.state == .expired)
  }

  @Test func anAnnouncementTheInventoryDoesNotAcceptIsNoTrigger() async throws {
    let fixture = try fixture(refused: ["pc01"])
    let owed = try fixture.record("site.cfi", ["pc01"], origin: "A", at: start)
    try fixture.record("barrier.cfi", ["pc09"], origin: "B", at: start)
    let task = watching(fixture)
    defer { task.cancel() }
    fixture.announce("pc01")
    fixture.announce("pc09")
    #expect(try await fixture.calls.value(at: 0, "the barrier") == RunCall(runbook: "barrier.cfi", hosts: ["pc09"]))
    #expect(try fixture.state(owed[0])?.state == .pending)
  }

  @Test func aFailedBrowseIsSaidAndTriedAgainWhileSilentHostsAreStillTried() async throws {
    let fixture = try fixture(failedBrowses: 2)
    try fixture.record("site.cfi", ["pc01"], origin: "A", at: start)
    let task = watching(fixture)
    defer { task.cancel() }
    guard case .discoveryFailed(_, let backoff) = try await fixture.events.value(at: 0, "the failure") else {
      Issue.record("not a discovery failure: \(fixture.events.all)")
      return
    }
    #expect(backoff == .seconds(1))
    fixture.clock.advance(.seconds(1))
    guard case .discoveryFailed(_, let longer) = try await fixture.events.value(at: 1, "the second failure") else {
      Issue.record("not a discovery failure: \(fixture.events.all)")
      return
    }
    #expect(longer == .seconds(2), "backing off")
    fixture.clock.advance(.seconds(2))
    fixture.announce("pc01")
    #expect(try await fixture.calls.value(at: 0, "the delivery") == RunCall(runbook: "site.cfi", hosts: ["pc01"]))
  }

  @Test func aRunStoppedByASignalSettlesItsClaimPendingAndEndsTheWatcher() async throws {
    let fixture = try fixture()
    fixture.answers.withLock { $0 = ["pc01": .interrupted] }
    fixture.stopRun.withLock { $0 = true }
    let owed = try fixture.record("site.cfi", ["pc01"], origin: "A", at: start)
    let task = watching(fixture)
    fixture.announce("pc01")
    await task.value
    let delivery = try #require(try fixture.state(owed[0]))
    #expect(delivery.state == .pending && delivery.lastStatus == "interrupted")
  }

  @Test func onceTriesEveryHostWithPendingDeliveriesAndCountsHowTheyWent() async throws {
    let fixture = try fixture()
    fixture.answers.withLock { $0 = ["pc02": .unreachable, "pc03": .failed] }
    try fixture.record("site.cfi", ["pc01", "pc02", "pc03"], origin: "A", at: start)
    try fixture.record("gone.cfi", ["pc04"], origin: "B", at: start, expires: start)
    let summary = await fixture.watcher(retry: retry).once()
    var expected = DeliveryPassSummary()
    (expected.done, expected.waiting, expected.failed) = (1, 1, 1)
    #expect(summary == expected)
    #expect(fixture.calls.all == [RunCall(runbook: "site.cfi", hosts: ["pc01", "pc02", "pc03"])])
  }

  /// A `--once` from cron killed mid-delivery leaves its claim: a watcher running meanwhile
  /// takes it back at its next pass, not only when it starts.
  @Test func aClaimLeftByAProcessKilledMeanwhileIsTakenBackAtTheNextPass() async throws {
    let fixture = try fixture()
    let owed = try fixture.record("site.cfi", ["pc01"], origin: "A", at: start)
    try fixture.record("barrier.cfi", ["pc09"], origin: "B", at: start)
    let task = watching(fixture)
    defer { task.cancel() }
    fixture.announce("pc09")
    _ = try await fixture.calls.value(at: 0, "the barrier")
    #expect(try fixture.deliveries.claim(owed, by: DeliveryClaimer(pid: 999_999_999, boot: DeliveryClaimer.current.boot)) == owed)
    fixture.announce("pc01")
    #expect(try await fixture.calls.value(at: 1, "the delivery taken back") == RunCall(runbook: "site.cfi", hosts: ["pc01"]))
    // The barrier's attempt, the claim taken back, the delivery's attempt once settled.
    _ = try await fixture.events.value(at: 2, "the delivery's report")
    #expect(try fixture.state(owed[0])?.state == .done)
  }

  /// After a reboot the new watcher may have the pid of the one that died holding a claim.
  @Test func aWatcherStartingTakesBackAClaimInItsOwnName() async throws {
    let fixture = try fixture()
    let owed = try fixture.record("site.cfi", ["pc01"], origin: "A", at: start)
    #expect(try fixture.deliveries.claim(owed, by: .current) == owed)
    _ = await fixture.watcher(retry: retry).once()
    #expect(fixture.calls.all == [RunCall(runbook: "site.cfi", hosts: ["pc01"])])
    #expect(try fixture.state(owed[0])?.state == .done)
  }

  /// The claim was taken back while the run ran (deemed dead) and claimed by another
  /// process: this watcher's result does not overwrite that process's, and it says so.
  @Test func aClaimTakenBackWhileItsRunRanIsNotSettled() async throws {
    let fixture = try fixture()
    let owed = try fixture.record("site.cfi", ["pc01"], origin: "A", at: start)
    fixture.meanwhile.withLock {
      $0 = { [deliveries = fixture.deliveries] in
        try deliveries.recoverAbandoned(alive: { _ in false })
        _ = try deliveries.claim(owed, by: DeliveryClaimer(pid: 1, boot: "another"))
      }
    }
    _ = await fixture.watcher(retry: retry).once()
    #expect(try fixture.state(owed[0])?.state == .running)
    #expect(try fixture.state(owed[0])?.attempts == 0)
    #expect(fixture.events.all.contains { if case .claimLost(owed[0], "pc01") = $0 { true } else { false } })
  }

  /// A result the database would not take (busy past its timeout) is tried again before
  /// `once` returns: else the next watcher would take the claim back and deliver it again.
  @Test func aResultNotRecordedIsTriedAgainBeforeTheWatcherReturns() async throws {
    let fixture = try fixture()
    let owed = try fixture.record("site.cfi", ["pc01"], origin: "A", at: start)
    // Another writer holds the database, from within the run until the first settle failed.
    let lock = DatabaseWriteLock(path: fixture.deliveries.database.path)
    fixture.meanwhile.withLock { $0 = lock.lock }
    let once = Task { [watcher = fixture.watcher(retry: retry)] in await watcher.once() }
    guard case .databaseFailed = try await fixture.events.value(at: 0, within: 30, "the settle refused") else {
      Issue.record("not a database failure: \(fixture.events.all)")
      lock.unlock()
      return
    }
    lock.unlock()
    let summary = await once.value
    #expect(try fixture.state(owed[0])?.state == .done)
    #expect(summary.done == 1 && summary.unsettled == 0)
  }

  /// A reason is told as it is kept: without hashes.
  @Test func anAttemptsReasonIsToldWithoutHashes() async throws {
    let fixture = try fixture()
    fixture.answers.withLock { $0 = ["pc01": .failed] }
    fixture.reason.withLock { $0 = "chpasswd said $6$salt$" + String(repeating: "e", count: 86) }
    try fixture.record("site.cfi", ["pc01"], origin: "A", at: start)
    _ = await fixture.watcher(retry: retry).once()
    let reasons = fixture.events.all.compactMap { if case .attempt(let attempt) = $0 { attempt.reason } else { nil } }
    #expect(reasons == ["chpasswd said \(Secret.redacted)"])
  }

  /// The inventory decides with the store's rejected claims: when the state database cannot
  /// be read, it admits no announced host (a rejected one would be admitted by `accept = auto`).
  @Test func noAnnouncedHostIsAcceptedWhenTheStateDatabaseCannotBeRead() throws {
    let store = Store(root: scratch.path + "/store")
    try FileManager.default.createDirectory(atPath: store.root + "/lab", withIntermediateDirectories: true)
    let configuration = scratch.path + "/server.conf"
    try "accept = auto\n".write(toFile: configuration, atomically: true, encoding: .utf8)
    let sources = InventorySources(
      store: store, dshDirectory: scratch.path + "/no-dsh", discovery: false, configurationFile: configuration)
    let service = DiscoveredService(name: "pc07", hostName: "pc07.local", address: "10.0.0.7", port: 22, txt: ["group": "lab"], interface: 1)
    let database = try StateDatabase(store: store)
    #expect(sources.acceptedHost(announcedBy: service, state: database)?.name == "pc07")
    let claim = HostClaim(name: "pc07", group: "lab", address: "10.0.0.7", port: nil)
    _ = try PendingHosts(database: database).record([claim], at: start, settled: { _ in false })
    try PendingHosts(database: database).reject([claim])
    #expect(sources.acceptedHost(announcedBy: service, state: database) == nil)
    try database.write { db in try db.execute(sql: "DROP TABLE pending_host") }
    #expect(sources.acceptedHost(announcedBy: service, state: database) == nil)
    #expect(sources.acceptedHost(announcedBy: service, state: nil)?.name == "pc07", "no database: the policy decides")
  }
}
