// Another process's write holding a state database: a test takes the write lock, does what
// must meet it (and wait out the busy timeout), and releases it.

import Foundation
import GRDB
import Synchronization

/// The write lock of the database at `path`, held by another connection between `lock` and
/// `unlock`.
final class DatabaseWriteLock: Sendable {
  let path: String
  private let release = DispatchSemaphore(value: 0)
  private let done = DispatchSemaphore(value: 0)
  private let held = Mutex(false)

  init(path: String) { self.path = path }

  /// Takes the lock; returns once it is held.
  func lock() throws {
    let holder = try DatabaseQueue(path: path)
    let locked = DispatchSemaphore(value: 0)
    DispatchQueue.global().async { [release, done] in
      try? holder.inDatabase { db in
        try db.execute(sql: "BEGIN IMMEDIATE")
        locked.signal()
        release.wait()
        try db.execute(sql: "ROLLBACK")
      }
      done.signal()
    }
    locked.wait()
    held.withLock { $0 = true }
  }

  /// Releases the lock (if it was taken); returns once it is released.
  func unlock() {
    guard held.withLock({ held in defer { held = false }; return held }) else { return }
    release.signal()
    done.wait()
  }
}
