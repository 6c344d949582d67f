// A recorded delivery runs from the texts kept when it was recorded, its includes too: the
// files on disk may have changed or gone since.

import CFISyntax
import Foundation
import Runtime
import TestSupport
import Testing

@testable import cfi_sh

@Suite struct DeliveryReplayTests {
  @Test func aDeliveryLoadsItsIncludesFromTheRecordedTextsNotFromDisk() throws {
    let directory = try TemporaryDirectory()
    let main = try directory.write("site.cfi", "include \"lib/common.cfi\"\nprint greeting args\n")
    try FileManager.default.createDirectory(atPath: directory.path + "/lib", withIntermediateDirectories: true)
    _ = try directory.write("lib/common.cfi", "let greeting = \"then\"\n")
    let loaded = try Loader.load(path: main)
    #expect(loaded.diagnostics.isEmpty)
    let recorded = DeliveryRunbook(
      name: main, files: loaded.files.map { .init(name: $0.path, text: String(decoding: $0.bytes, as: UTF8.self)) },
      arguments: ["a"], options: [])
    // What is on disk now says otherwise, or is gone.
    _ = try directory.write("site.cfi", "print \"now\"\n")
    try FileManager.default.removeItem(atPath: directory.path + "/lib/common.cfi")

    let (replayed, name, arguments, text) = try RunbookRunner.loadDelivery(recorded)
    #expect(replayed.diagnostics.isEmpty, "\(replayed.diagnostics)")
    #expect(replayed.files.map(\.path) == loaded.files.map(\.path))
    #expect(replayed.files.map(\.bytes) == loaded.files.map(\.bytes))
    #expect(name == main && arguments == ["a"] && text == nil)
  }

  @Test func aCommandLineRunbookKeepsItsTextForTheAuditRecord() throws {
    let recorded = DeliveryRunbook(
      name: "<command line>", files: [.init(name: "<command line>", text: "print 1")], arguments: [], options: [])
    let (_, name, _, text) = try RunbookRunner.loadDelivery(recorded)
    #expect(name == "<command line>" && text == "print 1")
  }

  @Test func anIncludeThatWasNotRecordedIsAnErrorAtItsPlace() throws {
    let recorded = DeliveryRunbook(
      name: "/srv/site.cfi", files: [.init(name: "/srv/site.cfi", text: "include \"other.cfi\"\n")], arguments: [],
      options: [])
    let (replayed, _, _, _) = try RunbookRunner.loadDelivery(recorded)
    #expect(replayed.diagnostics.map(\.message) == ["cannot read included file '/srv/other.cfi': No such file or directory"])
  }
}
