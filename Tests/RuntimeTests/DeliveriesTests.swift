// The delivery queue without a lab: recording (once per host and runbook), claims that only
// one process gets, settling (done for good, or pending again with the reason), expiry,
// cancelling, claims of dead processes, and what is kept unredacted (the runbook's texts,
// which must run) next to what is not (the run's history).

import Foundation
import GRDB
import Testing

@testable import Runtime
import TestSupport

@Suite struct DeliveriesTests {
  let scratch = FleetRunScratch()
  var path: String { scratch.path + "/state.sqlite" }
  /// A fixed clock: every date of a test is `t0` plus seconds.
  static let t0 = Date(timeIntervalSince1970: 1_795_770_000)

  static func runbook(_ text: String = "on all < run \"touch /m\" >\n", arguments: [String] = []) -> DeliveryRunbook {
    DeliveryRunbook(name: "site.cfi", files: [.init(name: "site.cfi", text: text)], arguments: arguments, options: ["--timeout", "5m"])
  }

  static func hosts(_ names: String...) -> [HostName] { names.map { HostName($0)! } }

  /// Process `pid` of this boot.
  static func process(_ pid: Int32) -> DeliveryClaimer { DeliveryClaimer(pid: pid, boot: DeliveryClaimer.current.boot) }

  /// The hosts with a delivery pending.
  static func pendingHosts(_ queue: Deliveries) throws -> Set<HostName> { Set(try queue.list(states: [.pending]).map(\.host)) }

  /// How many runbooks the queue keeps.
  static func storedRunbooks(_ queue: Deliveries) throws -> Int {
    try queue.database.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM delivery_runbook") ?? 0 }
  }

  func queue() throws -> Deliveries { Deliveries(database: try StateDatabase(path: path)) }

  /// A FleetRun on a store of the scratch directory (its own state database), running nothing.
  func fleet() throws -> FleetRun {
    let store = Store(root: scratch.path + "/store")
    try FileManager.default.createDirectory(atPath: store.root + "/lab", withIntermediateDirectories: true)
    return FleetRun(
      store: store, sources: InventorySources(store: store, dshDirectory: scratch.path + "/no-dsh", discovery: false),
      executor: RecordingExecutor(), audit: .none, notice: { _ in })
  }

  // MARK: Recording

  @Test func recordingMakesOnePendingDeliveryPerHost() throws {
    let queue = try queue()
    let ids = try queue.record(Self.runbook(), hosts: Self.hosts("pc02", "pc05"), origin: "run-1", expires: nil, at: Self.t0)
    #expect(ids.count == 2)
    let listed = try queue.list()
    #expect(listed.map(\.host.rawValue) == ["pc02", "pc05"])
    #expect(listed.allSatisfy { $0.state == .pending && $0.attempts == 0 && $0.origin == "run-1" && $0.runbook == "site.cfi" })
    #expect(listed.first?.created == Self.t0)
    #expect(try Self.pendingHosts(queue) == Set(Self.hosts("pc02", "pc05")))
    #expect(try queue.runbook(of: listed[0]) == Self.runbook())
  }

  @Test func aHostIsNotOwedTheSameRunbookTwice() throws {
    let queue = try queue()
    try queue.record(Self.runbook(), hosts: Self.hosts("pc02"), origin: "run-1", expires: nil)
    // The same texts, arguments and options from a later run: nothing new for pc02.
    let again = try queue.record(Self.runbook(), hosts: Self.hosts("pc02", "pc03"), origin: "run-2", expires: nil)
    #expect(again.count == 1)
    #expect(try queue.list(host: "pc02").count == 1)
    // Owed to no one new: the run's runbook is not kept either.
    #expect(try queue.record(Self.runbook(), hosts: Self.hosts("pc02", "pc03", "pc02"), origin: "run-4", expires: nil).isEmpty)
    #expect(try Self.storedRunbooks(queue) == 2)
    // Other arguments are another runbook: owed too.
    try queue.record(Self.runbook(arguments: ["x"]), hosts: Self.hosts("pc02"), origin: "run-3", expires: nil)
    #expect(try queue.list(host: "pc02").count == 2)
  }

