// `cfi-sh nodeset`: host sets expanded, folded and counted on the command line, in the
// language's own pattern syntax.

import Foundation
import TestSupport
import Testing

@Suite struct NodesetCommandTests {
  private func nodeset(_ arguments: [String], stdin: String? = nil) throws -> Command {
    try Command.run(["nodeset", "--no-discovery"] + arguments, stdin: stdin)
  }

  @Test(arguments: [
    (["-e", "pc[01-03]"], "pc01 pc02 pc03\n"),
    (["-e", "rack[1-2]-n[1-2]", "-x", "rack1-n2", "-S", ","], "rack1-n1,rack2-n1,rack2-n2\n"),
    (["-f", "pc01", "pc02", "pc03", "pc05", "web1", "pc02"], "pc[01-03,05],web1\n"),
    (["-f", "pc10,pc9,pc1"], "pc[1,9-10]\n"),
    (["-f", "-S", " ", "pc01", "web1"], "pc01 web1\n"),
    (["-c", "pc[01-10]", "-x", "pc[03-04]"], "8\n"),
  ])
  func expandsFoldsAndCounts(arguments: [String], output: String) throws {
    let result = try nodeset(arguments)
    #expect(result.status == 0, "\(result.stderr)")
    #expect(result.stdout == output)
  }

  @Test func readsTheSetsFromStandardInputWhenNoneIsGiven() throws {
    let result = try nodeset(["-f"], stdin: "pc02 pc01\npc03\n\n")
    #expect(result.stdout == "pc[01-03]\n")
  }

  @Test func aGroupIsItsHostsInTheInventory() throws {
    let directory = try TemporaryDirectory()
    let clients = try directory.write("clients", "pc01 group=lab\npc02 group=lab\npc03 group=office\n")
    try FileManager.default.createDirectory(atPath: directory.path + "/store/lab", withIntermediateDirectories: true)
    try FileManager.default.createDirectory(atPath: directory.path + "/store/office", withIntermediateDirectories: true)
    let result = try nodeset(["-i", clients, "--store", directory.path + "/store", "-f", "@lab", "web1"])
    #expect(result.stdout == "pc[01-02],web1\n", "\(result.stderr)")
  }

  @Test func aBadSetIsAUsageErrorThatSaysWhere() throws {
    let result = try nodeset(["-e", "pc[05-01]"])
    #expect(result.status == 64)
    #expect(result.stderr == "cfi-sh: in 'pc[05-01]': range is reversed: '05-01'\n")
    #expect(try nodeset(["pc01"]).status == 64, "one of -e, -f, -c")
  }
}
