// Loading a runbook: reading files, parsing them, and following `include`s (relative to the
// including file), with cycle detection and a depth limit.

import Foundation

/// A loaded runbook: its files, its tree and everything wrong with it.
public struct LoadedRunbook: Sendable {
  /// Every file read, indexed by `FileID.rawValue`.
  public var files: [SourceFile]
  /// The main program (includes are spliced into their statements).
  public var program: Program
  /// Syntax and include diagnostics, in file and position order.
  public var diagnostics: [Diagnostic]

  public init(files: [SourceFile], program: Program, diagnostics: [Diagnostic]) {
    self.files = files
    self.program = program
    self.diagnostics = diagnostics
  }

  /// The file a range is in.
  public func file(_ id: FileID) -> SourceFile { files[id.rawValue] }

  /// Whether any diagnostic is an error.
  public var hasErrors: Bool { diagnostics.contains { $0.severity == .error } }
}

/// Reads runbook files and parses them with their includes. One loader serves one load.
public final class Loader {
  /// How deep includes may nest; why: a chain longer than this is surely a mistake, and
  /// each level costs a parse on the stack.
  public static let maxIncludeDepth = 32

  /// Reads a file's bytes; replaceable for tests.
  public typealias ReadFile = (_ path: String) throws -> [UInt8]

  private let readFile: ReadFile
  private var files: [SourceFile] = []
  private var diagnostics: [Diagnostic] = []
  /// Canonical paths of the files being parsed, innermost last (for cycles).
  private var stack: [String] = []

  /// A loader reading from the file system (or through `readFile`).
  private init(readFile: @escaping ReadFile) {
    self.readFile = readFile
  }

  /// Reads a file from disk.
  public static func readFromDisk(_ path: String) throws -> [UInt8] {
    Array(try Data(contentsOf: URL(fileURLWithPath: path)))
  }

  /// Loads and parses the runbook at `path`. A file that cannot be read is reported by the
  /// caller (it has no position to point at): this throws the reading error.
  public static func load(path: String, readFile: @escaping ReadFile = Loader.readFromDisk) throws -> LoadedRunbook {
    let loader = Loader(readFile: readFile)
    let bytes = try readFile(path)
    return loader.finish(loader.parse(path: path, bytes: bytes))
  }

  /// Parses `text` given directly (`-c`, stdin, a REPL line) under the display name `name`;
  /// includes are relative to the current directory. `earlier` are files loaded before (a
  /// REPL session's): the new files are numbered after them and the result lists them all,
  /// so that ranges from every entry of a session index one table.
  public static func load(
    text: [UInt8], name: String, after earlier: [SourceFile] = [], readFile: @escaping ReadFile = Loader.readFromDisk
  ) -> LoadedRunbook {
    let loader = Loader(readFile: readFile)
    loader.files = earlier
    return loader.finish(loader.parse(path: name, bytes: text))
  }

  private func finish(_ program: Program) -> LoadedRunbook {
    LoadedRunbook(files: files, program: program, diagnostics: diagnostics.sorted { $0.range < $1.range })
  }

  private func parse(path: String, bytes: [UInt8]) -> Program {
    let source = SourceFile(id: FileID(files.count), path: path, bytes: bytes)
    files.append(source)
    stack.append(Loader.canonical(path))
    defer { stack.removeLast() }
    let (program, parseDiagnostics) = Parser.parse(source) { [unowned self] includePath, range in
      self.include(includePath, from: source, at: range)
    }
    diagnostics += parseDiagnostics
    return program
  }

  private func include(_ path: String, from source: SourceFile, at range: SourceRange) -> Program? {
    let resolved = path.hasPrefix("/") ? path : source.directory + "/" + path
    let canonical = Loader.canonical(resolved)
    if let cycleStart = stack.firstIndex(of: canonical) {
      let chain = (stack[cycleStart...] + [canonical]).map { ($0 as NSString).lastPathComponent }
      diagnostics.append(Diagnostic(.include, "include cycle: \(chain.joined(separator: " -> "))", at: range))
      return nil
    }
    guard stack.count < Loader.maxIncludeDepth else {
      diagnostics.append(Diagnostic(.include, "includes nest too deeply (more than \(Loader.maxIncludeDepth) levels)", at: range))
      return nil
    }
    let bytes: [UInt8]
    do { bytes = try readFile(resolved) } catch {
      diagnostics.append(Diagnostic(.include, "cannot read included file '\(Loader.displayPath(resolved))': \(Loader.reason(error))", at: range))
      return nil
    }
    return parse(path: Loader.displayPath(resolved), bytes: bytes)
  }

  /// The path with `.`/`..` resolved, for cycle detection.
  static func canonical(_ path: String) -> String {
    URL(fileURLWithPath: path).standardizedFileURL.path
  }

  /// A shorter display path: `./x/../y.cfi` → `y.cfi`.
  static func displayPath(_ path: String) -> String {
    let standardized = (path as NSString).standardizingPath
    return standardized.hasPrefix("./") ? String(standardized.dropFirst(2)) : standardized
  }

  /// A short reason for a file error ("No such file or directory").
  public static func reason(_ error: any Error) -> String {
    let nsError = error as NSError
    if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
      return String(cString: strerror(Int32(underlying.code)))
    }
    if nsError.domain == NSCocoaErrorDomain, nsError.code == NSFileReadNoSuchFileError {
      return "No such file or directory"
    }
    return nsError.localizedDescription
  }
}
