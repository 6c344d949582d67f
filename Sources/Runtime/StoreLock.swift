// One lock per store, so that two runs (two cron jobs) never work on the store's hosts at once.

import Foundation

/// An exclusive `flock` on `STORE/.cfi/lock`, held for a run. The kernel drops it if the
/// process dies, so a crashed run never leaves a stale lock.
public final class StoreLock: Sendable {
  private let descriptor: Int32
  public let path: String

  /// Why a lock could not be had.
  public enum Failure: Error, Sendable {
    /// Another process holds it (`pid` when it wrote one).
    case busy(pid: String?)
    case cannotOpen(String)
  }

  /// Takes the lock; with `wait`, blocks until it is free (calling `waiting` once first).
  public init(store: Store, wait: Bool, waiting: (String?) -> Void = { _ in }) throws(Failure) {
    path = store.root + "/.cfi/lock"
    try? FileManager.default.createDirectory(atPath: store.root + "/.cfi", withIntermediateDirectories: true)
    // Never through a symlink, and only a regular file: the lock file is truncated and
    // written as root, and a store's directory may be writable by others than root.
    let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0o644)
    guard fd >= 0 else {
      let reason = errno == ELOOP ? "it is a symbolic link" : String(cString: strerror(errno))
      throw .cannotOpen("cannot open lock file \(path): \(reason)")
    }
    var status = stat()
    guard fstat(fd, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else {
      close(fd)
      throw .cannotOpen("cannot open lock file \(path): it is not a regular file")
    }
    if flock(fd, LOCK_EX | LOCK_NB) != 0 {
      let holder = StoreLock.holder(fd)
      guard wait else {
        close(fd)
        throw .busy(pid: holder)
      }
      waiting(holder)
      while flock(fd, LOCK_EX) != 0 && errno == EINTR {}
    }
    // Record who holds it, for the message another run prints.
    _ = ftruncate(fd, 0)
    let pid = "\(getpid())\n"
    _ = pid.withCString { pwrite(fd, $0, strlen($0), 0) }
    descriptor = fd
  }

  private static func holder(_ fd: Int32) -> String? {
    var buffer = [UInt8](repeating: 0, count: 32)
    let count = pread(fd, &buffer, 31, 0)
    guard count > 0 else { return nil }
    return String(decoding: buffer[..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
  }

  deinit {
    flock(descriptor, LOCK_UN)
    close(descriptor)
  }
}
