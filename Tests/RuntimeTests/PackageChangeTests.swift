// PackageChange parsing of recorded apt-get simulations and dpkg logs (C locale), in
// `Golden/PackageChange/`: NAME.txt is the output, NAME.expected one change per line, then
// the summary line.

import Foundation
import Testing

@testable import Runtime

@Suite struct PackageChangeTests {
  static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("Golden/PackageChange").path

  @Test(arguments: ["apt-simulate", "dpkg-log"])
  func parsesRecordedOutput(_ name: String) throws {
    let output = try String(contentsOfFile: "\(Self.directory)/\(name).txt", encoding: .utf8)
    let expected = try String(contentsOfFile: "\(Self.directory)/\(name).expected", encoding: .utf8)
    let changes = PackageChange.parse(output.split(separator: "\n").map(String.init))
    let actual = (changes.map(\.description) + [PackageChange.summary(changes)]).joined(separator: "\n") + "\n"
    #expect(actual == expected)
  }

  /// dpkg writes through apt's pty: "\r\n" line ends count as line ends.
  @Test func carriageReturnsDoNotHideLines() {
    let lines = "Unpacking vim (2:9.0.1378-2) ...\r\nSetting up vim (2:9.0.1378-2) ...\r\n".split(whereSeparator: \.isNewline).map(String.init)
    #expect(PackageChange.parse(lines) == [PackageChange(kind: .install, name: "vim", to: "2:9.0.1378-2")])
  }

  @Test func errorLines() {
    #expect(PackageOperations.aptErrors("W: x\nE: Unable to locate package nosuch\nE: two\n") == "Unable to locate package nosuch; two")
    #expect(PackageOperations.aptErrors("W: only a warning") == nil)
    #expect(PkgsyncOperation.pkgsyncErrors("Error: Missing files in /etc/pkgsync. Aborting.\n") == "Error: Missing files in /etc/pkgsync. Aborting.")
    #expect(PkgsyncOperation.pkgsyncErrors("noise") == "pkgsync failed")
  }
}