  @Test func aDoneDeliveryDoesNotStopANewOne() throws {
    let queue = try queue()
    let id = try #require(try queue.record(Self.runbook(), hosts: Self.hosts("pc02"), origin: "run-1", expires: nil).first)
    #expect(try queue.claim([id]) == [id])
    try queue.settle(id, DeliveryAttempt(status: .changed, run: "run-2"))
    #expect(try queue.record(Self.runbook(), hosts: Self.hosts("pc02"), origin: "run-3", expires: nil).count == 1)
  }

  // MARK: Claims

  @Test func twoProcessesClaimingAtOnceNeverGetTheSameDelivery() async throws {
    let ids = try queue().record(
      Self.runbook(), hosts: (1...30).map { HostName(String(format: "pc%02d", $0))! }, origin: "run-1", expires: nil)
    // Two connections to one file, as two watchers would have, each claiming everything.
    let first = try StateDatabase(path: path)
    let second = try StateDatabase(path: path)
    async let a = Task { try Deliveries(database: first).claim(ids, by: Self.process(1001)) }.value
    async let b = Task { try Deliveries(database: second).claim(ids, by: Self.process(1002)) }.value
    let (claimedA, claimedB) = try await (a, b)
    #expect(Set(claimedA).isDisjoint(with: claimedB))
    #expect(Set(claimedA).union(claimedB) == Set(ids))
    #expect(try queue().list(states: [.running]).count == ids.count)
  }

  @Test func aClaimedDeliveryIsNotClaimedAgain() throws {
    let queue = try queue()
    let ids = try queue.record(Self.runbook(), hosts: Self.hosts("pc02"), origin: "run-1", expires: nil)
    #expect(try queue.claim(ids, by: Self.process(1001)) == ids)
    #expect(try queue.claim(ids, by: Self.process(1002)).isEmpty)
    #expect(try Self.pendingHosts(queue).isEmpty)
  }

  // MARK: Settling

  @Test func okOrChangedIsDoneAndNeverClaimableAgain() throws {
    let queue = try queue()
    let ids = try queue.record(Self.runbook(), hosts: Self.hosts("pc02", "pc03"), origin: "run-1", expires: nil, at: Self.t0)
    #expect(try queue.claim(ids, at: Self.t0 + 10) == ids)
    try queue.settle(ids[0], DeliveryAttempt(status: .ok, run: "run-2"), at: Self.t0 + 20)
    try queue.settle(ids[1], DeliveryAttempt(status: .changed, run: "run-2"), at: Self.t0 + 20)
    let done = try queue.list()
    #expect(done.map(\.state) == [.done, .done])
    #expect(done.allSatisfy { $0.attempts == 1 && $0.lastRun == "run-2" && $0.finished == Self.t0 + 20 })
    #expect(try queue.claim(ids).isEmpty)
    #expect(try Self.pendingHosts(queue).isEmpty)
    // Settling a delivery that is not running changes nothing (a watcher that lost its claim).
    #expect(try !queue.settle(ids[0], DeliveryAttempt(status: .failed, reason: "late")))
    #expect(try queue.list().first?.state == .done)
  }

  @Test func unreachableOrFailedStaysPendingWithItsReason() throws {
    let queue = try queue()
    let ids = try queue.record(Self.runbook(), hosts: Self.hosts("pc02", "pc03"), origin: "run-1", expires: nil)
    _ = try queue.claim(ids)
    try queue.settle(ids[0], DeliveryAttempt(status: .unreachable, reason: "no_route", run: "run-2"), at: Self.t0)
    try queue.settle(ids[1], DeliveryAttempt(status: .failed, reason: "exit status 3", run: "run-2"), at: Self.t0)
    let listed = try queue.list()
    #expect(listed.map(\.state) == [.pending, .pending])
    #expect(listed.map(\.displayState) == ["pending", "failed"])
    #expect(listed.map(\.lastReason) == ["no_route", "exit status 3"])
    #expect(listed.map(\.lastStatus) == ["unreachable", "failed"])
    #expect(listed.allSatisfy { $0.attempts == 1 && $0.lastAttempt == Self.t0 && $0.finished == nil })
    // …and is tried again.
    #expect(try queue.claim(ids) == ids)
    try queue.settle(ids[1], DeliveryAttempt(status: nil), at: Self.t0 + 1)
    #expect(try queue.list(host: "pc03").first?.lastStatus == "not_run")
    #expect(try queue.list(host: "pc03").first?.attempts == 2)
  }

