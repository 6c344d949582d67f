// A fan-out above what the process's file descriptors allow: the hosts take turns instead of
// failing with "too many open files", and cfi-sh says so once. The limit is lowered for
// cfi-sh alone (prlimit), soft and hard, so that raising it at start cannot help.

import Foundation
import TestSupport
import Testing

@Suite(.serialized, .enabled(if: fleetAvailable, "fleet tests need root"))
struct DescriptorLimitFleetTests {
  @Test func aFanOutAboveTheDescriptorLimitTakesTurnsAndSaysSoOnce() throws {
    let lab = try Lab("fdlimit", hosts: 30, groups: ["lab"])
    // 160 descriptors: 9 hosts at once; all 30 at once would need about 364 (without the
    // turns, some hosts would fail to start their ssh or their sessions).
    let descriptors = 160
    let result = try lab.cfi(
      ["--json", "-p", "64", "-c", #"on all < run "true" >; on all < run "true" >"#],
      through: ["/usr/bin/prlimit", "--nofile=\(descriptors):\(descriptors)", "--"])
    #expect(result.status == 0, "\(result.stderr)")
    #expect(outcomes(result) == all(lab.hosts, "ok"), "\(result.stderr)")
    #expect(steps(result).count == 2 * lab.hosts.count)
    let notice =
      "note: 30 hosts at once need about 364 file descriptors; this process may open \(descriptors) "
      + "(ulimit -n; hard limit \(descriptors)): 9 hosts run at once, the others take turns."
    #expect(result.stderr.components(separatedBy: notice).count == 2, "said once: \(result.stderr)")
    #expect(!result.stderr.contains("Too many open files"), "\(result.stderr)")
  }

  @Test func aLimitThatLastsIsRaisedAndSaysNothing() throws {
    let lab = try Lab("fdraise", hosts: 30, groups: ["lab"])
    // A soft limit too low for 30 hosts at once, under a hard limit that is not: raised at start.
    let result = try lab.cfi(
      ["--json", "-p", "64", "-c", #"on all < run "true" >"#],
      through: ["/usr/bin/prlimit", "--nofile=160:4096", "--"])
    #expect(result.status == 0, "\(result.stderr)")
    #expect(outcomes(result) == all(lab.hosts, "ok"), "\(result.stderr)")
    #expect(!result.stderr.contains("file descriptors"), "\(result.stderr)")
  }
}
