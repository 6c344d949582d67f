// FanOut: the sliding window over hosts. Concurrency is measured with counters while the
// bodies are held at a gate the test opens one item at a time, so every assertion is about
// what has started, never about how long anything took.

import Runtime
import Synchronization
import Testing

/// Holds each body until the test releases its item, and counts what runs at once.
/// Tests wait for the gate's state with `waitUntil`, which resumes on the state change
/// itself (no polling, no sleeping). A wait that is cancelled (the suite's time limit: the
/// fan-out never got there) is recorded as a failure and opens the gate for good, so that
/// a broken fan-out fails the test instead of hanging the run.
final class Gate: Sendable {
  struct Snapshot: Sendable {
    /// Items in the order their bodies began.
    var started: [Int] = []
    /// Items in the order their bodies returned.
    var finished: [Int] = []
    var running = 0
    var peak = 0
  }

  private struct State {
    var snapshot = Snapshot()
    var released: Set<Int> = []
    var open = false
    var parked: [Int: CheckedContinuation<Void, Never>] = [:]
    var watchers: [(predicate: @Sendable (Snapshot) -> Bool, continuation: CheckedContinuation<Void, Never>)] = []

    /// Removes the watchers whose condition now holds, for the caller to resume outside the lock.
    mutating func satisfiedWatchers() -> [CheckedContinuation<Void, Never>] {
      let snapshot = snapshot
      let ready = watchers.filter { open || $0.predicate(snapshot) }.map(\.continuation)
      watchers.removeAll { open || $0.predicate(snapshot) }
      return ready
    }
  }

  private let state = Mutex(State())

  var snapshot: Snapshot { state.withLock { $0.snapshot } }

  /// A body's start: counted, then parked until `release(item)`.
  func enter(_ item: Int) async {
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
      let (ready, goOn) = state.withLock { state in
        state.snapshot.started.append(item)
        state.snapshot.running += 1
        state.snapshot.peak = max(state.snapshot.peak, state.snapshot.running)
        let goOn = state.released.remove(item) != nil || state.open
        if !goOn { state.parked[item] = continuation }
        return (state.satisfiedWatchers(), goOn)
      }
      ready.forEach { $0.resume() }
      if goOn { continuation.resume() }
    }
  }

  /// A body's end.
  func leave(_ item: Int) {
    let ready = state.withLock { state in
      state.snapshot.running -= 1
      state.snapshot.finished.append(item)
      return state.satisfiedWatchers()
    }
    ready.forEach { $0.resume() }
  }

  /// Lets `item`'s body go on, now if it is parked, else as soon as it arrives.
  func release(_ item: Int) {
    let parked: CheckedContinuation<Void, Never>? = state.withLock { state in
      if let parked = state.parked.removeValue(forKey: item) { return parked }
      state.released.insert(item)
      return nil
    }
    parked?.resume()
  }

  /// Lets every body and every waiter go on, now and from now on.
  private func open() {
    let waiting = state.withLock { state in
      state.open = true
      let parked = Array(state.parked.values)
      state.parked = [:]
      return parked + state.satisfiedWatchers()
    }
    waiting.forEach { $0.resume() }
  }

  /// Returns once `predicate` holds for the gate's state.
  func waitUntil(
    _ predicate: @escaping @Sendable (Snapshot) -> Bool, sourceLocation: SourceLocation = #_sourceLocation
  ) async {
    await withTaskCancellationHandler {
      await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let holds = state.withLock { state in
          if state.open || predicate(state.snapshot) { return true }
          state.watchers.append((predicate, continuation))
          return false
        }
        if holds { continuation.resume() }
      }
    } onCancel: {
      open()
    }
    if !predicate(snapshot) {
      Issue.record("the fan-out never reached the awaited state: \(snapshot)", sourceLocation: sourceLocation)
    }
  }
}

/// A value shared with escaping closures (which cannot capture a `Mutex` itself).
final class Shared<Value: Sendable>: Sendable {
  private let storage: Mutex<Value>
  init(_ value: Value) { storage = Mutex(value) }
  var value: Value {
    get { storage.withLock { $0 } }
    set { storage.withLock { $0 = newValue } }
  }
  func update(_ change: (inout Value) -> Void) { storage.withLock { change(&$0) } }
}

/// A failure count shared by the bodies and `shouldStart`, as the interpreter's `max_fail` does.
final class Counter: Sendable {
  private let count = Shared(0)
  func increment() { count.update { $0 += 1 } }
  var current: Int { count.value }
}

// A hang means a broken fan-out; the limit turns it into a failure instead of a stuck run.
@Suite("FanOut", .timeLimit(.minutes(1)))
struct FanOutTests {
  /// Runs `fanOut` over `0..<count` with bodies held at `gate`; each body returns its item × 10.
  static func start(
    _ count: Int, limit: Int, gate: Gate, shouldStart: @escaping @Sendable () -> Bool = { true }
  ) -> Task<[Int?], Never> {
    Task {
      await fanOut(Array(0..<count), limit: limit, shouldStart: shouldStart) { item in
        await gate.enter(item)
        gate.leave(item)
        return item * 10
      }
    }
  }