  @Test func aReasonIsKeptWithoutHashes() throws {
    let queue = try queue()
    let ids = try queue.record(Self.runbook(), hosts: Self.hosts("pc02"), origin: "run-1", expires: nil)
    _ = try queue.claim(ids)
    let hash = "$6$salt$" + String(repeating: "b", count: 86)
    try queue.settle(ids[0], DeliveryAttempt(status: .failed, reason: "chpasswd said " + hash))
    #expect(try queue.list().first?.lastReason?.contains("$6$salt") == false)
  }

  // MARK: Expiry and cancelling

  @Test func aDeliveryPastItsExpiryIsExpiredAndNotClaimable() throws {
    let queue = try queue()
    let ids = try queue.record(
      Self.runbook(), hosts: Self.hosts("pc02", "pc03"), origin: "run-1", expires: Self.t0 + 60, at: Self.t0)
    try queue.record(Self.runbook(arguments: ["forever"]), hosts: Self.hosts("pc02"), origin: "run-2", expires: nil, at: Self.t0)
    // Before expire() marks it, a claim past the expiry already refuses it.
    #expect(try queue.claim([ids[0]], at: Self.t0 + 61).isEmpty)
    #expect(try queue.expire(at: Self.t0 + 30).isEmpty)
    let expired = try queue.expire(at: Self.t0 + 61)
    #expect(expired.map(\.id) == ids)
    #expect(try queue.list(states: [.expired]).map(\.finished) == [Self.t0 + 61, Self.t0 + 61])
    #expect(try queue.list(states: [.pending]).count == 1)
  }

  @Test func onlyAPendingDeliveryIsCancelled() throws {
    let queue = try queue()
    let ids = try queue.record(Self.runbook(), hosts: Self.hosts("pc02", "pc03", "pc04"), origin: "run-1", expires: nil)
    #expect(try queue.cancel(ids[0], at: Self.t0)?.state == .cancelled)
    #expect(try queue.list(states: [.cancelled]).first?.finished == Self.t0)
    #expect(try queue.cancel(999) == nil)
    // Cancelled, running, done: each refused with its state named.
    #expect(Self.refusal { try queue.cancel(ids[0]) }?.contains("is cancelled, not pending") == true)
    _ = try queue.claim([ids[1], ids[2]])
    #expect(Self.refusal { try queue.cancel(ids[1]) }?.contains("is running, not pending") == true)
    try queue.settle(ids[2], DeliveryAttempt(status: .ok))
    #expect(Self.refusal { try queue.cancel(ids[2]) }?.contains("is done, not pending") == true)
  }

  @Test func theClaimsOfADeadProcessArePendingAgain() throws {
    let queue = try queue()
    let ids = try queue.record(Self.runbook(), hosts: Self.hosts("pc02", "pc03"), origin: "run-1", expires: nil)
    _ = try queue.claim([ids[0]], by: Self.process(4_000_001))
    _ = try queue.claim([ids[1]], by: Self.process(getpid()))
    // pid 4000001 is above Linux's pid_max: no such process.
    #expect(try queue.recoverAbandoned() == 1)
    #expect(try queue.list(states: [.pending]).map(\.id) == [ids[0]])
    #expect(try queue.list(states: [.running]).map(\.id) == [ids[1]])
    #expect(try queue.recoverAbandoned(alive: { _ in false }) == 1)
    #expect(try queue.claim(ids) == ids)
  }

  /// A pid is reused (after a reboot, even by the next watcher): a claim is its process's
  /// only in the boot it was made in, and a watcher starting has no claim of its own yet.
  @Test func aClaimOfAnotherBootOrOfTheWatcherStartingIsPendingAgain() throws {
    let queue = try queue()
    let ids = try queue.record(Self.runbook(), hosts: Self.hosts("pc02", "pc03", "pc04"), origin: "run-1", expires: nil)
    _ = try queue.claim([ids[0]], by: DeliveryClaimer(pid: 1, boot: "a boot of before"))  // pid 1 lives
    _ = try queue.claim([ids[1]], by: .current)
    _ = try queue.claim([ids[2]], by: Self.process(1))
    #expect(try queue.recoverAbandoned() == 1)
    #expect(try queue.list(states: [.running]).map(\.id) == [ids[1], ids[2]])
    #expect(try queue.recoverAbandoned(starting: true) == 1)
    #expect(try queue.list(states: [.running]).map(\.id) == [ids[2]])
  }

