// Loading a runbook: reading files, parsing them, and following `include`s (relative to the
// including file), with cycle detection, a depth limit and a cap on the files included.
// Files are told apart by what they are on disk (device and inode of the opened file), not by
// the path written: through a symlink (`d -> .`) one file has endless names.

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

/// What makes two paths the same file, for include cycles.
public struct FileIdentity: Hashable, Sendable {
  private enum Kind: Hashable, Sendable {
    case inode(device: UInt64, inode: UInt64)
    case name(String)
  }

  private let kind: Kind

  /// A file on disk: every path to it (symlinks, `..`, hard links) has this identity.
  public init(device: UInt64, inode: UInt64) { kind = .inode(device: device, inode: inode) }

  /// A text that is not a file on disk (`-c`, stdin, a REPL entry, a test's file), known by
  /// its name with `.` and `..` resolved.
  public init(name: String) { kind = .name(Loader.canonical(name)) }
}

/// A file's bytes as read, and which file they came from.
public struct FileContents: Sendable {
  public var bytes: [UInt8]
  /// Which file was read; nil identifies it by the path it was read from (`FileIdentity(name:)`),
  /// which is enough for readers without symlinks (tests, benchmarks).
  public var identity: FileIdentity?

  public init(bytes: [UInt8], identity: FileIdentity? = nil) {
    self.bytes = bytes
    self.identity = identity
  }
}

/// Reads runbook files and parses them with their includes. One loader serves one load.
public final class Loader {
  /// How deep includes may nest; why: a chain longer than this is surely a mistake, and
  /// each level costs a parse on the stack.
  public static let maxIncludeDepth = 32

  /// How many includes one load follows; why: without cycles, a file that includes the next
  /// one twice, 32 levels deep, is still 2^32 parses.
  public static let maxIncludedFiles = 1_000

  /// Reads a file; replaceable for tests.
  public typealias ReadFile = (_ path: String) throws -> FileContents

  private let readFile: ReadFile
  private var files: [SourceFile] = []
  private var diagnostics: [Diagnostic] = []
  /// The files being parsed, innermost last (for cycles), with the names shown for them.
  private var stack: [(identity: FileIdentity, name: String)] = []
  /// Includes followed so far in this load.
  private var included = 0

  /// A loader reading from the file system (or through `readFile`).
  private init(readFile: @escaping ReadFile) {
    self.readFile = readFile
  }

  /// Reads a file from disk.
  public static func readFromDisk(_ path: String) throws -> [UInt8] {
    try openFromDisk(path).bytes
  }

  /// Reads a file from disk with its identity, both from the one open file (so that a file
  /// replaced between two looks cannot pass for another).
  public static func openFromDisk(_ path: String) throws -> FileContents {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    defer { close(descriptor) }
    var status = stat()
    guard fstat(descriptor, &status) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65_536)
    while true {
      let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
      if count == 0 { break }
      if count < 0 {
        if errno == EINTR { continue }
        throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
      }
      bytes += chunk[..<count]
    }
    return FileContents(
      bytes: bytes, identity: FileIdentity(device: UInt64(status.st_dev), inode: UInt64(status.st_ino)))
  }

  /// Loads and parses the runbook at `path`. A file that cannot be read is reported by the
  /// caller (it has no position to point at): this throws the reading error.
  public static func load(path: String, readFile: @escaping ReadFile = Loader.openFromDisk) throws -> LoadedRunbook {
    let loader = Loader(readFile: readFile)
    let contents = try readFile(path)
    return loader.finish(
      loader.parse(path: path, bytes: contents.bytes, identity: contents.identity ?? FileIdentity(name: path)))
  }

  /// Parses `text` given directly (`-c`, stdin, a REPL line) under the display name `name`;
  /// includes are relative to the current directory. `earlier` are files loaded before (a
  /// REPL session's): the new files are numbered after them and the result lists them all,
  /// so that ranges from every entry of a session index one table.
  public static func load(
    text: [UInt8], name: String, after earlier: [SourceFile] = [], readFile: @escaping ReadFile = Loader.openFromDisk
  ) -> LoadedRunbook {
    let loader = Loader(readFile: readFile)
    loader.files = earlier
    return loader.finish(loader.parse(path: name, bytes: text, identity: FileIdentity(name: name)))
  }

  private func finish(_ program: Program) -> LoadedRunbook {
    LoadedRunbook(files: files, program: program, diagnostics: diagnostics.sorted { $0.range < $1.range })
  }

  private func parse(path: String, bytes: [UInt8], identity: FileIdentity) -> Program {
    let source = SourceFile(id: FileID(files.count), path: path, bytes: bytes)
    files.append(source)
    stack.append((identity, path))
    defer { stack.removeLast() }
    let (program, parseDiagnostics) = Parser.parse(source) { [unowned self] includePath, range in
      self.include(includePath, from: source, at: range)
    }
    diagnostics += parseDiagnostics
    return program
  }

  private func include(_ path: String, from source: SourceFile, at range: SourceRange) -> Program? {
    let resolved = path.hasPrefix("/") ? path : source.directory + "/" + path
    let name = Loader.displayPath(resolved)
    guard included < Loader.maxIncludedFiles else {
      // Said once, at the include that went over: the ones after it are skipped the same way.
      if included == Loader.maxIncludedFiles {
        let message = "too many included files (more than \(Loader.maxIncludedFiles)): '\(name)' and the includes after it are not read"
        diagnostics.append(Diagnostic(.include, message, at: range))
        included += 1
      }
      return nil
    }
    let contents: FileContents
    do { contents = try readFile(resolved) } catch {
      diagnostics.append(Diagnostic(.include, "cannot read included file '\(name)': \(Loader.reason(error))", at: range))
      return nil
    }
    let identity = contents.identity ?? FileIdentity(name: resolved)
    if let cycleStart = stack.firstIndex(where: { $0.identity == identity }) {
      let chain = (stack[cycleStart...].map(\.name) + [name]).map { ($0 as NSString).lastPathComponent }
      diagnostics.append(Diagnostic(.include, "include cycle: \(chain.joined(separator: " -> "))", at: range))
      return nil
    }
    guard stack.count < Loader.maxIncludeDepth else {
      diagnostics.append(Diagnostic(.include, "includes nest too deeply (more than \(Loader.maxIncludeDepth) levels)", at: range))
      return nil
    }
    included += 1
    return parse(path: name, bytes: contents.bytes, identity: identity)
  }

  /// The path with `.`/`..` resolved (not symlinks), naming a text that is not a file on disk.
  static func canonical(_ path: String) -> String {
    URL(fileURLWithPath: path).standardizedFileURL.path
  }

  /// A shorter display path that still opens the same file: `./x/./y.cfi` → `x/y.cfi`.
  /// `..` stays: after a symlink it is not the directory written before it. (Foundation's
  /// `standardizingPath` is no help: on Linux it resolves a relative symlink against the
  /// current directory, so `/srv/d/a.cfi` with `d -> .` came out as `$PWD/a.cfi`.)
  public static func displayPath(_ path: String) -> String {
    let components = path.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
    let joined = components.joined(separator: "/")
    if path.hasPrefix("/") { return "/" + joined }
    return joined.isEmpty ? "." : joined
  }

  /// A short reason for a file error ("No such file or directory").
  public static func reason(_ error: any Error) -> String {
    if let posix = error as? POSIXError { return String(cString: strerror(posix.code.rawValue)) }
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
