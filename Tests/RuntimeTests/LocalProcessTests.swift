// LocalProcess: a program named without a path is looked up along PATH once, in-process.

import Foundation
import Subprocess
import Testing

@testable import Runtime

#if canImport(System)
  import System
#else
  import SystemPackage
#endif

@Suite struct LocalProcessTests {
  /// Found along PATH: by its absolute path, the same each time (the child then execs once).
  @Test func aNameIsLookedUpAlongPathOnce() {
    let sh = LocalProcess.executable("sh")
    let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map { $0 + "/sh" }
      .first { FileManager.default.isExecutableFile(atPath: $0) }
    #expect(path != nil)
    #expect(sh == .path(FilePath(path ?? "")))
    #expect(LocalProcess.executable("sh") == sh)
  }

  /// A path stays a path; a name found nowhere is left to the spawn, which says so.
  @Test func pathsAndMissingNames() async throws {
    #expect(LocalProcess.executable("/bin/true") == .path(FilePath("/bin/true")))
    #expect(LocalProcess.executable("cfi-no-such-program") == .name("cfi-no-such-program"))
    await #expect(throws: (any Error).self) { try await LocalProcess.run("cfi-no-such-program", []) }
    #expect(try await LocalProcess.run("sh", ["-c", "echo ok"]).stdout == "ok\n")
  }
}
