// StoreLock: one run per store. flock locks belong to an open file description, so a second
// `StoreLock` in this process (its own open()) contends with the first exactly as another
// process would; a lock taken with our own descriptor stands in for a holder that wrote no pid.

import Foundation
import Runtime
import Testing

@Suite("StoreLock")
struct StoreLockTests {
  /// A fresh store under the system's temporary directory, removed at the end of the test.
  final class TemporaryStore {
    let store: Store
    var lockPath: String { store.root + "/.cfi/lock" }

    init() throws {
      let root = FileManager.default.temporaryDirectory.appendingPathComponent("cfi-storelock-\(UUID().uuidString)").path
      try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
      store = Store(root: root)
    }

    deinit { try? FileManager.default.removeItem(atPath: store.root) }
  }

  static let ourPid = String(getpid())

  @Test func theLockFileNamesItsHolder() throws {
    let temporary = try TemporaryStore()
    let lock = try StoreLock(store: temporary.store, wait: false)
    #expect(lock.path == temporary.lockPath)
    let lines = try String(contentsOfFile: lock.path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
    #expect(lines.count == 3 && lines[0] == StoreLockTests.ourPid && lines[2] == "")
    #expect(ISO8601DateFormatter().date(from: String(lines[1])) != nil, "no start time: \(lines)")
  }

  @Test func aSecondLockIsRefusedWithTheHolderWhenNotWaiting() throws {
    let temporary = try TemporaryStore()
    let first = try StoreLock(store: temporary.store, wait: false)
    #expect(throws: StoreLock.Failure.self) { _ = try StoreLock(store: temporary.store, wait: false) }
    do {
      _ = try StoreLock(store: temporary.store, wait: false)
    } catch .busy(let holder) {
      #expect(holder?.pid == StoreLockTests.ourPid)
      #expect(holder?.since != nil)
    } catch {
      Issue.record("expected busy, got \(error)")
    }
    withExtendedLifetime(first) {}
  }

  @Test func theLockIsFreeAgainOnceReleased() throws {
    let temporary = try TemporaryStore()
    var first: StoreLock? = try StoreLock(store: temporary.store, wait: false)
    _ = first
    first = nil
    let second = try StoreLock(store: temporary.store, wait: false)
    #expect(try String(contentsOfFile: second.path, encoding: .utf8).hasPrefix(StoreLockTests.ourPid + "\n"))
  }

  /// A process spawned while a run holds the lock shares its open file description until it
  /// execs (O_CLOEXEC closes it only then): closing our descriptor alone would leave the lock
  /// held by that copy, and the next run refused by our own pid (seen in CI, where tests
  /// spawn processes in parallel). A `dup` of the descriptor stands in for the child's copy.
  @Test func theLockIsFreeOnceReleasedEvenWhileACopyOfItsDescriptorLives() throws {
    let temporary = try TemporaryStore()
    var first: StoreLock? = try StoreLock(store: temporary.store, wait: false)
    let held = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").filter {
      (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)")) == temporary.lockPath
    }
    #expect(held.count == 1)
    let copy = dup(try #require(held.first.flatMap { Int32($0) }))
    defer { close(copy) }
    _ = first
    first = nil
    #expect(throws: Never.self) { _ = try StoreLock(store: temporary.store, wait: false) }
  }

  /// A holder that wrote nothing, only its pid (an older cfi-sh), or its pid and start time:
  /// the refusal says what the file holds.
  @Test(arguments: [
    ("", nil), ("4242\n", "pid 4242"), ("  77  \n", "pid 77"),
    ("4242\n2026-12-06T04:50:00Z\n", "pid 4242, started 2026-12-06T04:50:00Z"),
  ] as [(String, String?)])
  func theHolderIsReadFromTheLockFile(content: String, holder: String?) throws {
    let temporary = try TemporaryStore()
    try FileManager.default.createDirectory(atPath: temporary.store.root + "/.cfi", withIntermediateDirectories: true)
    try content.write(toFile: temporary.lockPath, atomically: false, encoding: .utf8)
    let descriptor = open(temporary.lockPath, O_RDWR)
    #expect(descriptor >= 0)
    defer { close(descriptor) }
    #expect(flock(descriptor, LOCK_EX | LOCK_NB) == 0)
    do {
      _ = try StoreLock(store: temporary.store, wait: false)
      Issue.record("a held lock was taken")
    } catch .busy(let found) {
      #expect(found?.description == holder)
    } catch {
      Issue.record("expected busy, got \(error)")
    }
    // Refused, it left the holder's record alone.
    #expect(try String(contentsOfFile: temporary.lockPath, encoding: .utf8) == content)
  }

  /// With `wait`, the second run says whom it waits for, then gets the lock as soon as the
  /// first lets go, and not before. The waiter blocks in flock, so it runs on its own thread.
  @Test(.timeLimit(.minutes(1))) func aWaitingLockIsGrantedWhenTheFirstIsReleased() async throws {
    let temporary = try TemporaryStore()
    var first: StoreLock? = try StoreLock(store: temporary.store, wait: false)
    _ = first
    let released = Shared(false)
    let store = temporary.store
    let (waiting, waitingFor) = AsyncStream.makeStream(of: StoreLock.Holder?.self)
    let (granted, grant) = AsyncStream.makeStream(of: (lock: StoreLock?, afterRelease: Bool).self)
    let thread = Thread {
      let lock = try? StoreLock(store: store, wait: true) { holder in
        waitingFor.yield(holder)
      }
      // Ends the wait for `waiting` too when the lock never called it.
      waitingFor.finish()
      grant.yield((lock, released.value))
      grant.finish()
    }
    thread.start()

    var waitingIterator = waiting.makeAsyncIterator()
    let holder = await waitingIterator.next()
    #expect(holder??.pid == StoreLockTests.ourPid)
    released.value = true
    first = nil

    var grantedIterator = granted.makeAsyncIterator()
    let second = await grantedIterator.next()
    #expect(second?.lock != nil)
    #expect(second?.afterRelease == true)
    #expect(try String(contentsOfFile: temporary.lockPath, encoding: .utf8).hasPrefix(StoreLockTests.ourPid + "\n"))
  }

  /// A bounded wait gives up with the holder once its time is up, having said once whom it
  /// waited for; a zero wait (`--no-wait`) says nothing and gives up at once.
  @Test(.timeLimit(.minutes(1)), arguments: [Duration.zero, .milliseconds(300)])
  func aBoundedWaitGivesUpWithTheHolder(limit: Duration) async throws {
    let temporary = try TemporaryStore()
    let first = try StoreLock(store: temporary.store, wait: false)
    let told = Shared(0)
    do {
      _ = try await StoreLock.take(store: temporary.store, waitingAtMost: limit) { _ in told.value += 1 }
      Issue.record("a held lock was taken")
    } catch .busy(let holder) {
      #expect(holder?.pid == StoreLockTests.ourPid)
    } catch {
      Issue.record("expected busy, got \(error)")
    }
    #expect(told.value == (limit == .zero ? 0 : 1))
    withExtendedLifetime(first) {}
  }

  /// A bounded wait takes the lock as soon as its holder lets go.
  @Test(.timeLimit(.minutes(1))) func aBoundedWaitTakesTheLockOnceReleased() async throws {
    let temporary = try TemporaryStore()
    let first = Shared<StoreLock?>(try StoreLock(store: temporary.store, wait: false))
    let lock = try await StoreLock.take(store: temporary.store, waitingAtMost: .seconds(600)) { _ in first.value = nil }
    #expect(first.value == nil)
    withExtendedLifetime(lock) {}
  }

  @Test func aFreeLockWithWaitDoesNotCallWaiting() throws {
    let temporary = try TemporaryStore()
    var called = false
    let lock = try StoreLock(store: temporary.store, wait: true) { _ in called = true }
    #expect(!called)
    withExtendedLifetime(lock) {}
  }

  /// A store whose root is a file: the lock's directory cannot exist (even for root, which
  /// permissions would not stop).
  @Test func anUnusablePlaceIsCannotOpen() throws {
    let temporary = try TemporaryStore()
    let file = temporary.store.root + "/not-a-directory"
    try "".write(toFile: file, atomically: false, encoding: .utf8)
    do {
      _ = try StoreLock(store: Store(root: file), wait: false)
      Issue.record("a lock was taken under a file")
    } catch .cannotOpen(let message) {
      #expect(message.hasPrefix("cannot open lock file \(file)/.cfi/lock: "))
    } catch {
      Issue.record("expected cannotOpen, got \(error)")
    }
  }

  /// Where the store is writable by others than root, the lock file could be a link to a file
  /// root would then truncate: it is refused, and the file it points to stays as it was.
  @Test(arguments: ["symlink", "fifo"])
  func aLockFileThatIsNotARegularFileIsRefused(_ kind: String) throws {
    let temporary = try TemporaryStore()
    try FileManager.default.createDirectory(atPath: temporary.store.root + "/.cfi", withIntermediateDirectories: true)
    let victim = temporary.store.root + "/precious"
    try "keep me\n".write(toFile: victim, atomically: false, encoding: .utf8)
    if kind == "symlink" {
      try FileManager.default.createSymbolicLink(atPath: temporary.lockPath, withDestinationPath: victim)
    } else {
      #expect(mkfifo(temporary.lockPath, 0o644) == 0)
    }
    do {
      _ = try StoreLock(store: temporary.store, wait: false)
      Issue.record("a lock was taken through a \(kind)")
    } catch .cannotOpen(let message) {
      #expect(message.contains(kind == "symlink" ? "symbolic link" : "not a regular file"), "\(message)")
    } catch {
      Issue.record("expected cannotOpen, got \(error)")
    }
    #expect(try String(contentsOfFile: victim, encoding: .utf8) == "keep me\n")
  }
}
