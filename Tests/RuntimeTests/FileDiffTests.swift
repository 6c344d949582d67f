// --diff of copy and sync: the unified diff itself, and what is said instead of one (a new
// file, binary, large, a mode, a hash).

import Foundation
import TestSupport
import Testing

@testable import Runtime

@Suite struct FileDiffTests {
  static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

  static func change(_ flags: String, _ path: String = "/etc/x.conf") -> FileDiff.Change {
    FileDiff.Change(flags: flags, hostPaths: [path], storePath: "", shownStore: "STORE/lab" + path)
  }

  static func text(_ change: FileDiff.Change, _ old: FileDiff.HostContent, _ new: StoreContent) -> String {
    FileDiff.text([change], host: [old], store: [new]) ?? ""
  }

  @Test func changedLineWithContext() {
    let old = "a\nb\nc\nd\ne\nf\ng\nh\n"
    let new = "a\nb\nc\nd\nE\nf\ng\nh\n"
    #expect(
      TextDiff.unified(old: Self.bytes(old), new: Self.bytes(new), from: "/etc/x", to: "new/x") == """
        --- /etc/x
        +++ new/x
        @@ -2,7 +2,7 @@
         b
         c
         d
        -e
        +E
         f
         g
         h

        """)
  }

  @Test func identicalTextsHaveNoDiff() {
    #expect(TextDiff.unified(old: Self.bytes("same\n"), new: Self.bytes("same\n"), from: "a", to: "b") == "")
  }

  @Test func missingNewlineAtTheEnd() {
    #expect(
      TextDiff.unified(old: Self.bytes("a\nb"), new: Self.bytes("a\nb\n"), from: "a", to: "b") == """
        --- a
        +++ b
        @@ -1,2 +1,2 @@
         a
        -b
        \\ No newline at end of file
        +b

        """)
  }

  /// Two changes far apart are two hunks; close ones share one.
  @Test func hunksSplitAndMerge() {
    let old = (1...30).map { "line \($0)\n" }.joined()
    var lines = (1...30).map { "line \($0)\n" }
    lines[1] = "two\n"
    lines[25] = "twenty-six\n"
    let far = TextDiff.unified(old: Self.bytes(old), new: Self.bytes(lines.joined()), from: "a", to: "b")
    #expect(far.components(separatedBy: "\n@@ ").count - 1 == 2)
    #expect(far.contains("@@ -1,5 +1,5 @@") && far.contains("@@ -23,7 +23,7 @@"))
    lines[25] = "line 26\n"
    lines[8] = "nine\n"
    let near = TextDiff.unified(old: Self.bytes(old), new: Self.bytes(lines.joined()), from: "a", to: "b")
    #expect(near.contains("@@ -1,12 +1,12 @@"))
  }

  /// Whatever the texts, the diff turns the old text into the new one (applied by a patcher
  /// written here), also past the bound where the middle is shown as replaced.
  @Test(arguments: [3, 50, 5000])
  func diffAppliesToTheNewText(lines count: Int) {
    var generator = SeededRandom(seed: UInt64(count))
    for _ in 0..<20 {
      let words = ["alpha", "beta", "gamma", "delta", ""]
      let old = (0..<count).map { _ in words.randomElement(using: &generator)! + "\n" }.joined()
      let new = (0..<count).map { _ in words.randomElement(using: &generator)! + "\n" }.joined()
      let diff = TextDiff.unified(old: Self.bytes(old), new: Self.bytes(new), from: "a", to: "b")
      #expect(Self.apply(diff, to: old) == new)
    }
  }

  /// A patcher of unified diffs (full-line texts only).
  static func apply(_ diff: String, to text: String) -> String {
    var old = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)[...]
    var out: [String] = []
    var consumed = 0
    for line in diff.split(separator: "\n", omittingEmptySubsequences: false).dropLast().dropFirst(2) {
      if line.hasPrefix("@@ ") {
        let start = Int(line.dropFirst(4).prefix { $0.isNumber })!
        let target = line.dropFirst(4).contains(",0 +") && line.dropFirst(4).hasPrefix("\(start),0") ? start : start - 1
        while consumed < target {
          out.append(old.removeFirst())
          consumed += 1
        }
      } else if line.hasPrefix("+") {
        out.append(String(line.dropFirst()))
      } else {
        #expect(old.first == String(line.dropFirst()), "context or removed line does not match")
        let kept = old.removeFirst()
        consumed += 1
        if line.hasPrefix(" ") { out.append(kept) }
      }
    }
    return (out + old).map { $0 + "\n" }.joined()
  }

  @Test func newTextFileIsADiffFromDevNull() {
    let text = Self.text(Self.change(">f+++++++++"), .missing, .file(Self.bytes("x = 1\n"), mode: 0o644))
    #expect(text == "--- /dev/null\n+++ STORE/lab/etc/x.conf\n@@ -0,0 +1 @@\n+x = 1\n")
  }

  @Test func binaryAndLargeFilesSaySo() {
    let binary: [UInt8] = [0x7F, 0x45, 0x4C, 0x46, 0, 1]
    #expect(Self.text(Self.change(">f+++++++++"), .missing, .file(binary, mode: 0o755)) == "/etc/x.conf: new binary file (6 bytes)\n")
    #expect(
      Self.text(Self.change(">f.st......"), .file(Self.bytes("text\n"), mode: 0o644), .file(binary, mode: 0o644))
        == "/etc/x.conf: binary file differs\n")
    // Invalid UTF-8 is binary too.
    #expect(
      Self.text(Self.change(">f.st......"), .file([0xFF, 0xFE, 0x0A], mode: 0o644), .file(Self.bytes("text\n"), mode: 0o644))
        == "/etc/x.conf: binary file differs\n")
    #expect(
      Self.text(Self.change(">f.st......"), .large(size: 2_000_000, mode: 0o644), .file(Self.bytes("small\n"), mode: 0o644))
        == "/etc/x.conf: large file differs (2000000 bytes)\n")
    #expect(
      Self.text(Self.change(">f.st......"), .file(Self.bytes("small\n"), mode: 0o644), .large(size: 3_000_000, mode: 0o644))
        == "/etc/x.conf: large file differs (3000000 bytes)\n")
  }

  @Test func modeChangeWhenRsyncItemizesIt() {
    let same = Self.bytes("x\n")
    #expect(
      Self.text(Self.change(">f..tp.....", "/etc/x.conf"), .file(same, mode: 0o600), .file(same, mode: 0o644))
        == "/etc/x.conf: mode changed 0600 → 0644\n")
    // Without rsync's `p`, modes are not compared (a tree keeps the host's modes).
    #expect(
      Self.text(Self.change(">f..t......"), .file(same, mode: 0o600), .file(same, mode: 0o644))
        == "/etc/x.conf: same content, new modification time\n")
  }

  /// rsync escapes bytes of names (`\#ooo`): the host's path is the real one.
  @Test func escapedNamesAreUnescaped() {
    #expect(FileDiff.unescaped(##"etc/caf\#303\#251.conf"##) == "etc/café.conf")
    #expect(FileDiff.unescaped(##"a\#01b\#"##) == ##"a\#01b\#"##)
  }

  @Test func directoriesLinksAndDeletions() {
    let changes = [
      Self.change("cd+++++++++", "/etc/new/"), Self.change("*deleting", "/etc/old"),
      FileDiff.Change(flags: "cL+++++++++", hostPaths: ["/etc/link"], storePath: "etc/link", shownStore: "", linkTarget: "x.conf"),
    ]
    #expect(
      FileDiff.text(changes, host: [], store: [])
        == "/etc/new/: new directory\n/etc/old: deleted\n/etc/link: new symbolic link → x.conf\n")
  }

  /// A crypt hash never shows, not even as the line that changed: both sides are redacted
  /// after they were compared.
  @Test func hashesAreRedacted() {
    let old = "root:$6$saltsalt$" + String(repeating: "a", count: 86) + ":19000:0:99999:7:::\n"
    let new = "root:$6$saltsalt$" + String(repeating: "b", count: 86) + ":19000:0:99999:7:::\n"
    let text = Self.text(Self.change(">f.st......", "/etc/shadow"), .file(Self.bytes(old), mode: 0o640), .file(Self.bytes(new), mode: 0o640))
    #expect(text.contains("\n-root:<redacted>\n") && text.contains("\n+root:<redacted>\n"))
    #expect(!text.contains("$6$"))
  }

  /// The fetch command's report, and a destination that is a directory on the host.
  @Test func fetchReportDecodes() {
    let report = "missing\ndir\nother\nunreadable\nlarge 2000000 644\nskipped 10 600\nfile 3 644 YWIK\nfile 0 600 \n"
    #expect(
      FileDiff.decode(report) == [
        .missing, .directory, .other, .unreadable, .large(size: 2_000_000, mode: 0o644), .skipped(size: 10, mode: 0o600),
        .file(Self.bytes("ab\n"), mode: 0o644), .file([], mode: 0o600),
      ])
  }

  @Test func fetchScriptReportsRealFiles() async throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cfi-diff-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: directory + "/d", withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    try "ab\n".write(toFile: directory + "/f", atomically: true, encoding: .utf8)
    try Data(count: FileDiff.limit + 1).write(to: URL(fileURLWithPath: directory + "/big"))
    let paths = ["/f", "/d", "/missing", "/big"].map { directory + $0 }
    let result = try await LocalProgram.find("sh", fallback: "/bin/sh").run(
      ["-c", FileDiff.fetchScript], input: paths.joined(separator: "\n") + "\n")
    let mode = UInt16(try FileManager.default.attributesOfItem(atPath: directory + "/f")[.posixPermissions] as! Int)
    #expect(
      FileDiff.decode(result.stdout) == [
        .file(Self.bytes("ab\n"), mode: mode), .directory, .missing,
        .large(size: FileDiff.limit + 1, mode: UInt16(try FileManager.default.attributesOfItem(atPath: directory + "/big")[.posixPermissions] as! Int)),
      ])
  }
}
