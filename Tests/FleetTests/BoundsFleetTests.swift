// Dead hosts cost a bounded time and each says why it is unreachable: the dead-host matrix
// (hosts broken four ways among healthy ones) and a host whose link dies in the middle of a
// step. No timing assertions: a watchdog fails a run that takes three times its bound.

import Foundation
import TestSupport
import Testing

/// The liveness bound of cfi-sh's ssh (ServerAliveInterval 5 × ServerAliveCountMax 3).
let livenessBound: Duration = .seconds(15)

@Suite(.serialized, .enabled(if: fleetAvailable, "fleet tests need root"))
struct BoundsFleetTests {
  @Test func deadHostsAreUnreachableEachForItsReasonWithinTheirBound() throws {
    let lab = try Lab("deadhosts", hosts: 20)
    let broken = ["pc03": "refused", "pc07": "no_route", "pc11": "connect_timeout", "pc15": "handshake_timeout"]
    try lab.stopSSHD("pc03")
    try lab.lab("unplug", "pc07")
    try lab.lab("blackhole", "pc11")
    try lab.lab("silent", "pc15")
    // Above the 3 s an unanswered ARP takes (pc07's "no route"), so that it is not a timeout.
    let connectTimeout: Duration = .seconds(5)
    let run = try lab.start(#"on all < run "touch /root/done" >"#, ["--json", "--connect-timeout", "5s"])
    let result = run.finish(watchdog: (connectTimeout + livenessBound) * 3, "a run with 4 dead hosts of 20")
    #expect(result.status == 4, "\(result.stderr)")
    var expected = all(lab.hosts, "ok")
    for host in broken.keys { expected[host] = "unreachable" }
    #expect(outcomes(result) == expected)
    var reasons: [String: String] = [:]
    for step in steps(result) where step["status"] as? String == "unreachable" {
      reasons[step["host"] as! String] = step["reason"] as? String
    }
    #expect(reasons == broken, "\(steps(result).filter { $0["status"] as? String == "unreachable" })")
    let finished = events(result, "host_finished").filter { $0["status"] as? String == "unreachable" }
    #expect(Dictionary(uniqueKeysWithValues: finished.map { ($0["host"] as! String, $0["reason"] as? String ?? "") }) == broken)
    for host in lab.hosts where broken[host] == nil {
      #expect(try lab.exec(host, "test -e /root/done").status == 0, "\(host) did not run the step")
    }
  }

  @Test func aLinkThatDiesMidStepIsAConnectionLostWithinTheLivenessBound() throws {
    let lab = try Lab("midblackhole", hosts: 5)
    let run = try lab.start(#"on all < run "echo started; sleep 30; echo done" >"#, ["--json"])
    // The step runs on pc03 (its sleep is there) before its link goes.
    var running = false
    for _ in 0..<300 where !running {
      running = try lab.exec("pc03", "pgrep -fx 'sleep 30' >/dev/null").status == 0
      if !running { Thread.sleep(forTimeInterval: 0.1) }
    }
    #expect(running, "the step never started on pc03")
    try lab.lab("blackhole", "pc03")
    // The others' step takes 30 s; pc03's loss must come within the liveness bound, long before
    // a TCP timeout (minutes).
    let result = run.finish(watchdog: .seconds(30) + livenessBound * 3, "a run with a host lost mid-step")
    #expect(result.status == 4, "\(result.stderr)")
    var expected = all(lab.hosts, "ok")
    expected["pc03"] = "unreachable"
    #expect(outcomes(result) == expected)
    let step = try #require(steps(result).first { $0["host"] as? String == "pc03" })
    #expect(step["reason"] as? String == "connection_lost", "\(step)")
    #expect((step["message"] as? String)?.contains("it may have run") == true, "\(step)")
    #expect(step["stdout"] as? String == "started\n", "what the command wrote before the link went is kept")
    for other in steps(result) where other["host"] as? String != "pc03" {
      #expect(other["stdout"] as? String == "started\ndone\n")
    }
  }
}

extension RunningCommand {
  /// Waits for the program to end, at most `limit` (the watchdog, three times the bound the
  /// run must keep): past it, records an issue naming `what` and stops the program with two
  /// interrupts (Ctrl-C twice quits), so that the test ends either way.
  func finish(watchdog limit: Duration, _ what: String) -> Command {
    /// The command, handed from the waiting thread (the semaphore orders the two).
    final class Outcome: @unchecked Sendable { var command: Command? }
    nonisolated(unsafe) let running = self
    let outcome = Outcome()
    let done = DispatchSemaphore(value: 0)
    Thread {
      outcome.command = running.finish()
      done.signal()
    }.start()
    if done.wait(timeout: .now() + .seconds(Int(limit.components.seconds))) == .timedOut {
      Issue.record("\(what) took longer than its watchdog (\(limit)): not bounded")
      running.interrupt()
      running.interrupt()
      done.wait()
    }
    return outcome.command!
  }
}