  @Test(arguments: [1, 2, 3, 5])
  func neverRunsMoreThanTheLimitAndFillsTheWindow(limit: Int) async {
    let gate = Gate()
    let count = 9
    let task = FanOutTests.start(count, limit: limit, gate: gate)
    // Free one item at a time; after each, the window refills to exactly `limit`
    // (or to what is left), and the items started so far are always the first ones.
    for finished in 0...count {
      let expected = min(count, finished + limit)
      await gate.waitUntil { $0.started.count >= expected && $0.finished.count >= finished }
      let snapshot = gate.snapshot
      #expect(Set(snapshot.started) == Set(0..<expected), "after \(finished) finished")
      #expect(snapshot.running == expected - finished)
      if let next = snapshot.started.first(where: { !snapshot.finished.contains($0) }) { gate.release(next) }
    }
    let results = await task.value
    #expect(results == (0..<count).map { $0 * 10 })
    #expect(gate.snapshot.peak == limit)
  }

  @Test func aLimitAboveTheItemCountRunsAllAtOnce() async {
    let gate = Gate()
    let task = FanOutTests.start(4, limit: 64, gate: gate)
    await gate.waitUntil { $0.started.count >= 4 }
    for item in 0..<4 { gate.release(item) }
    #expect(await task.value == [0, 10, 20, 30])
    #expect(gate.snapshot.peak == 4)
  }

  @Test func limitOneIsSerialInItemOrder() async {
    let gate = Gate()
    for item in 0..<5 { gate.release(item) }
    let results = await FanOutTests.start(5, limit: 1, gate: gate).value
    #expect(results == [0, 10, 20, 30, 40])
    // With one at a time, each item starts only after the previous one returned.
    #expect(gate.snapshot.started == [0, 1, 2, 3, 4])
    #expect(gate.snapshot.finished == [0, 1, 2, 3, 4])
    #expect(gate.snapshot.peak == 1)
  }

  @Test func resultsComeBackInItemOrderWhateverTheFinishingOrder() async {
    let gate = Gate()
    let task = FanOutTests.start(5, limit: 5, gate: gate)
    await gate.waitUntil { $0.started.count >= 5 }
    for item in (0..<5).reversed() {
      gate.release(item)
      await gate.waitUntil { $0.finished.count >= 5 - item }
    }
    #expect(gate.snapshot.finished == [4, 3, 2, 1, 0])
    #expect(await task.value == [0, 10, 20, 30, 40])
  }

  @Test func noItemsMeansNoWork() async {
    let asked = Counter()
    let results = await fanOut([Int](), limit: 3, shouldStart: { asked.increment(); return true }) { $0 }
    #expect(results.isEmpty)
    #expect(asked.current == 0)
  }

  // MARK: - shouldStart (max_fail)

  /// `max_fail = 1` as the interpreter asks it: start while at most one item has failed.
  @Test func onceShouldStartSaysNoTheRestIsNeverStarted() async {
    let failures = Counter()
    let asked = Counter()
    let fails: Set<Int> = [1, 2]
    let results = await fanOut(
      Array(0..<6), limit: 1,
      shouldStart: {
        asked.increment()
        return failures.current <= 1
      }
    ) { item in
      if fails.contains(item) { failures.increment() }
      return item
    }
    // 0 ok, 1 fails (1 ≤ 1: go on), 2 fails (2 > 1: stop); 3… never start.
    #expect(results == [0, 1, 2, nil, nil, nil])
    // Asked before each start, and not again once it said no.
    #expect(asked.current == 4)
  }

  @Test func stoppingLetsRunningItemsFinish() async {
    let gate = Gate()
    let stop = Shared(false)
    let task = Task {
      await fanOut(Array(0..<6), limit: 3, shouldStart: { !stop.value }) { item in
        await gate.enter(item)
        gate.leave(item)
        return item
      }
    }
    await gate.waitUntil { $0.started.count >= 3 }
    stop.value = true
    for item in [2, 0, 1] { gate.release(item) }
    #expect(await task.value == [0, 1, 2, nil, nil, nil])
    #expect(gate.snapshot.started.count == 3)
  }

  @Test func shouldStartIsAskedBeforeTheFirstItemToo() async {
    let started = Counter()
    let results = await fanOut(Array(0..<3), limit: 2, shouldStart: { false }) { item in
      started.increment()
      return item
    }
    #expect(results == [nil, nil, nil])
    #expect(started.current == 0)
  }

  // MARK: - Cancellation

  @Test func cancellationReachesRunningItemsAndStartsNoMore() async {
    let gate = Gate()
    let sawCancellation = Shared<[Int: Bool]>([:])
    let task = Task {
      await fanOut(Array(0..<6), limit: 2) { item in
        await gate.enter(item)
        sawCancellation.update { $0[item] = Task.isCancelled }
        gate.leave(item)
        return item
      }
    }
    await gate.waitUntil { $0.started.count >= 2 }
    task.cancel()
    gate.release(0)
    gate.release(1)
    let results = await task.value
    #expect(results == [0, 1, nil, nil, nil, nil])
    #expect(sawCancellation.value == [0: true, 1: true])
    #expect(gate.snapshot.started.count == 2)
  }

  @Test func aCancelledCallerStartsNothing() async {
    let started = Counter()
    let results = await Task {
      withUnsafeCurrentTask { $0?.cancel() }
      return await fanOut(Array(0..<3), limit: 3) { item in
        started.increment()
        return item
      }
    }.value
    #expect(results == [nil, nil, nil])
    #expect(started.current == 0)
  }
}
