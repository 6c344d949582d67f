// `--output-dir`: each host's output of each step in files of its own.

import Foundation
import Runtime
import TestSupport
import Testing

@testable import cfi_sh

@Suite struct OutputDirectoryTests {
  @Test func eachStepOfEachHostGetsItsFilesAndALineInTheIndex() throws {
    let directory = try TemporaryDirectory()
    let sink = try OutputDirectory(root: directory.path + "/out")
    let pc01 = Runtime.Host(name: "pc01")
    let pc02 = Runtime.Host(name: "pc02")
    let uname = StepInfo(block: 1, location: "site.cfi:2:3", label: #"run "uname -r""#)
    let hash = "$6$salt$" + String(repeating: "a", count: 86)
    sink.emit(.stepFinished(uname, host: pc01, result: StepResult(status: .ok, output: "6.1.0\n")))
    sink.emit(.stepFinished(uname, host: pc02, result: StepResult(status: .failed, errorOutput: "no\n", diff: "x 1.0 → 1.1\n")))
    let second = StepInfo(block: 1, location: "site.cfi:3:3", label: #"run "cat x""#)
    sink.emit(.stepFinished(second, host: pc01, result: StepResult(status: .ok, output: "root:\(hash):1\n")))
    func read(_ path: String) -> String? { try? String(contentsOfFile: directory.path + "/out/" + path, encoding: .utf8) }
    #expect(read("pc01/01.stdout") == "6.1.0\n")
    #expect(read("pc01/01.stderr") == nil, "no file for an empty output")
    #expect(read("pc02/01.stderr") == "no\n")
    #expect(read("pc02/01.diff") == "x 1.0 → 1.1\n", "--diff's text")
    #expect(read("pc01/01.diff") == nil)
    let redacted = try #require(read("pc01/02.stdout"))
    #expect(!redacted.contains(hash) && redacted.hasPrefix("root:<redacted>"), "\(redacted)")
    #expect(read("pc01/steps") == "01 ok site.cfi:2:3 run \"uname -r\"\n02 ok site.cfi:3:3 run \"cat x\"\n")
    let mode = try FileManager.default.attributesOfItem(atPath: directory.path + "/out/pc01/01.stdout")[.posixPermissions] as? Int
    #expect(mode == 0o600)
  }
}
