// Reading a small local text file (client lists, dsh groups) with the system's own reason
// when it fails ("No such file or directory", "Permission denied"), for messages that say
// what to fix.

import Foundation

/// A local file that could not be read, and why, in strerror(3)'s words.
public struct TextFileError: Error, Sendable, CustomStringConvertible {
  public var path: String
  public var reason: String
  public var description: String { reason }

  /// A Foundation error's reason in strerror(3)'s words where it carries an errno.
  static func reason(of error: any Error) -> String {
    let nsError = error as NSError
    if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
      return String(cString: strerror(Int32(underlying.code)))
    }
    return nsError.localizedDescription
  }
}

public enum TextFile {
  /// The largest file read whole; why: these files name hosts, a few hundred kilobytes at most.
  static let limit = 16 << 20

  /// The file's text (invalid UTF-8 repaired).
  public static func read(_ path: String) throws(TextFileError) -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw TextFileError(path: path, reason: String(cString: strerror(errno))) }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
      let count = buffer.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress, $0.count) }
      if count < 0 {
        if errno == EINTR { continue }
        throw TextFileError(path: path, reason: String(cString: strerror(errno)))
      }
      if count == 0 { break }
      bytes += buffer[..<count]
      if bytes.count > limit { throw TextFileError(path: path, reason: "larger than \(limit >> 20) MiB") }
    }
    return String(decoding: bytes, as: UTF8.self)
  }
}
