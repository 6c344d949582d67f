// One lock per store, so that two runs (two cron jobs) never work on the store's hosts at once.

import Foundation

/// An exclusive `flock` on `STORE/.cfi/lock`, held for a run. The kernel drops it if the
/// process dies, so a crashed run never leaves a stale lock. The file names its holder (pid,
/// and when it took the lock) for the message another run prints.
public final class StoreLock: Sendable {
  private let file: LockFile
  public var path: String { file.path }

  /// Who holds the lock, as the lock file says.
  public struct Holder: Hashable, Sendable, CustomStringConvertible {
    public var pid: String
    /// When it took the lock (ISO 8601, UTC), when it wrote that.
    public var since: String?

    public init(pid: String, since: String? = nil) {
      self.pid = pid
      self.since = since
    }

    /// `pid 4242, started 2026-12-06T04:50:00Z`.
    public var description: String { "pid \(pid)" + (since.map { ", started \($0)" } ?? "") }
  }

  /// Why a lock could not be had.
  public enum Failure: Error, Sendable {
    /// Another process holds it (the holder, when its file names one).
    case busy(Holder?)
    case cannotOpen(String)
  }

  /// Takes the lock; with `wait`, blocks until it is free (calling `waiting` once first).
  public init(store: Store, wait: Bool, waiting: (Holder?) -> Void = { _ in }) throws(Failure) {
    let path = StoreLock.path(store)
    try? FileManager.default.createDirectory(atPath: store.root + "/.cfi", withIntermediateDirectories: true)
    do {
      file = try LockFile(path: path, wait: wait) { fd in waiting(StoreLock.holder(fd)) }
    } catch {
      switch error {
      case .busy: throw .busy(StoreLock.holder(path: path))
      case .cannotOpen(let message): throw .cannotOpen(message)
      }
    }
    // Record who holds it, for the message another run prints.
    _ = ftruncate(file.descriptor, 0)
    let record = "\(getpid())\n\(ISO8601DateFormatter().string(from: Date()))\n"
    _ = record.withCString { pwrite(file.descriptor, $0, strlen($0), 0) }
  }

  /// Takes the lock, waiting at most `limit` for it (nil: as long as it takes) and calling
  /// `waiting` once first; when the time is up (or the task is cancelled) it throws `busy`
  /// with the holder. It tries again every 100 ms instead of blocking in flock: a blocking
  /// flock can be given up on neither at a deadline nor for a cancellation.
  public static func take(store: Store, waitingAtMost limit: Duration?, waiting: (Holder?) -> Void) async throws(Failure)
    -> StoreLock
  {
    let clock = ContinuousClock()
    let deadline = limit.map { clock.now + $0 }
    var told = false
    while true {
      do throws(Failure) {
        return try StoreLock(store: store, wait: false)
      } catch {
        guard case .busy(let holder) = error else { throw error }
        if let deadline, clock.now >= deadline { throw error }
        if Task.isCancelled { throw error }
        if !told {
          waiting(holder)
          told = true
        }
        try? await Task.sleep(for: .milliseconds(100))
      }
    }
  }

  private static func path(_ store: Store) -> String { store.root + "/.cfi/lock" }

  /// The holder as the file at `path` names it, read without the lock.
  private static func holder(path: String) -> Holder? {
    let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
    defer { if fd >= 0 { close(fd) } }
    return fd >= 0 ? holder(fd) : nil
  }

  /// The holder the lock file names: its pid on the first line, the time it took the lock on
  /// the second (a run of an older cfi-sh wrote only the pid).
  private static func holder(_ fd: Int32) -> Holder? {
    var buffer = [UInt8](repeating: 0, count: 96)
    let count = pread(fd, &buffer, 95, 0)
    guard count > 0 else { return nil }
    let lines = String(decoding: buffer[..<count], as: UTF8.self).split(separator: "\n")
      .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    guard let pid = lines.first else { return nil }
    return Holder(pid: pid, since: lines.dropFirst().first)
  }
}
