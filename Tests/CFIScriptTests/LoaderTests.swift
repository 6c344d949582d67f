// LoaderTests.swift — what bounds a load (issue 11, defect 5): includes are told apart by the
// file they open, not the path written (a symlink `d -> .` gives a file endless names), the
// includes followed are capped, and the diagnostics shown are capped while the count stays
// right. A load that does not finish fails its watchdog instead of hanging the suite.

import CFIScript
import CFISyntax
import Foundation
import Testing

/// A result handed from the watched thread; the semaphore orders the write before the read.
private final class WatchedResult<T>: @unchecked Sendable {
  let done = DispatchSemaphore(value: 0)
  var value: T?
}

@Suite("Loader bounds")
struct LoaderTests {
  /// Runs `body` on its own thread and returns its result, or nil when it has not finished
  /// after `seconds` (the thread is left to the end of the process: a hung loader cannot be
  /// stopped from outside, and the test must fail rather than wait for it).
  static func finishing<T: Sendable>(within seconds: Double, _ body: @escaping @Sendable () -> T) -> T? {
    let box = WatchedResult<T>()
    let thread = Thread {
      box.value = body()
      box.done.signal()
    }
    thread.stackSize = 8 << 20
    thread.start()
    guard box.done.wait(timeout: .now() + seconds) == .success else { return nil }
    return box.value
  }

