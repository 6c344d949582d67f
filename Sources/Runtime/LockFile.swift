// An exclusive `flock` on a file of the store's `.cfi/`: the one way cfi-sh opens a lock file.
// The kernel drops the lock when the process dies, so a crash never leaves a stale one.

import Foundation

/// A held lock on the file at `path`; released by `unlock()` or when the value goes away.
final class LockFile: Sendable {
  let descriptor: Int32
  let path: String

  /// Why a lock could not be had.
  enum Failure: Error, Sendable, CustomStringConvertible {
    /// Another process holds it (only when not waiting).
    case busy
    case cannotOpen(String)

    var description: String {
      switch self {
      case .busy: "the lock is held by another process"
      case .cannotOpen(let message): message
      }
    }
  }

  /// Takes the lock; with `wait`, blocks until it is free (calling `waiting` once first).
  init(path: String, wait: Bool = true, waiting: (Int32) -> Void = { _ in }) throws(Failure) {
    // Never through a symlink, and only a regular file: lock files are written as root, and
    // a store's directory may be writable by others than root.
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
      guard wait else {
        close(fd)
        throw .busy
      }
      waiting(fd)
      while flock(fd, LOCK_EX) != 0 && errno == EINTR {}
    }
    descriptor = fd
    self.path = path
  }

  /// Releases the lock now (closing the file releases it too).
  func unlock() {
    flock(descriptor, LOCK_UN)
  }

  deinit {
    // Unlocked before closing: a process spawned meanwhile shares the open file description
    // until it execs, and the lock belongs to the description, not to our descriptor.
    flock(descriptor, LOCK_UN)
    close(descriptor)
  }
}
