// GroupName: the one group-name rule, and every place that used to have its own.

import Foundation
import Testing

@testable import Runtime
import TestSupport

@Suite struct GroupNameTests {
  static let accepted = ["lab", "Office-2", "a_b", "_x", "0ad", "lab-", String(repeating: "g", count: 64)]
  static let refused = [
    "", "-lab", "-", "a b", "a,b", "a.b", ".lab", "grüppe", "x<y", "../etc", "lab/x", "@lab", "lab\n",
    String(repeating: "g", count: 65),
  ]

  @Test(arguments: accepted) func accepts(_ text: String) throws {
    #expect(GroupName.isValid(text))
    #expect(try GroupName(parsing: text).rawValue == text)
  }

  @Test(arguments: refused) func refuses(_ text: String) {
    #expect(!GroupName.isValid(text))
    #expect(GroupName(text) == nil)
    #expect(throws: GroupNameError(text: text)) { try GroupName(parsing: text) }
  }

  @Test func theErrorNamesTheRuleAndEscapesTheText() {
    let message = GroupNameError(text: "-lab\u{1B}").description
    #expect(message == "'-lab\\x1B' is not a valid group name (1 to 64 letters, digits, '-' or '_', not starting with '-')")
  }

  @Test func decodingRefusesWhatParsingRefuses() throws {
    let decoded = try JSONDecoder().decode([GroupName].self, from: Data(#"["lab","unknown"]"#.utf8))
    #expect(decoded == ["lab", .unknown])
    #expect(String(decoding: try JSONEncoder().encode(decoded), as: UTF8.self) == #"["lab","unknown"]"#)
    #expect(throws: DecodingError.self) { try JSONDecoder().decode([GroupName].self, from: Data(#"["-lab"]"#.utf8)) }
  }

  @Test func unknownIsTheHostsFallback() {
    #expect(Host(name: "pc01").group == .unknown)
    #expect(GroupName.unknown.rawValue == "unknown")
  }

  /// What a client may announce is exactly what the server files it under.
  @Test(arguments: accepted + refused) func theServerTreatsAnAnnouncedGroupAsTheClientDoes(_ text: String) throws {
    let service = DiscoveredService(name: "pc01", hostName: "pc01.local", address: "10.0.0.5", port: 22, txt: ["group": text], interface: 2)
    let host = try #require(Inventory.host(announcedBy: service, knownGroups: Set([text].compactMap(GroupName.init))))
    #expect(host.group.rawValue == (GroupName.isValid(text) ? text : GroupName.unknown.rawValue))
  }

  @Test func staticListsAndStoresUseTheSameRule() throws {
    #expect(throws: InventoryError.self) { try Inventory.parseStaticList("pc01 group=-lab\n", file: "clients") }
    #expect(try Inventory.parseStaticList("pc01 group=lab\n", file: "clients").first?.group == "lab")
    let directory = try TemporaryFiles()
    for name in ["lab", "-lab", ".hidden", String(repeating: "g", count: 65)] {
      try FileManager.default.createDirectory(atPath: directory.path + "/" + name, withIntermediateDirectories: true)
    }
    let store = Store(root: directory.path)
    #expect(store.groups() == ["lab"])
    #expect(store.hasGroup("lab") && !store.hasGroup("-lab"))
  }
}