  /// A fresh directory holding `files` (path → text, directories made as needed) and
  /// `links` (path → symlink target), removed by the caller.
  static func tree(files: [String: String], links: [String: String] = [:]) throws -> String {
    let manager = FileManager.default
    let root = manager.temporaryDirectory.appendingPathComponent("cfi-loader-\(UUID().uuidString)").path
    for (path, text) in files {
      try manager.createDirectory(atPath: ((root + "/" + path) as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
      try text.write(toFile: root + "/" + path, atomically: true, encoding: .utf8)
    }
    for (path, target) in links { try manager.createSymbolicLink(atPath: root + "/" + path, withDestinationPath: target) }
    return root
  }

  /// Loads `path` under the watchdog.
  static func load(_ path: String) throws -> LoadedRunbook {
    let loaded = LoaderTests.finishing(within: 60) { try? Loader.load(path: path) }
    return try #require(loaded ?? nil, "the load of \(path) did not finish within 60 s, or could not read it")
  }

  /// The case: `include "d/a.cfi"` twice in `a.cfi`, with `d -> .`. Each include is a
  /// cycle (d/a.cfi is a.cfi), reported where it is written.
  @Test("an include cycle through a symlink ends, reported at each include")
  func symlinkCycle() throws {
    let root = try LoaderTests.tree(files: ["a.cfi": "include \"d/a.cfi\"\ninclude \"d/a.cfi\"\n"], links: ["d": "."])
    defer { try? FileManager.default.removeItem(atPath: root) }
    let runbook = try LoaderTests.load(root + "/a.cfi")
    #expect(runbook.files.count == 1)
    let places = runbook.diagnostics.map { diagnostic in
      "\(runbook.file(diagnostic.range.file).lineColumn(of: diagnostic.range.start)) \(diagnostic.message)"
    }
    #expect(places == ["1:9 include cycle: a.cfi -> a.cfi", "2:9 include cycle: a.cfi -> a.cfi"])
  }

  /// A cycle through `..` and a symlinked directory is one too, however the path is spelled.
  @Test("a cycle is found whatever the path: '..', a symlinked directory")
  func cycleThroughOtherSpellings() throws {
    let root = try LoaderTests.tree(
      files: [
        "main.cfi": "include \"lib/b.cfi\"\n", "lib/b.cfi": "include \"../alias/c.cfi\"\n",
        "lib/c.cfi": "include \"../alias/./b.cfi\"\n",
      ], links: ["alias": "lib"])
    defer { try? FileManager.default.removeItem(atPath: root) }
    let runbook = try LoaderTests.load(root + "/main.cfi")
    #expect(runbook.diagnostics.map(\.message) == ["include cycle: b.cfi -> c.cfi -> b.cfi"])
    let cycle = try #require(runbook.diagnostics.first)
    #expect(runbook.file(cycle.range.file).path.hasSuffix("/c.cfi"))
  }

  /// The file read is the one the system opens for the path written: a relative symlink
  /// under an absolute path is followed from where it is, not from the current directory.
  @Test("an include through a relative symlink reads the file it points to")
  func includeThroughSymlink() throws {
    let root = try LoaderTests.tree(
      files: ["main.cfi": "include \"alias/./x.cfi\"\n", "lib/x.cfi": "include \"y.cfi\"\n", "lib/y.cfi": "print \"y\"\n"],
      links: ["alias": "lib"])
    defer { try? FileManager.default.removeItem(atPath: root) }
    let runbook = try LoaderTests.load(root + "/main.cfi")
    #expect(runbook.diagnostics.map(\.message) == [])
    #expect(runbook.files.map(\.path) == ["main.cfi", "alias/x.cfi", "alias/y.cfi"].map { root + "/" + $0 })
  }

  /// Including one file twice is no cycle (a diamond): both copies are read.
  @Test("the same file included twice, not in a cycle, is fine")
  func diamond() throws {
    let runbook = Loader.load(text: Array("include \"x.cfi\"\ninclude \"x.cfi\"\n".utf8), name: "main.cfi") { path in
      guard path.hasSuffix("/x.cfi") else { throw CocoaError(.fileNoSuchFile) }
      return FileContents(bytes: Array("print \"x\"\n".utf8))
    }
    #expect(runbook.diagnostics.isEmpty)
    #expect(runbook.files.count == 3)
  }

  /// No cycle, but each of 20 files includes the next twice: 2^20 parses without a cap. The
  /// include that goes over the cap is named once; nothing after it is read.
  @Test("the number of includes followed is capped")
  func includeCap() throws {
    let reads = Counter()
    let loaded = LoaderTests.finishing(within: 60) {
      Loader.load(text: Array("include \"f1.cfi\"\n".utf8), name: "main.cfi") { path in
        reads.increment()
        let level = Int(path.split(separator: "/").last!.dropFirst().dropLast(4))!
        let next = level < 20 ? "include \"f\(level + 1).cfi\"\n" : ""
        return FileContents(bytes: Array((next + next + "print \"\(level)\"\n").utf8))
      }
    }
    let runbook = try #require(loaded, "the load did not finish within 60 s")
    #expect(runbook.files.count == 1 + Loader.maxIncludedFiles)
    #expect(reads.value == Loader.maxIncludedFiles)
    let messages = runbook.diagnostics.map(\.message)
    #expect(messages.count == 1)
    #expect(messages.first?.hasPrefix("too many included files (more than \(Loader.maxIncludedFiles)): 'f") == true)
    #expect(messages.first?.hasSuffix(".cfi' and the includes after it are not read") == true)
  }

  /// Counts from the reader's closure (which the loader calls on the loading thread only).
  final class Counter: @unchecked Sendable {
    private(set) var value = 0
    func increment() { value += 1 }
  }

  /// 200,000 errors: the first `maxShown` are rendered, then how many more of each severity;
  /// the diagnostics themselves are all kept, so the count the command prints is right.
  @Test("200,000 diagnostics: the first 100 are shown, then the count of the rest")
  func manyDiagnostics() throws {
    let loaded = LoaderTests.finishing(within: 120) { () -> (Int, String) in
      let runbook = Loader.load(text: Array(repeating: Array("\u{1}\n".utf8), count: 200_000).flatMap { $0 }, name: "many.cfi")
      return (runbook.diagnostics.count, DiagnosticRenderer(files: runbook.files).render(runbook.diagnostics))
    }
    let (count, text) = try #require(loaded, "loading and rendering did not finish within 120 s")
    #expect(count == 200_000)
    let lines = text.split(separator: "\n")
    #expect(lines.filter { $0.contains(": error: ") }.count == DiagnosticRenderer.maxShown)
    #expect(lines.last == "and 199900 more errors not shown")
  }

  /// The line after the shown ones counts each severity that was cut.
  @Test("the rest is counted per severity")
  func hiddenCountsPerSeverity() {
    let file = SourceFile(id: FileID(0), path: "x.cfi", text: "abc\n")
    let range = SourceRange(file: FileID(0), start: 0, end: 1)
    let severities: [Diagnostic.Severity] = [.error, .warning, .error, .warning, .warning]
    let diagnostics = severities.map { Diagnostic(.runtime, "m", at: range, severity: $0) }
    let renderer = DiagnosticRenderer(files: [file])
    #expect(renderer.render(diagnostics, limit: 2).hasSuffix("\nand 1 more error, 2 more warnings not shown\n"))
    #expect(!renderer.render(diagnostics, limit: 5).contains("not shown"))
  }
}
