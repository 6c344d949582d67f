// Where a run keeps its ssh control sockets: a directory of its own, named with its pid, in
// the runtime directory of its user — /run/cfi for root, $XDG_RUNTIME_DIR/cfi for others
// (tmpfs, private to the user, emptied at boot) — and under $TMPDIR or /tmp only when neither
// can be used. `CFI_RUNTIME_DIR` names the place instead (tests point it into their own
// directory). A run removes its directory at its end; one that was killed cannot, so every
// run that connects first removes those its user left behind with a dead pid, telling any
// master still listening in them to exit.

import Foundation

/// The place of a run's control directories and the shape of their names.
struct ControlDirectory: Equatable, Sendable {
  /// The directory that holds the runs' directories.
  var base: String
  /// What each run's directory name starts with, before its pid (`ssh-` in a directory of
  /// cfi's own, `cfi-ssh-` in a shared one such as /tmp).
  var prefix: String

  /// The longest control directory path: a control socket is this directory, a host name,
  /// and the 17 characters ssh adds while it creates the socket, and sun_path holds 108 bytes.
  static let maxPathLength = 63

  /// Where this process's control directories go, best first, for a user `uid` in `environment`.
  static func candidates(environment: [String: String], uid: uid_t) -> [ControlDirectory] {
    if let given = environment["CFI_RUNTIME_DIR"], given.hasPrefix("/") {
      return [ControlDirectory(base: trimmed(given), prefix: "ssh-")]
    }
    var places: [ControlDirectory] = []
    if uid == 0 {
      places.append(ControlDirectory(base: "/run/cfi", prefix: "ssh-"))
    } else if let runtime = environment["XDG_RUNTIME_DIR"], runtime.hasPrefix("/") {
      places.append(ControlDirectory(base: trimmed(runtime) + "/cfi", prefix: "ssh-"))
    }
    var temporary = environment["TMPDIR"] ?? "/tmp"
    if !temporary.hasPrefix("/") { temporary = "/tmp" }
    places.append(ControlDirectory(base: trimmed(temporary), prefix: "cfi-ssh-"))
    if places.last?.base != "/tmp" { places.append(ControlDirectory(base: "/tmp", prefix: "cfi-ssh-")) }
    return places.filter { $0.fits }
  }

  private static func trimmed(_ path: String) -> String {
    var path = path
    while path.count > 1, path.hasSuffix("/") { path.removeLast() }
    return path
  }

  /// Whether a run's directory here stays short enough for its sockets, whatever its pid.
  var fits: Bool { (base + "/" + prefix + "4194304-XXXXXX").utf8.count <= Self.maxPathLength }

  /// Whether `base` is a directory of cfi's own (not a shared one like /tmp, which is never
  /// created or changed).
  private var isOwn: Bool { prefix == "ssh-" }

  /// Makes a new directory for the run of process `pid` (mode 0700), after removing the
  /// stale ones of this user; nil when the base cannot be used (not there and not creatable,
  /// not a directory, or a directory of cfi's own that another user owns or may write).
  func make(pid: pid_t = getpid(), uid: uid_t = getuid()) -> String? {
    if isOwn {
      if mkdir(base, 0o700) != 0 && errno != EEXIST { return nil }
      var status = stat()
      guard lstat(base, &status) == 0, (status.st_mode & S_IFMT) == S_IFDIR, status.st_uid == uid,
        status.st_mode & 0o022 == 0
      else { return nil }
    }
    removeStale(uid: uid, except: pid)
    var template = Array((base + "/" + prefix + "\(pid)-XXXXXX").utf8CString)
    return template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }.map { String(cString: $0) }
  }

  /// The pid in the name of a run's directory here, if `name` is one.
  func pid(of name: String) -> pid_t? {
    guard name.hasPrefix(prefix) else { return nil }
    let rest = name.dropFirst(prefix.count)
    guard let dash = rest.firstIndex(of: "-"), rest[rest.index(after: dash)...].count == 6 else { return nil }
    return pid_t(rest[..<dash])
  }

  /// Removes the directories here of runs of `uid` whose process is gone (`alive` says
  /// whether a pid is), except those of `except` (this process: its directories are its own
  /// to remove), after telling each master still listening in them to exit. Returns their paths.
  @discardableResult
  func removeStale(
    uid: uid_t = getuid(), except: pid_t = getpid(), alive: (pid_t) -> Bool = ControlDirectory.isAlive
  ) -> [String] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []
    var removed: [String] = []
    for name in names.sorted() {
      guard let pid = pid(of: name), pid != except else { continue }
      let path = base + "/" + name
      var status = stat()
      guard lstat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFDIR, status.st_uid == uid, !alive(pid) else {
        continue
      }
      // A master outlives its run (ControlPersist); left running, it would keep a connection
      // open that nothing can reach once its socket is gone.
      _ = MuxControl.terminate(paths: ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).map { path + "/" + $0 })
      if Self.remove(path) { removed.append(path) }
    }
    return removed
  }

  /// Removes a control directory and its sockets; true if it is gone. Not FileManager's
  /// removeItem: a master told to exit removes its own socket meanwhile, and removeItem gives
  /// up on the entry that vanished under it, leaving the directory.
  @discardableResult
  static func remove(_ path: String) -> Bool {
    for name in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] {
      unlink(path + "/" + name)
    }
    return rmdir(path) == 0 || errno == ENOENT
  }

  /// Whether process `pid` exists (one of another user counts: it cannot be told apart here).
  static func isAlive(_ pid: pid_t) -> Bool {
    kill(pid, 0) == 0 || errno != ESRCH
  }
}
