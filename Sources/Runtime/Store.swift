// Store: the server's per-group file trees, `STORE/<group>/…`, laid out relative to the
// client's root. Owns path resolution (nothing may escape a group's tree), opening a path
// once and checking what was opened (`open`, `StoreFile`: what reads and pushes use), and
// reading lists from it. It never writes to a host.

import Foundation

/// An error about a path in the store, worded for the operator.
public struct StoreError: Error, Hashable, Sendable, CustomStringConvertible {
  public var message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}

/// The server's store: one directory per group under `root` (default `/var/lib/cfi`).
public struct Store: Hashable, Sendable {
  /// Where stores live unless told otherwise.
  public static let defaultRoot = "/var/lib/cfi"

  /// The store's root directory, without a trailing slash.
  public let root: String

  /// A store rooted at `root`.
  public init(root: String = Store.defaultRoot) {
    var root = root
    while root.count > 1, root.hasSuffix("/") { root.removeLast() }
    self.root = root
  }

  /// The groups the store knows: its subdirectories with valid group names (`GroupName`), sorted.
  public func groups() -> [String] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
    return entries.filter { name in
      var isDirectory: ObjCBool = false
      return GroupName.isValid(name)
        && FileManager.default.fileExists(atPath: root + "/" + name, isDirectory: &isDirectory)
        && isDirectory.boolValue
    }.sorted()
  }

  /// Whether the store has a tree for `group`.
  public func hasGroup(_ group: String) -> Bool {
    var isDirectory: ObjCBool = false
    return GroupName.isValid(group)
      && FileManager.default.fileExists(atPath: directory(of: group), isDirectory: &isDirectory)
      && isDirectory.boolValue
  }

  /// The directory of a group's tree.
  public func directory(of group: String) -> String { root + "/" + group }

  /// Resolves `path` (relative to the group's tree, as it will be on the client's `/`) to a
  /// file or directory in the store. Refuses absolute paths, `..` components and symlinks
  /// that lead out of the group's tree; requires the path to exist.
  public func resolve(_ path: String, group: String) throws(StoreError) -> String {
    let relative = try Store.normalizedRelativePath(path)
    guard hasGroup(group) else {
      throw StoreError("the store has no group '\(group)' (no directory \(directory(of: group)))")
    }
    let base = directory(of: group)
    let candidate = relative.isEmpty ? base : base + "/" + relative
    guard FileManager.default.fileExists(atPath: candidate) else {
      throw StoreError("'\(path)' is not in the store of group '\(group)' (no \(candidate))")
    }
    let realBase = URL(fileURLWithPath: base).resolvingSymlinksInPath().path
    let realCandidate = URL(fileURLWithPath: candidate).resolvingSymlinksInPath().path
    guard realCandidate == realBase || realCandidate.hasPrefix(realBase + "/") else {
      throw StoreError("'\(path)' leads out of the store of group '\(group)' (it resolves to \(realCandidate))")
    }
    return candidate
  }

  /// Checks the shape of a store path without touching the disk: relative, no `..`, no NUL.
  /// Returns it without `./` components, duplicate or trailing slashes (a trailing slash is
  /// kept when given, since it means "the directory's contents" to rsync).
  public static func normalizedRelativePath(_ path: String) throws(StoreError) -> String {
    guard !path.isEmpty else { throw StoreError("a store path must not be empty") }
    guard !path.hasPrefix("/") else {
      throw StoreError("'\(path)' is absolute; store paths are relative to the group's tree (write it without the leading '/')")
    }
    guard !path.contains("\0") else { throw StoreError("a store path must not contain a NUL byte") }
    let components = path.split(separator: "/", omittingEmptySubsequences: true)
    if components.contains("..") {
      throw StoreError("'\(path)' contains '..'; store paths must stay inside the group's tree")
    }
    let kept = components.filter { $0 != "." }.joined(separator: "/")
    return path.hasSuffix("/") && !kept.isEmpty ? kept + "/" : kept
  }

  /// The directory `fetch` copies hosts' files into: `ROOT/.fetched/HOST/PATH` (not a
  /// group: a group name never starts with `.`).
  public static let fetchedDirectory = ".fetched"

  /// Checks a path on a host as `fetch` takes it: absolute, not `/` itself, no `.` or `..`
  /// component, no NUL. Returns it without duplicate or trailing slashes.
  public static func hostPath(_ path: String) throws(StoreError) -> String {
    guard path.hasPrefix("/") else {
      throw StoreError("'\(path)' is not an absolute path; 'fetch' takes a path on the host, such as \"/\(path)\"")
    }
    guard !path.contains("\0") else { throw StoreError("a path on the host must not contain a NUL byte") }
    let components = path.split(separator: "/", omittingEmptySubsequences: true)
    if let dots = components.first(where: { $0 == ".." || $0 == "." }) {
      throw StoreError("'\(path)' contains '\(dots)'; write the path on the host without it")
    }
    guard !components.isEmpty else { throw StoreError("'fetch' takes a file or directory below '/', not '/' itself") }
    return "/" + components.joined(separator: "/")
  }

  /// The local directory that `fetch` of `path` (checked by `hostPath`) from `host` copies
  /// into: `ROOT/.fetched/HOST/` and the path's parent, ending in `/`. A relative root is
  /// written `./ROOT`, so that rsync never reads a `:` in it as a host.
  public func fetched(_ path: String, from host: HostName) -> String {
    let parent = path.split(separator: "/").dropLast().map { "/" + $0 }.joined()
    let root = root.hasPrefix("/") ? root : "./" + root
    return "\(root)/\(Store.fetchedDirectory)/\(host.rawValue)\(parent)/"
  }

  /// Reads a list file from a group's tree: one item per line, blank lines and `#` comments
  /// (whole-line or after whitespace) dropped, surrounding whitespace trimmed.
  public func lines(_ path: String, group: String) throws(StoreError) -> [String] {
    Store.listItems(try text(path, group: group))
  }

  /// The text of a file of a group's tree, read from the file that was checked (`open`).
  public func text(_ path: String, group: String) throws(StoreError) -> String {
    try open(path, group: group).text()
  }

  /// Opens a file (or, with `directories`, a directory) of a group's tree once and checks
  /// what was opened: a regular file or a directory whose real path, read from the open
  /// descriptor, is inside the group's tree. Everything that reads or sends it afterwards
  /// goes through the descriptor. Why: where the store is writable by others than root, a
  /// path checked and then opened again (by us, or by rsync after an ssh handshake) could be
  /// swapped for a link to any file of the server in between.
  public func open(_ path: String, group: String, directories: Bool = false) throws(StoreError) -> StoreFile {
    let file = try resolve(path, group: group)
    // O_NONBLOCK: a FIFO in the store must be refused below, not hang the open.
    let fd = Glibc.open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
    guard fd >= 0 else { throw StoreError("cannot read '\(file)': \(String(cString: strerror(errno)))") }
    var status = stat()
    guard fstat(fd, &status) == 0 else {
      close(fd)
      throw StoreError("cannot read '\(file)': \(String(cString: strerror(errno)))")
    }
    let opened = StoreFile(descriptor: fd, path: file, status: status)
    let kind = status.st_mode & S_IFMT
    guard kind == S_IFREG || (directories && kind == S_IFDIR) else {
      throw StoreError("'\(file)' is not a regular file" + (directories ? " or a directory" : ""))
    }
    let real = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)")) ?? ""
    let tree = URL(fileURLWithPath: directory(of: group)).resolvingSymlinksInPath().path
    guard real.hasPrefix(tree + "/") || (opened.isDirectory && real == tree) else {
      throw StoreError("'\(path)' leads out of the store of group '\(group)' (it opened \(real))")
    }
    return opened
  }

  /// The items of a list text (see `lines(_:group:)`).
  public static func listItems(_ text: String) -> [String] {
    text.split(whereSeparator: \.isNewline).compactMap { line in
      var item = Substring(line)
      if let hash = item.firstIndex(of: "#"),
        hash == item.startIndex || item[item.index(before: hash)].isWhitespace
      {
        item = item[..<hash]
      }
      let trimmed = item.trimmingCharacters(in: .whitespaces)
      return trimmed.isEmpty ? nil : trimmed
    }
  }
}

