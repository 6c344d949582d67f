// What reaches an ssh argv from the inventory: addresses are parsed where they enter, so a
// client list cannot smuggle an option into ssh (`address=-V` made `run "false"` report ok
// with ssh's version as its output, and the address was remembered).

import Foundation
import TestSupport
import Testing

@Suite struct InventoryInputTests {
  @Test func anAddressThatIsAnOptionIsRefusedAndNothingRuns() throws {
    let directory = try TemporaryDirectory()
    let list = try directory.write("clients", "pc04 address=-V\n")
    let store = directory.path + "/store"
    let result = try Command.run([
      "--store", store, "-i", list, "--no-discovery", "--audit-log", "none", "-c", #"on all < run "false" >"#,
    ])
    #expect(result.status == 1)
    #expect(result.stderr.contains("clients:1: error: '-V' is not a valid host address"), "\(result.stderr)")
    #expect(!result.stdout.contains("OpenSSH") && !result.stderr.contains("OpenSSH"))
    // Nothing was remembered: the state database, if the run made one, knows no host.
    let hosts = try Command.run(
      ["hosts", "--store", store, "--no-discovery", "--json", "-i", "/dev/null"],
      environment: ["CFI_DSH_GROUPS": directory.path + "/no-dsh"])
    #expect(hosts.status == 0, "\(hosts.stderr)")
    #expect(hosts.stdout.isEmpty, "\(hosts.stdout)")
  }
}
