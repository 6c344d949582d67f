// StoreRead: files of a push's checked source read on this machine, for what a diff compares
// a host's files with. Read through the descriptor that was checked (`PushSource`), each
// path below it opened component by component without following links, as rsync sends them;
// never the store path again.

import Foundation

/// Files of a push's source to read here, each at most `limit` bytes.
public struct StoreRead: Hashable, Sendable, CustomStringConvertible {
  public var source: LocalSource
  /// Paths relative to the source directory; `""` for a file source itself.
  public var paths: [String]
  /// A longer file is only measured.
  public var limit: Int

  public init(source: LocalSource, paths: [String], limit: Int) {
    self.source = source
    self.paths = paths
    self.limit = limit
  }

  public var description: String {
    "read here: " + paths.map(source.shown).joined(separator: ", ") + " (at most \(limit) bytes each)"
  }
}

extension LocalSource {
  /// `path` below the source as the operator knows it (`""`: the source itself).
  func shown(_ path: String) -> String {
    guard !path.isEmpty else { return source.shown }
    // pkgsync's lists are shown as `…/etc/pkgsync/{musthave,mayhave,maynothave}`.
    let shown = source.shown
    return (shown.hasSuffix("/") ? shown : (shown as NSString).deletingLastPathComponent + "/") + path
  }
}

/// What a file of the store holds (`StoreRead`).
public enum StoreContent: Hashable, Sendable {
  /// The whole file (at most the read's limit) and its permission bits.
  case file([UInt8], mode: UInt16)
  /// A file over the limit: its size and permission bits.
  case large(size: Int, mode: UInt16)
  /// Not a regular file that could be read (a link, a directory, gone), and why.
  case unreadable(String)
}

extension StoreRead {
  /// Reads the files, in order.
  public func perform() -> [StoreContent] {
    paths.map { read($0) }
  }

  private func read(_ path: String) -> StoreContent {
    guard let held = source.source.held else { return .unreadable("not a store file") }
    var descriptor: Int32
    if let file = held.file {
      descriptor = dup(file.descriptor)
    } else {
      // A private copy (pkgsync's lists): the directory only root can change.
      descriptor = open(source.source.argument, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    }
    var components = path.split(separator: "/").map(String.init)
    while let component = components.first, descriptor >= 0 {
      components.removeFirst()
      let flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | (components.isEmpty ? 0 : O_DIRECTORY)
      let next = openat(descriptor, component, flags)
      close(descriptor)
      descriptor = next
    }
    guard descriptor >= 0 else { return .unreadable(String(cString: strerror(errno))) }
    defer { close(descriptor) }
    var status = stat()
    guard fstat(descriptor, &status) == 0 else { return .unreadable(String(cString: strerror(errno))) }
    guard status.st_mode & S_IFMT == S_IFREG else { return .unreadable("not a regular file") }
    let mode = UInt16(status.st_mode & 0o7777)
    let size = Int(status.st_size)
    if size > limit { return .large(size: size, mode: mode) }
    // From the start whoever read before (the descriptor's offset is rsync's too).
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while bytes.count <= limit {
      let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, off_t(bytes.count)) }
      if count < 0 { return .unreadable(String(cString: strerror(errno))) }
      if count == 0 { break }
      bytes += buffer.prefix(count)
    }
    return bytes.count > limit ? .large(size: bytes.count, mode: mode) : .file(bytes, mode: mode)
  }
}
