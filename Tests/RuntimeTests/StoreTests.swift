// Reading files of the store: what `script`, `lines()` and pkgsync read is the file that was
// checked, opened once; anything but a regular UTF-8 file inside the group's tree is refused.

import Foundation
import TestSupport
import Testing

@testable import Runtime

@Suite struct StoreTests {
  /// A store with a group `lab`, removed at the end.
  final class Scratch {
    let root: String
    var store: Store { Store(root: root) }
    init() throws {
      root = FileManager.default.temporaryDirectory.appendingPathComponent("cfi-store-\(UUID().uuidString)").path
      try FileManager.default.createDirectory(atPath: root + "/lab", withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: root) }
  }

  /// fetch's paths: absolute, normalized; its local directory is the path's parent under
  /// `.fetched/HOST`, `./`-prefixed for a relative store (a `:` there is no rsync host).
  @Test func fetchPathsAndWhereTheyGo() throws {
    #expect(try Store.hostPath("//var/log//apt/") == "/var/log/apt")
    for refused in ["", "etc/x", "/", "///", "/etc/../x", "/etc/./x", "/a\0b"] {
      #expect(throws: StoreError.self, "\(refused.debugDescription)") { try Store.hostPath(refused) }
    }
    let host: HostName = "pc01"
    #expect(Store(root: "/var/lib/cfi/").fetched("/etc/hostname", from: host) == "/var/lib/cfi/.fetched/pc01/etc/")
    #expect(Store(root: "/srv/cfi").fetched("/x", from: host) == "/srv/cfi/.fetched/pc01/")
    #expect(Store(root: "a:b").fetched("/var/log/apt", from: host) == "./a:b/.fetched/pc01/var/log/")
  }

  @Test func aFileOfTheTreeIsReadWhole() throws {
    let scratch = try Scratch()
    let text = String(repeating: "line ü\n", count: 20_000)
    try text.write(toFile: scratch.root + "/lab/script.sh", atomically: true, encoding: .utf8)
    #expect(try scratch.store.text("script.sh", group: "lab") == text)
  }

  /// A FIFO would block a read (or feed it forever), a directory has no text.
  @Test(arguments: ["fifo", "directory"])
  func whatIsNotARegularFileIsRefused(_ kind: String) throws {
    let scratch = try Scratch()
    let path = scratch.root + "/lab/thing"
    if kind == "fifo" {
      #expect(mkfifo(path, 0o644) == 0)
    } else {
      try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    #expect {
      _ = try scratch.store.text("thing", group: "lab")
    } throws: { error in
      (error as? StoreError)?.message == "'\(path)' is not a regular file"
    }
  }

  @Test func aLinkOutOfTheTreeIsRefusedAndNotRead() throws {
    let scratch = try Scratch()
    try "secret\n".write(toFile: scratch.root + "/outside", atomically: true, encoding: .utf8)
    try FileManager.default.createSymbolicLink(atPath: scratch.root + "/lab/list", withDestinationPath: scratch.root + "/outside")
    #expect(throws: StoreError.self) { _ = try scratch.store.text("list", group: "lab") }
  }

  @Test func textThatIsNotUTF8IsRefused() throws {
    let scratch = try Scratch()
    #expect(FileManager.default.createFile(atPath: scratch.root + "/lab/bin", contents: Data([0x61, 0xFF, 0x62])))
    #expect {
      _ = try scratch.store.text("bin", group: "lab")
    } throws: { error in
      (error as? StoreError)?.message.hasSuffix("is not UTF-8 text") == true
    }
  }
}
