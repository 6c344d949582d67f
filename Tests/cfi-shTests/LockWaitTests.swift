// The store's lock as the command line meets it: a run waits a bounded time for another
// run's lock (`--lock-wait`, 10 minutes by default), then ends with status 75, naming the
// holder's pid and when it started. The holder here is this test process (its own open of the
// lock file contends with the cfi-sh it starts as another process would).

import Foundation
import Runtime
import TestSupport
import Testing

@Suite struct LockWaitTests {
  @Test(.timeLimit(.minutes(1))) func aRunGivesUpWaitingForTheLockAfterItsLimit() throws {
    let directory = try TemporaryDirectory()
    var holder: StoreLock? = try StoreLock(store: Store(root: directory.path), wait: false)
    let lines = try String(contentsOfFile: directory.path + "/.cfi/lock", encoding: .utf8).split(separator: "\n")
    let started = String(lines[1])
    let options = ["--store", directory.path, "--no-discovery", "--audit-log", "none", "-i", "/dev/null"]

    let waited = try Command.run(options + ["--lock-wait", "1s", "-c", #"print "ran""#])
    #expect(waited.status == 75)
    #expect(waited.stdout == "", "nothing ran")
    #expect(waited.stderr.contains("waiting for another run on \(directory.path) (pid \(getpid()), started \(started)) to finish, at most 1s"), "\(waited.stderr)")
    #expect(waited.stderr.contains(
      "another run holds the lock of \(directory.path) (pid \(getpid()), started \(started)); gave up after waiting 1s (--lock-wait)"),
      "\(waited.stderr)")

    let refused = try Command.run(options + ["--no-wait", "-c", #"print "ran""#])
    #expect(refused.status == 75)
    #expect(!refused.stderr.contains("waiting for"), "\(refused.stderr)")
    #expect(refused.stderr.contains("(pid \(getpid()), started \(started)); not waiting (--no-wait)"), "\(refused.stderr)")
    #expect(holder != nil)
    holder = nil

    let free = try Command.run(options + ["--lock-wait", "1s", "-c", #"print "ran""#])
    #expect(free.status == 0, "\(free.stderr)")
    #expect(free.stdout == "ran\n")
  }

  @Test func lockWaitAndTimeoutTakeNoneAndRefuseNonsense() throws {
    let scratch = try TemporaryDirectory()
    let options = ["--store", scratch.path + "/store", "--no-discovery", "--audit-log", "none", "-i", "/dev/null"]
    #expect(try Command.run(options + ["--lock-wait", "none", "--timeout", "none", "-c", "print 1"]).status == 0)
    let bad = try Command.run(options + ["--lock-wait", "soon", "-c", "print 1"])
    #expect(bad.status == 64)
    #expect(bad.stderr.contains("--lock-wait: 'soon' is not a duration"), "\(bad.stderr)")
    #expect(try Command.run(options + ["--no-wait", "--lock-wait", "1m", "-c", "print 1"]).status == 64)
  }
}
