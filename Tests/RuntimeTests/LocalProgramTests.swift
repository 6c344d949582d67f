// LocalProgram: a helper's status, its two outputs kept apart, its stdin.

import Testing

@testable import Runtime

@Suite struct LocalProgramTests {
  let shell = LocalProgram(path: "/bin/sh")

  @Test func statusOutputsAndInput() async throws {
    let result = try await shell.run(["-c", "read line; echo \"out:$line\"; echo err >&2; exit 3"], input: "hello\n")
    #expect(result == ProgramResult(status: 3, stdout: "out:hello\n", stderr: "err\n"))
    #expect(!result.succeeded)
    #expect(result.message == "err\nout:hello")
  }

  @Test func withoutInputStdinIsEmpty() async throws {
    #expect(try await shell.run(["-c", "cat; echo done"]).stdout == "done\n")
  }

  @Test func aSignalIsReportedAsTheShellWould() async throws {
    #expect(try await shell.run(["-c", "kill -TERM $$"]).status == 128 + 15)
  }

  @Test func aMissingProgramThrows() async {
    await #expect(throws: (any Error).self) { try await LocalProgram(path: "/nonexistent/tool").run([]) }
    #expect(LocalProgram.find("no-such-tool-cfi") == nil)
    #expect(LocalProgram.find("sh") != nil)
  }
}
