// What an interrupted rsync leaves beside the files a push writes, and what the next push
// removes of it before it starts (CopyOperation.removeTemporaries); the fleet test that
// interrupts real pushes is SafetyFleetTests.

import Foundation
import TestSupport
import Testing

@testable import Runtime

struct PushLeftoverTests {
  @Test func theNextPushRemovesRsyncsTemporaryFilesAndNothingElse() async throws {
    let directory = NSTemporaryDirectory() + "cfi-leftovers-" + UUID().uuidString
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let files: [(name: String, mode: Int)] = [
      ("big.bin", 0o644), (".big.bin.Ab3dE9", 0o600), (".big.bin.backup", 0o644), (".big.bin.x", 0o600),
      (".~tmp~/big.bin", 0o600), ("with space.conf", 0o644), (".with space.conf.QQQQQ1", 0o700), (".other.Ab3dE9", 0o600),
    ]
    try FileManager.default.createDirectory(atPath: directory + "/.~tmp~", withIntermediateDirectories: true)
    for (name, mode) in files {
      _ = FileManager.default.createFile(atPath: directory + "/" + name, contents: Data(), attributes: [.posixPermissions: mode])
    }
    let command = RemoteCommand(
      .script(CopyOperation.removeTemporaries), input: .text("\(directory)/big.bin\n\(directory)/with space.conf\n"))
    let result = await LocalTransport().run(command, on: Host(name: "localhost"))
    #expect(result.termination == .exited(0), "\(result.stderr)")
    let left = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
    // An admin's file with a longer or shorter suffix, or readable by others, stays; so does
    // a temporary-looking file beside a name the push does not write.
    #expect(left == [".big.bin.backup", ".big.bin.x", ".other.Ab3dE9", "big.bin", "with space.conf"])
  }

  /// The clean-up rides rsync's own remote command: the `--rsync-path` text, run by a shell
  /// as the host's sshd runs it, removes the leftovers of names with quotes and spaces.
  @Test func theRsyncPathCleansUpBeforeRsyncStarts() async throws {
    let directory = NSTemporaryDirectory() + "cfi-leftovers-" + UUID().uuidString
    defer { try? FileManager.default.removeItem(atPath: directory) }
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let name = "it's a \"file\".conf"
    for file in [name, ".\(name).Ab3dE9"] {
      _ = FileManager.default.createFile(atPath: directory + "/" + file, contents: Data(), attributes: [.posixPermissions: 0o600])
    }
    let path = try #require(CopyOperation.rsyncPathRemovingTemporaries([directory + "/" + name]))
    #expect(path.hasSuffix("; rsync"))
    // What rsync appends after it (`--server …`) goes to `true` here instead of rsync.
    let command = RemoteCommand(.script(String(path.dropLast("rsync".count)) + "true --server"))
    let result = await LocalTransport().run(command, on: Host(name: "localhost"))
    #expect(result.termination == .exited(0), "\(result.stderr)")
    #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == [name])
  }

  @Test func aListTooLongForOneShellArgumentGetsACommandOfItsOwn() {
    let many = (0..<2_000).map { "/etc/cfi/a-rather-long-directory-name/file-\($0).conf" }
    #expect(CopyOperation.rsyncPathRemovingTemporaries(Array(many.prefix(10))) != nil)
    #expect(CopyOperation.rsyncPathRemovingTemporaries(many) == nil)
  }
}
