// A run tells the truth about what it did: cfi-sh's options after the runbook are refused
// (not passed on and run for real), a block that matched no host is said and sets bit 8,
// a run without discovery says so, and a block's store paths are checked against the trees
// its hosts receive.

import Foundation
import TestSupport
import Testing

@Suite(.serialized, .enabled(if: fleetAvailable, "fleet tests need root"))
struct TrustFleetTests {
  /// The habit of `ansible-playbook site.yml --check` must not change every host.
  @Test func anOptionAfterTheRunbookIsRefusedAndNothingChanges() throws {
    let lab = try Lab("trustcheck", hosts: 3)
    let book = try lab.store.write("book.cfi", "on all < run \"touch /root/changed\" >\nprint args\n")
    let refused = try lab.cfi([book, "--check"])
    #expect(refused.status == 64)
    #expect(refused.stdout == "")
    #expect(refused.stderr.contains("to pass '--check' to the runbook, write: cfi-sh \(book) -- --check"), "\(refused.stderr)")
    for host in lab.hosts {
      #expect(try lab.exec(host, "test -e /root/changed").status != 0, "\(host) was changed")
    }
    // After `--`, it is the runbook's: in `args`, and the run is a real one.
    let passed = try lab.cfi([book, "--", "--check"])
    #expect(passed.status == 0, "\(passed.stderr)")
    #expect(passed.stdout.contains("--check\n"))
    for host in lab.hosts {
      #expect(try lab.exec(host, "test -e /root/changed").status == 0, "\(host) was not reached")
    }
  }

  /// A block that matched no host warns with its target and sets bit 8, combined with the
  /// other bits as they are.
  @Test func aBlockThatMatchesNoHostWarnsAndSetsBit8() throws {
    let lab = try Lab("trustnone", hosts: 3)
    let ok = try lab.run("on all < run \"true\" >")
    #expect(ok.status == 0, "\(ok.stderr)")
    let none = try lab.run("on host pc01 except pc01 < run \"touch /root/none\" >\non all < run \"true\" >")
    #expect(none.status == 8, "\(none.stderr)")
    #expect(none.stdout.contains("warning: on host pc01 except pc01 matched no host  <command line>:1:1\n"), "\(none.stdout)")
    try lab.stopSSHD("pc03")
    let combined = try lab.run(
      "on all < run '[ $(hostname) != pc01 ]' >\non host pc01 except pc01 < run \"true\" >", ["--connect-timeout", "3s"])
    #expect(combined.status == 2 | 4 | 8, "\(combined.stderr)")
    let quiet = try lab.run("on host pc01 except pc01 < run \"true\" >", ["-q"])
    #expect(quiet.status == 8)
    #expect(quiet.stdout.contains("matched no host"))
  }

  /// With no avahi-daemon to ask, a run that relies on discovery says so on stderr (no -v),
  /// and goes on with the hosts the other sources name.
  @Test func aRunWithoutAvahiSaysNoDiscovery() throws {
    let lab = try Lab("trustnoav", hosts: 2, labOptions: ["--no-avahi"])
    let result = try Command.run(
      ["-i", lab.inventory, "--identity", lab.key, "--store", lab.store.path, "--audit-log", lab.auditLog, "-c",
       "on all < run \"true\" >"],
      environment: ["DBUS_SYSTEM_BUS_ADDRESS": lab.dbus])
    #expect(result.status == 0, "\(result.stderr)")
    #expect(result.stderr.contains("cfi-sh: no discovery: "), "\(result.stderr)")
    #expect(result.stdout.contains("ok"))
  }

  /// A `group` statement's group is no store tree: its hosts receive their own groups' trees
  /// (the static check took the block's group name for a store group and refused the run).
  @Test func aGroupStatementsGroupTakesItsHostsOwnTrees() throws {
    let lab = try Lab("trustgrp", hosts: 4)
    _ = try lab.storeFile("lab/etc/motd", "lab motd\n")
    _ = try lab.storeFile("office/etc/motd", "office motd\n")
    let result = try lab.run("group racks = pc02, pc03\non group racks < copy \"etc/motd\" >")
    #expect(result.status == 0, "\(result.stderr)")
    #expect(try lab.read("pc02", "cat /etc/motd") == "lab motd")
    #expect(try lab.read("pc03", "cat /etc/motd") == "office motd")
    #expect(try lab.read("pc01", "cat /etc/motd") != "lab motd")
  }
}