  /// A watcher whose claim was taken back (deemed dead) and claimed by another process
  /// does not overwrite that process's result.
  @Test func onlyTheClaimerSettlesItsClaim() throws {
    let queue = try queue()
    let ids = try queue.record(Self.runbook(), hosts: Self.hosts("pc02"), origin: "run-1", expires: nil)
    let (first, second) = (Self.process(1001), Self.process(1002))
    #expect(try queue.claim(ids, by: first) == ids)
    #expect(try queue.recoverAbandoned(alive: { _ in false }) == 1)
    #expect(try queue.claim(ids, by: second) == ids)
    #expect(try !queue.settle(ids[0], DeliveryAttempt(status: .ok, run: "run-2"), by: first))
    #expect(try queue.list().first?.state == .running)
    #expect(try queue.settle(ids[0], DeliveryAttempt(status: .unreachable, run: "run-3"), by: second))
    #expect(try queue.list().first?.lastRun == "run-3")
    #expect(try !queue.settle(ids[0], DeliveryAttempt(status: .ok, run: "run-2"), by: first))
    #expect(try queue.list().first?.state == .pending)
  }

  /// A claim made before claims named their boot (an older cfi-sh) is judged by its pid.
  @Test func aClaimOfTheSchemaBeforeIsJudgedByItsPid() throws {
    let old = Deliveries(database: try StateDatabase(path: path, upTo: "4-log"))
    let ids = try old.record(Self.runbook(), hosts: Self.hosts("pc02", "pc03"), origin: "run-1", expires: nil)
    try old.database.write { db in
      try db.execute(sql: "UPDATE delivery SET state = 'running', claimed_by = 1 WHERE id = ?", arguments: [ids[0]])
      try db.execute(sql: "UPDATE delivery SET state = 'running', claimed_by = 4000001 WHERE id = ?", arguments: [ids[1]])
    }
    let queue = try queue()
    #expect(try queue.database.appliedMigrations().last == "5-claims")
    #expect(try queue.recoverAbandoned() == 1)
    #expect(try queue.list(states: [.running]).map(\.id) == [ids[0]])
    #expect(try queue.settle(ids[0], DeliveryAttempt(status: .ok), by: DeliveryClaimer(pid: 1, boot: nil)))
  }

  // MARK: What is kept

  @Test func theRunbooksTextsAreKeptWholeAndTheRunHistoryRedacted() async throws {
    let hash = "$6$salt$" + String(repeating: "c", count: 86)
    let text = "on all < password root '\(hash)' >\n"
    let fleet = try fleet()
    let plan = DeliveryPlan(
      runbook: DeliveryRunbook(name: "<command line>", files: [.init(name: "<command line>", text: text)], arguments: [hash], options: []),
      expiresAfter: nil, always: true)
    let events = EventLog()
    let run = try await fleet.run(arguments: [hash], source: text, lock: .noWait, delivery: plan, sink: events) { sink in
      sink.emit(.runStarted(runbook: "<command line>", check: false, date: Date()))
      let outcomes = [
        HostOutcome(host: Host(name: "pc01", group: "lab"), status: .ok),
        HostOutcome(host: Host(name: "pc02", group: "lab"), status: .unreachable, reason: .noRoute),
      ]
      sink.emit(.runFinished(outcomes: outcomes, interrupted: false, error: nil))
      return ((), RunEnd(outcomes: outcomes, runtimeError: false, interrupted: false)) as ((), RunEnd)
    }
    let database = try #require(fleet.state)
    let queue = Deliveries(database: database)
    let delivery = try #require(try queue.list().first)
    #expect(delivery.host.rawValue == "pc02")
    #expect(delivery.origin == run.id)
    let kept = try queue.runbook(of: delivery)
    #expect(kept.files.first?.text == text)
    #expect(kept.arguments == [hash])
    let history = try database.read { db in try Row.fetchOne(db, sql: "SELECT source, arguments FROM run WHERE id = ?", arguments: [run.id]) }
    #expect((history?["source"] as String?)?.contains("$6$salt") == false)
    #expect((history?["arguments"] as String?)?.contains("$6$salt") == false)
    #expect(events.events.contains { if case .deliveriesRecorded(let hosts, nil) = $0 { hosts == Self.hosts("pc02") } else { false } })
  }

