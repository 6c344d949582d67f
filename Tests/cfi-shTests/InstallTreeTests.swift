// `make install` / `make uninstall` (scripts/package/tree, which `make deb` uses too) into a
// staging directory: where each file goes, with which mode, and that uninstall takes back
// everything install put there. The Debian package itself is tested on a lab host
// (Tests/FleetTests/DebianPackageFleetTests.swift).

import Foundation
import TestSupport
import Testing

@Suite struct InstallTreeTests {
  private let script = Command.packageRoot.appendingPathComponent("scripts/package/tree")

  private func tree(_ verb: String, _ settings: [String: String]) throws -> Command {
    try Command.run(
      [verb], executable: script, environment: settings.merging(["BINARY": Command.binary.path]) { $1 }, isolated: false)
  }

  @Test func installPutsEveryFileUnderThePrefixAndUninstallTakesThemBack() throws {
    let stage = try TemporaryDirectory()
    let settings = ["PREFIX": "/usr/local", "DESTDIR": stage.path]
    let listed = try tree("list", settings)
    #expect(listed.status == 0, "\(listed.stderr)")
    let files = listed.stdout.split(separator: "\n").map(String.init)
    for expected in [
      "/usr/local/bin/cfi-sh", "/usr/local/share/doc/cfi-sh/README.md", "/usr/local/share/doc/cfi-sh/language.md",
      "/usr/local/share/doc/cfi-sh/runbooks/root-password.cfi",
    ] {
      #expect(files.contains(expected), "\(expected) is not installed")
    }
    #expect(files.allSatisfy { $0.hasPrefix("/usr/local/") }, "\(files)")
    #expect(!files.contains { $0.hasSuffix("/.gitignore") })

    let installed = try tree("install", settings)
    #expect(installed.status == 0, "\(installed.stderr)")
    let manager = FileManager.default
    for file in files {
      let attributes = try manager.attributesOfItem(atPath: stage.path + file)
      let mode = (attributes[.posixPermissions] as? Int) ?? 0
      #expect(mode == (file.hasSuffix("/bin/cfi-sh") ? 0o755 : 0o644), "\(file): \(String(mode, radix: 8))")
    }
    // Units name the installed binary, not the Debian path.
    for unit in files where unit.hasSuffix(".service") {
      let text = try String(contentsOfFile: stage.path + unit, encoding: .utf8)
      #expect(!text.contains("/usr/bin/cfi-sh") && text.contains("/usr/local/bin/cfi-sh"), "\(unit)")
    }

    let removed = try tree("uninstall", settings)
    #expect(removed.status == 0, "\(removed.stderr)")
    let left = manager.enumerator(atPath: stage.path)?.compactMap { $0 as? String }.filter { name in
      var isDirectory: ObjCBool = false
      return manager.fileExists(atPath: stage.path + "/" + name, isDirectory: &isDirectory) && !isDirectory.boolValue
    }
    #expect(left == [], "left by uninstall")
  }

  @Test func theDebianLayoutPutsUnitsAndZshCompletionWhereDebianLooks() throws {
    let listed = try tree(
      "list",
      ["PREFIX": "/usr", "SYSTEMD_UNIT_DIR": "/lib/systemd/system", "ZSH_COMPLETION_DIR": "/usr/share/zsh/vendor-completions"])
    let files = listed.stdout.split(separator: "\n")
    #expect(files.contains("/usr/bin/cfi-sh"))
    #expect(files.allSatisfy { $0.hasPrefix("/usr/") || $0.hasPrefix("/lib/systemd/system/cfi-sh") }, "\(files)")
  }

  @Test func installWithoutABinaryFailsAndSaysWhy() throws {
    let stage = try TemporaryDirectory()
    let result = try Command.run(
      ["install"], executable: script, environment: ["BINARY": stage.path + "/nothing", "DESTDIR": stage.path], isolated: false)
    #expect(result.status == 1)
    #expect(result.stderr.contains("tree: no binary at \(stage.path)/nothing"), "\(result.stderr)")
  }
}