/// A file or directory of a group's tree as `Store.open` opened and checked it. Its
/// descriptor is closed when the last reference goes (a step's prepared action, the push
/// that sends it): nothing reopens it by its path.
public final class StoreFile: Sendable {
  /// Open, close-on-exec: a child gets it only where a transport hands it over explicitly.
  public let descriptor: Int32
  /// The path it was opened by, for messages.
  public let path: String
  public let isDirectory: Bool
  /// Its permission bits, as the descriptor says.
  public let permissions: mode_t
  /// Its modification time, as the descriptor says (a copy keeps it, so rsync's quick check
  /// still sees an unchanged file as unchanged).
  public let modified: timespec

  init(descriptor: Int32, path: String, status: stat) {
    self.descriptor = descriptor
    self.path = path
    self.isDirectory = status.st_mode & S_IFMT == S_IFDIR
    self.permissions = status.st_mode & 0o7777
    self.modified = status.st_mtim
  }

  deinit { close(descriptor) }

  /// The whole file as UTF-8 text, read from the descriptor (from its start, whoever read it before).
  public func text() throws(StoreError) -> String {
    guard !isDirectory else { throw StoreError("'\(path)' is not a regular file") }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
      let offset = off_t(bytes.count)
      let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, offset) }
      if count < 0, errno == EINTR { continue }
      guard count >= 0 else { throw StoreError("cannot read '\(path)': \(String(cString: strerror(errno)))") }
      if count == 0 { break }
      bytes += buffer[..<count]
    }
    guard let text = String(validating: bytes, as: UTF8.self) else { throw StoreError("'\(path)' is not UTF-8 text") }
    return text
  }
}