  /// The texts keep their hashes while a delivery may still run them: once every delivery
  /// of the run is done, expired or cancelled, they are redacted.
  @Test func theRunbooksTextsLoseTheirHashesOnceNoDeliveryOfThemIsOpen() throws {
    let hash = "$6$salt$" + String(repeating: "d", count: 86)
    let queue = try queue()
    func owed(_ origin: String, _ hosts: [HostName], expires: Date? = nil) throws -> [Int64] {
      try queue.record(
        Self.runbook("on all < password root '\(hash)' >\n", arguments: [origin, hash]), hosts: hosts, origin: origin,
        expires: expires, at: Self.t0)
    }
    func hashKept(_ id: Int64) throws -> Bool {
      let runbook = try queue.runbook(of: try #require(try queue.list().first { $0.id == id }))
      let kept = runbook.files.contains { $0.text.contains(hash) } || runbook.arguments.contains(hash)
      #expect(kept == runbook.files.contains { $0.text.contains("$6$salt") }, "all of it or none")
      return kept
    }
    let done = try owed("done", Self.hosts("pc02", "pc03"))
    let expired = try owed("expired", Self.hosts("pc02"), expires: Self.t0 + 60)
    let cancelled = try owed("cancelled", Self.hosts("pc02"))
    _ = try queue.claim(done)
    try queue.settle(done[0], DeliveryAttempt(status: .ok))
    try queue.settle(done[1], DeliveryAttempt(status: .failed, reason: "exit status 1"))
    #expect(try hashKept(done[0]), "pc03's is pending")
    _ = try queue.claim([done[1]])
    try queue.settle(done[1], DeliveryAttempt(status: .changed))
    #expect(try !hashKept(done[0]))
    #expect(try queue.runbook(of: try #require(try queue.list().first)).arguments == ["done", Secret.redacted])
    #expect(try hashKept(expired[0]))
    try queue.expire(at: Self.t0 + 61)
    #expect(try !hashKept(expired[0]))
    #expect(try hashKept(cancelled[0]))
    _ = try queue.cancel(cancelled[0])
    #expect(try !hashKept(cancelled[0]))
  }

  @Test func aRunRecordsOnlyWhenThePlanOrTheRunbookAsks() async throws {
    let fleet = try fleet()
    func run(always: Bool, runbookAsks: Bool, stop: StopSignal? = nil, arguments: [String]) async throws {
      let plan = DeliveryPlan(runbook: Self.runbook(arguments: arguments), expiresAfter: nil, always: always)
      _ = try await fleet.run(lock: .noWait, delivery: plan, sink: EventLog()) { sink in
        sink.emit(.runStarted(runbook: "site.cfi", check: false, date: Date()))
        let outcomes = [HostOutcome(host: Host(name: "pc02", group: "lab"), status: .unreachable)]
        var end = RunEnd(outcomes: outcomes, runtimeError: false, interrupted: stop != nil, stopSignal: stop)
        end.deliver = runbookAsks
        return ((), end) as ((), RunEnd)
      }
    }
    try await run(always: false, runbookAsks: false, arguments: ["a"])
    try await run(always: false, runbookAsks: true, arguments: ["b"])
    try await run(always: true, runbookAsks: false, arguments: ["c"])
    try await run(always: true, runbookAsks: true, stop: .interrupt, arguments: ["d"])
    let queue = Deliveries(database: try #require(fleet.state))
    let recorded = try queue.list().map { try queue.runbook(of: $0).arguments }
    #expect(recorded == [["b"], ["c"]])
  }

  @Test func theRunsThatTriedADeliveryComeFromTheHistory() async throws {
    let fleet = try fleet()
    let text = "on all < run \"true\" >"
    /// One `-c` run of `source` in which pc02 ends `status`; the plan records when it is given.
    func run(_ source: String, _ status: StepStatus, check: Bool = false, plan: DeliveryPlan? = nil) async throws -> String {
      try await fleet.run(source: source, lock: .noWait, delivery: plan, sink: EventLog()) { sink in
        sink.emit(.runStarted(runbook: "<command line>", check: check, date: Date()))
        let outcomes = [HostOutcome(host: Host(name: "pc02", group: "lab"), status: status)]
        sink.emit(.runFinished(outcomes: outcomes, interrupted: false, error: nil))
        return ((), RunEnd(outcomes: outcomes, runtimeError: false, interrupted: false)) as ((), RunEnd)
      }.id
    }
    let book = DeliveryRunbook(name: "<command line>", files: [.init(name: "<command line>", text: text)], arguments: [], options: [])
    _ = try await run(text, .unreachable, plan: DeliveryPlan(runbook: book, expiresAfter: nil, always: true))
    let tried = try await run(text, .unreachable)
    _ = try await run(text, .ok, check: true)  // a dry run tries nothing
    _ = try await run("on all < run \"false\" >", .failed)  // another -c runbook
    _ = try await run("on all < run", .failed)  // …even one whose text begins it
    _ = try await run("", .failed)
    let delivered = try await run(text, .changed)
    let queue = Deliveries(database: try #require(fleet.state))
    let delivery = try #require(try queue.list().first)
    let runs = try queue.runs(of: delivery)
    #expect(runs.map(\.run) == [tried, delivered])
    #expect(runs.map(\.status) == ["unreachable", "changed"])
  }

  /// A -c runbook longer than the history keeps: its record's text is cut, and begins it.
  @Test func theRunsThatTriedADeliveryOfALongCommandLineComeFromTheHistory() async throws {
    let fleet = try fleet()
    let text = "on all < run \"true\" >\n" + String(repeating: "# long\n", count: 10_000)
    func run(_ source: String, plan: DeliveryPlan? = nil) async throws -> String {
      try await fleet.run(source: source, lock: .noWait, delivery: plan, sink: EventLog()) { sink in
        sink.emit(.runStarted(runbook: "<command line>", check: false, date: Date()))
        let outcomes = [HostOutcome(host: Host(name: "pc02", group: "lab"), status: plan == nil ? .ok : .unreachable)]
        sink.emit(.runFinished(outcomes: outcomes, interrupted: false, error: nil))
        return ((), RunEnd(outcomes: outcomes, runtimeError: false, interrupted: false)) as ((), RunEnd)
      }.id
    }
    let book = DeliveryRunbook(name: "<command line>", files: [.init(name: "<command line>", text: text)], arguments: [], options: [])
    _ = try await run(String(text.prefix(64 << 10)), plan: DeliveryPlan(runbook: book, expiresAfter: nil, always: true))
    let delivered = try await run(String(text.prefix(64 << 10)))
    _ = try await run(String(text.prefix(1000)))
    let queue = Deliveries(database: try #require(fleet.state))
    #expect(try queue.runs(of: try #require(try queue.list().first)).map(\.run) == [delivered])
  }

  /// A runbook file is told by its path; the history keeps its text as well.
  @Test func theRunsThatTriedADeliveryOfARunbookFileComeFromTheHistory() async throws {
    let fleet = try fleet()
    func run(_ status: StepStatus, text: String, plan: DeliveryPlan? = nil) async throws -> String {
      try await fleet.run(text: text, lock: .noWait, delivery: plan, sink: EventLog()) { sink in
        sink.emit(.runStarted(runbook: "site.cfi", check: false, date: Date()))
        let outcomes = [HostOutcome(host: Host(name: "pc02", group: "lab"), status: status)]
        sink.emit(.runFinished(outcomes: outcomes, interrupted: false, error: nil))
        return ((), RunEnd(outcomes: outcomes, runtimeError: false, interrupted: false)) as ((), RunEnd)
      }.id
    }
    let text = "on all < run \"true\" >"
    let book = DeliveryRunbook(name: "site.cfi", files: [.init(name: "site.cfi", text: text)], arguments: [], options: [])
    _ = try await run(.unreachable, text: text, plan: DeliveryPlan(runbook: book, expiresAfter: nil, always: true))
    let delivered = try await run(.ok, text: text + "\n# edited since")
    let queue = Deliveries(database: try #require(fleet.state))
    let runs = try queue.runs(of: try #require(try queue.list().first))
    #expect(runs.map(\.run) == [delivered])
  }

  // MARK: Schema

  @Test func aDatabaseOfTheHistoryOnlySchemaGetsTheQueue() throws {
    let old = try StateDatabase(path: path, upTo: "1-history")
    #expect(try old.appliedMigrations() == ["1-history"])
    let queue = try queue()
    #expect(try queue.record(Self.runbook(), hosts: Self.hosts("pc02"), origin: "run-1", expires: nil).count == 1)
  }

  /// The message of the error `work` throws, nil if it throws none.
  private static func refusal(_ work: () throws -> Delivery?) -> String? {
    do {
      _ = try work()
      return nil
    } catch {
      return "\(error)"
    }
  }
}
