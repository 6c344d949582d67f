// FuzzCorpusTests.swift — replays, on every `swift test`, what the fuzzer (Fuzz/, `make fuzz`)
// checks on each input it makes: the front end returns in bounded time, its diagnostics point
// inside their files, and a runbook that parses survives ScriptPrinter (FrontEndInvariants,
// through ParserRobustnessTests.problems). The inputs:
// - `FuzzInputs/regressions/`: every input the fuzzer found crashing, hanging or breaking a
//   property, kept after its fix (named after what it broke);
// - `FuzzInputs/corpus/`: the fuzzer's corpus, minimized (`make fuzz-corpus`);
// - the golden inputs and the example runbooks, which also seed the fuzzer.

import CFISyntax
import Foundation
import Testing

@Suite("Fuzz corpus")
struct FuzzCorpusTests {
  static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("FuzzInputs").path
  static let runbooks = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("runbooks").path

  /// The files directly in `directory` (not README.md), sorted.
  static func files(in directory: String, suffix: String = "") -> [String] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    return names.filter { $0 != "README.md" && !$0.hasPrefix(".") && $0.hasSuffix(suffix) }.sorted()
      .map { directory + "/" + $0 }
  }

  /// Checks each input on a watched thread: one that does not finish in 20 s (ten times the
  /// fuzzer's bound, for a debug build on a busy machine) fails instead of hanging the suite.
  static func replay(_ paths: [String]) throws {
    for path in paths {
      let bytes = try Loader.readFromDisk(path)
      let label = String(path.split(separator: "/").suffix(2).joined(separator: "/"))
      let finished = LoaderTests.finishing(within: 20) { ParserRobustnessTests.problems(bytes).problems }
      guard let problems = finished else {
        Issue.record("\(label) did not finish within 20 s")
        continue
      }
      for problem in problems { Issue.record("\(label): \(problem)") }
    }
  }

  @Test("the regression inputs found by fuzzing")
  func regressions() throws {
    try FuzzCorpusTests.replay(FuzzCorpusTests.files(in: FuzzCorpusTests.directory + "/regressions"))
  }

  @Test("the fuzzer's corpus")
  func corpus() throws {
    let paths = FuzzCorpusTests.files(in: FuzzCorpusTests.directory + "/corpus")
    try #require(paths.count >= 100, "only \(paths.count) corpus inputs: run make fuzz-corpus")
    try FuzzCorpusTests.replay(paths)
  }

  @Test("the seeds: golden inputs and example runbooks")
  func seeds() throws {
    let paths = FuzzCorpusTests.files(in: GoldenTests.directory, suffix: ".cfi")
      + FuzzCorpusTests.files(in: FuzzCorpusTests.runbooks, suffix: ".cfi")
    try #require(paths.count > 50)
    try FuzzCorpusTests.replay(paths)
  }
}
