// What a run may reach: only the hosts of its own lab. A test never sees this machine's dsh
// groups, client list or known clients (`IsolatedMachine`), and the server itself is never
// part of `on all`, a group or a pattern, only of `on host NAME`.

import Foundation
import Runtime
import TestSupport
import Testing

/// This machine's files as a test lays them out: `etc/…` and `var/lib/…` under `root`, seen
/// at `/etc` and `/var/lib` by a program started through `wrapper` (a private mount namespace
/// with overlays over both; nothing of this machine is written).
private struct FakeMachine {
  let root: TemporaryDirectory

  init(dshAll: String, clients: String, known: [Runtime.Host]) throws {
    root = try TemporaryDirectory()
    try root.write("etc/dsh/machines.list", dshAll)
    try FileManager.default.createDirectory(atPath: root.path + "/etc/dsh/group", withIntermediateDirectories: true)
    // As Debian's dsh package lays it out: group/all → ../machines.list.
    try FileManager.default.createSymbolicLink(atPath: root.path + "/etc/dsh/group/all", withDestinationPath: "../machines.list")
    try root.write("etc/cfi/clients", clients)
    try FileManager.default.createDirectory(atPath: root.path + "/var/lib/cfi/lab", withIntermediateDirectories: true)
    let store = Store(root: root.path + "/var/lib/cfi")
    try KnownClients(database: StateDatabase(store: store), store: store).remember(known)
    try FileManager.default.createDirectory(atPath: root.path + "/layers", withIntermediateDirectories: true)
    try root.write(
      "as-machine",
      """
      set -e
      machine=$1; shift
      mount -t tmpfs cfi-test-machine "$machine/layers"
      for d in etc var/lib; do
        layer="$machine/layers/$(echo "$d" | tr / -)"
        mkdir -p "$layer/upper" "$layer/work"
        cp -a "$machine/$d/." "$layer/upper/"
        mount -t overlay cfi-test-machine -o "lowerdir=/$d,upperdir=$layer/upper,workdir=$layer/work" "/$d"
      done
      exec "$@"
      """)
  }

  /// Runs what follows in a private mount namespace where this machine looks like `root`.
  var wrapper: [String] {
    ["/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", root.path + "/as-machine", root.path]
  }

  /// `cfi-sh hosts --no-discovery --json` as this machine: the names it lists.
  func listedHosts(isolated: Bool) throws -> Set<String> {
    let result = try Command.run(
      Array(wrapper.dropFirst()) + [Command.binary.path, "hosts", "--no-discovery", "--json"],
      executable: URL(fileURLWithPath: wrapper[0]), isolated: isolated)
    #expect(result.status == 0, "\(result.stderr)")
    return Set(result.stdout.split(separator: "\n").compactMap { line in
      (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["name"] as? String
    })
  }
}

/// The `block_started` events of a JSON run: (hosts, left_out).
private func blocks(_ result: Command) -> [(hosts: [String], leftOut: [String])] {
  result.stdout.split(separator: "\n").compactMap { line in
    guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
      object["event"] as? String == "block_started"
    else { return nil }
    return (object["hosts"] as? [String] ?? [], object["left_out"] as? [String] ?? [])
  }
}

@Suite(.serialized, .enabled(if: fleetAvailable, "fleet tests need root"))
struct TargetFleetTests {
  @Test func aMachineWideDshGroupClientListAndKnownClientsAreIgnored() throws {
    let lab = try Lab("machine", hosts: 3)
    let machine = try FakeMachine(
      dshAll: "localhost\ndshonly01\n", clients: "clientonly01 address=192.0.2.99 group=lab\n",
      known: [Runtime.Host(name: "knownonly01", address: "192.0.2.98")])
    let machineHosts: Set<String> = ["localhost", "dshonly01", "clientonly01", "knownonly01"]
    // The fake machine is what cfi-sh sees when nothing points it elsewhere…
    #expect(try machine.listedHosts(isolated: false).isSuperset(of: machineHosts))
    // …and what the tests' cfi-sh never sees.
    #expect(try machine.listedHosts(isolated: true).isEmpty)
    let result = try lab.cfi(["--json", "-c", #"on all < run "true" >"#], through: machine.wrapper)
    #expect(result.status == 0, "\(result.stderr)")
    #expect(outcomes(result) == all(lab.hosts, "ok"))
    #expect(blocks(result).map(\.hosts) == [lab.hosts])
    #expect(blocks(result).map(\.leftOut) == [[]])
  }

  @Test func theServerIsLeftOutOfAllAndGroupsWithANote() throws {
    let lab = try Lab("server", hosts: 3)
    #expect(!lab.serverAddress.isEmpty)
    let dsh = try TemporaryDirectory()
    let server = ["localhost", "127.0.0.1", lab.serverAddress]
    try dsh.write("all", (server + lab.hosts).joined(separator: "\n") + "\n")
    try dsh.write("web", "localhost\n\(lab.serverAddress)\npc02\n")
    let environment = ["CFI_DSH_GROUPS": dsh.path]

    let json = try lab.cfi(
      ["--json", "-c", #"on all < run "true" >; on group web < run "true" >; on host @web, pc0[1-3] < run "true" >"#],
      environment: environment)
    #expect(json.status == 0, "\(json.stderr)")
    #expect(outcomes(json) == all(lab.hosts, "ok"))
    #expect(blocks(json).map(\.hosts) == [lab.hosts, ["pc02"], lab.hosts])
    let leftOut: [Set<String>] = [Set(server), ["localhost", lab.serverAddress], ["localhost", lab.serverAddress]]
    #expect(blocks(json).map { Set($0.leftOut) } == leftOut)

    let text = try lab.cfi(["-c", #"on all < run "true" >"#], environment: environment)
    #expect(text.status == 0, "\(text.stderr)")
    #expect(text.stdout.contains("note: on all: leaving out "), "\(text.stdout)")
    #expect(text.stdout.contains("(this server)"), "\(text.stdout)")
    #expect(text.stdout.contains("3 hosts: pc[01-03]"), "\(text.stdout)")
  }

  @Test func onHostNamingTheServerStillReachesForIt() throws {
    let lab = try Lab("servhost", hosts: 1)
    let result = try lab.cfi(
      ["--json", "--connect-timeout", "3s", "-c", #"on host localhost, pc01 < run "true" >"#])
    // localhost may run no sshd, or not take the lab's key: attempted is what counts.
    #expect(blocks(result).map(\.hosts) == [["localhost", "pc01"]])
    #expect(blocks(result).map(\.leftOut) == [[]])
    let statuses = outcomes(result)
    #expect(statuses["pc01"] == "ok")
    #expect(statuses["localhost"] != nil)
    #expect(steps(result).contains { $0["host"] as? String == "localhost" })
  }
}
