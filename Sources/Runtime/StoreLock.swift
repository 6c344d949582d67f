// One lock per store, so that two runs (two cron jobs) never work on the store's hosts at once.

import Foundation

/// An exclusive `flock` on `STORE/.cfi/lock`, held for a run. The kernel drops it if the
/// process dies, so a crashed run never leaves a stale lock.
public final class StoreLock: Sendable {
  private let file: LockFile
  public var path: String { file.path }

  /// Why a lock could not be had.
  public enum Failure: Error, Sendable {
    /// Another process holds it (`pid` when it wrote one).
    case busy(pid: String?)
    case cannotOpen(String)
  }

  /// Takes the lock; with `wait`, blocks until it is free (calling `waiting` once first).
  public init(store: Store, wait: Bool, waiting: (String?) -> Void = { _ in }) throws(Failure) {
    let path = store.root + "/.cfi/lock"
    try? FileManager.default.createDirectory(atPath: store.root + "/.cfi", withIntermediateDirectories: true)
    do {
      file = try LockFile(path: path, wait: wait) { fd in waiting(StoreLock.holder(fd)) }
    } catch {
      switch error {
      case .busy:
        // Who holds it, for the message: read without the lock (it only names a pid).
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        defer { if fd >= 0 { close(fd) } }
        throw .busy(pid: fd >= 0 ? StoreLock.holder(fd) : nil)
      case .cannotOpen(let message): throw .cannotOpen(message)
      }
    }
    // Record who holds it, for the message another run prints.
    _ = ftruncate(file.descriptor, 0)
    let pid = "\(getpid())\n"
    _ = pid.withCString { pwrite(file.descriptor, $0, strlen($0), 0) }
  }

  private static func holder(_ fd: Int32) -> String? {
    var buffer = [UInt8](repeating: 0, count: 32)
    let count = pread(fd, &buffer, 31, 0)
    guard count > 0 else { return nil }
    return String(decoding: buffer[..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
  }
}
