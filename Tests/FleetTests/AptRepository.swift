// A tiny trusted apt repository of fake packages for the package fleet tests: `.deb`s made with
// `dpkg-deb --build`, a hand-written `Packages` index and a `Release` file listing it, served to
// the lab's hosts as a `file:` source. No network, no dpkg-dev.

import Foundation
import TestSupport

/// A flat apt repository (`deb [trusted=yes] file:/var/tmp/cfi-test-repo.XXXXXX ./`), removed when
/// the value goes away.
///
/// It lives under /var/tmp because the hosts see the real /var through their overlays (their /tmp
/// and /run are private), and every directory is 0755 and every file 0644 so that apt's `_apt`
/// user can read it. Create it before the `Lab`.
///
/// A host's overlay remembers the names it looked up in the real directory, also those it did
/// not find, so every file apt asks for (`Packages`, `Release`) exists from the start and is
/// later rewritten in place (same inode), and a new package version is a new file name.
final class AptRepository {
  let path: String
  /// One `Packages` stanza per built file name, in publishing order.
  private var stanzas: [(file: String, text: String)] = []

  /// The line for `/etc/apt/sources.list.d/*.list`.
  var sourceLine: String { "deb [trusted=yes] file:\(path) ./" }

  init() throws {
    var template = Array("/var/tmp/cfi-test-repo.XXXXXX".utf8CString)
    guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
      throw RepositoryError("cannot create a repository under /var/tmp: errno \(errno)")
    }
    path = String(cString: made)
    chmod(path, 0o755)
    try writeIndex()
  }

  deinit { try? FileManager.default.removeItem(atPath: path) }

  /// Builds `NAME_VERSION_all.deb` — installing `/usr/share/cfi-test/NAME` with the text
  /// "NAME VERSION" — and publishes it. `postinst` is a shell script body for `DEBIAN/postinst`;
  /// `files` are more files the package installs (absolute path → text and mode).
  func publish(
    _ name: String, _ version: String, depends: [String] = [], postinst: String? = nil,
    files: [String: (text: String, mode: Int)] = [:]
  ) throws {
    let file = "\(name)_\(version)_all.deb"
    let build = NSTemporaryDirectory() + "cfi-test-deb-" + UUID().uuidString
    defer { try? FileManager.default.removeItem(atPath: build) }
    var control = """
      Package: \(name)
      Version: \(version)
      Architecture: all
      Maintainer: cfi-sh tests <root@localhost>

      """
    if !depends.isEmpty { control += "Depends: \(depends.joined(separator: ", "))\n" }
    control += "Description: cfi-sh test package \(name)\n fake package for the cfi-sh fleet tests\n"
    try write(build + "/DEBIAN/control", control, mode: 0o644)
    if let postinst { try write(build + "/DEBIAN/postinst", "#!/bin/sh\nset -e\n\(postinst)\n", mode: 0o755) }
    try write(build + "/usr/share/cfi-test/\(name)", "\(name) \(version)\n", mode: 0o644)
    for (file, content) in files { try write(build + file, content.text, mode: content.mode) }
    let built = try shell(["/usr/bin/dpkg-deb", "--root-owner-group", "--build", build, path + "/" + file])
    guard built.status == 0 else { throw RepositoryError("dpkg-deb --build \(file) failed: \(built.stderr)") }
    chmod(path + "/" + file, 0o644)

    let data = try Data(contentsOf: URL(fileURLWithPath: path + "/" + file))
    var stanza = "Package: \(name)\nVersion: \(version)\nArchitecture: all\n"
    if !depends.isEmpty { stanza += "Depends: \(depends.joined(separator: ", "))\n" }
    stanza += "Filename: ./\(file)\nSize: \(data.count)\nSHA256: \(try sha256(path + "/" + file))\n"
    stanza += "Description: cfi-sh test package \(name)\n"
    stanzas.removeAll { $0.file == file }
    stanzas.append((file, stanza))
    try writeIndex()
  }

  /// Rewrites `Packages` and `Release` in place.
  private func writeIndex() throws {
    let packages = stanzas.map(\.text).joined(separator: "\n")
    try overwrite(path + "/Packages", packages)
    let release = """
      Origin: cfi-test
      Label: cfi-test
      SHA256:
       \(try sha256(path + "/Packages")) \(packages.utf8.count) Packages

      """
    try overwrite(path + "/Release", release)
  }

  /// Writes `text` into `file` through the same inode (truncate, write), created 0644 if new.
  private func overwrite(_ file: String, _ text: String) throws {
    let fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { throw RepositoryError("cannot write \(file): errno \(errno)") }
    defer { close(fd) }
    let bytes = Array(text.utf8)
    let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    guard written == bytes.count else { throw RepositoryError("short write to \(file)") }
    fchmod(fd, 0o644)
  }

  private func write(_ file: String, _ text: String, mode: Int) throws {
    let directory = (file as NSString).deletingLastPathComponent
    try FileManager.default.createDirectory(
      atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
    try text.write(toFile: file, atomically: false, encoding: .utf8)
    try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: file)
  }

  private func sha256(_ file: String) throws -> String {
    let result = try shell(["/usr/bin/sha256sum", file])
    guard result.status == 0, let hash = result.stdout.split(separator: " ").first else {
      throw RepositoryError("sha256sum \(file) failed: \(result.stderr)")
    }
    return String(hash)
  }
}

struct RepositoryError: Error, CustomStringConvertible {
  let description: String
  init(_ description: String) { self.description = description }
}
