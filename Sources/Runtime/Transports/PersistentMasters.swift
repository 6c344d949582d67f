// Masters that outlive a run (`--persist`, `set persist`): the next run within the window
// reuses a host's master instead of a new handshake. They live in one directory per user,
// `persist/` in the user's runtime directory of cfi's own (/run/cfi for root,
// $XDG_RUNTIME_DIR/cfi, or CFI_RUNTIME_DIR), owner-only (0700): whoever can use a socket
// there runs commands as the master's user on the host, so only its owner (root, who is
// root on the hosts already) may reach it. Never in a shared directory such as /tmp: there,
// masters do not persist. The directory is not named by a run's pid, so the sweep of dead
// runs' directories (`ControlDirectory`) never touches it; ssh itself ends a master idle
// for its window (ControlPersist).
//
// One socket per everything a connection was made with (`MasterKey`: host alias, address,
// port, user, identity file, known_hosts file, ssh_config, keep-alives), named by a hash of
// it: a run whose parameters differ never finds, so never reuses, another's master. Beside
// each socket, `NAME.json` (`PersistentMaster.Record`) says for whom it was opened and the
// host key pin it was opened under: a pin changed since (`cfi-sh hosts forget`, a
// reinstalled host) refuses the master. Its modification time is the master's last use.
// A master is never reused once older than `PersistentMaster.maximumAge`, however recently
// used: a session authenticated before a key was revoked does not go on serving runs.

import Crypto
import Foundation

/// The parameters a master was opened with: a run reuses a master only if all are the same.
struct MasterKey: Hashable, Sendable {
  var name: String
  var address: String
  var port: Int?
  var user: String
  /// The identity file with what identifies its content (device, inode, size, modification
  /// time), so that a key replaced under the same path is another key; nil: ssh's defaults.
  var identity: String?
  var knownHosts: String
  /// The ssh_config, likewise; nil: the user's usual configuration.
  var config: String?
  var serverAlive: String

  /// The key's fields, one a line, in a fixed order: what the socket's name is a hash of.
  var canonical: String {
    [
      "cfi-persist 1", "name " + name, "address " + address, "port " + (port.map(String.init) ?? "-"), "user " + user,
      "identity " + (identity ?? "-"), "known_hosts " + knownHosts, "ssh_config " + (config ?? "-"),
      "server_alive " + serverAlive,
    ].joined(separator: "\n")
  }

  /// The socket's name: 24 hex digits (96 bits) of the SHA-256 of `canonical`, short enough
  /// for sun_path under any runtime directory cfi-sh uses.
  var socketName: String {
    SHA256.hash(data: Array(canonical.utf8)).prefix(12).map { String(format: "%02x", $0) }.joined()
  }

  static let socketNameLength = 24

  /// A file as a key field: its path and what identifies its content now; `-` for a file
  /// that is not there.
  static func fileIdentity(_ path: String) -> String {
    var status = stat()
    guard stat(path, &status) == 0 else { return path + " -" }
    // The modification time (seconds and nanoseconds) as timespec's bytes: a release build
    // does not see its members through Foundation (MemberImportVisibility).
    let modified = withUnsafeBytes(of: status.st_mtim) { $0.map { String(format: "%02x", $0) }.joined() }
    return path + " \(status.st_dev):\(status.st_ino):\(status.st_size):\(modified)"
  }
}

/// A master that outlives its run, as `cfi-sh connections` lists it.
public struct PersistentMaster: Sendable, Equatable {
  /// What is recorded beside the socket when the master opens.
  public struct Record: Codable, Sendable, Equatable {
    public var host: String
    public var user: String
    public var port: Int?
    public var address: String
    /// The window it was opened with (ControlPersist), in seconds: it ends once idle that long.
    public var window: Int
    public var opened: Date
    /// SHA-256 of the known_hosts lines that pinned the host's key when it opened ("" for
    /// none); nil while not known (a first contact, recorded at the end of its run).
    public var pin: String?

    public init(host: String, user: String, port: Int?, address: String, window: Int, opened: Date, pin: String?) {
      (self.host, self.user, self.port, self.address, self.window, self.opened, self.pin) = (host, user, port, address, window, opened, pin)
    }
  }

  public var record: Record
  /// The control socket.
  public var socket: String
  /// The master's last use (a run that opened or reused it, at that run's end).
  public var lastUsed: Date
  /// The master's process, as it answers over its socket.
  public var pid: pid_t

  public init(record: Record, socket: String, lastUsed: Date, pid: pid_t) {
    (self.record, self.socket, self.lastUsed, self.pid) = (record, socket, lastUsed, pid)
  }

  /// When it ends if it is not used again: its last use plus its window.
  public var closes: Date { lastUsed.addingTimeInterval(TimeInterval(record.window)) }

  /// How long after it opened a master may still be reused (one hour): past that a run
  /// closes it and opens a new one, so that a session authenticated before a key was
  /// revoked (the host left, a key removed after a compromise) ends within the hour even
  /// when runs every few minutes keep it from ever idling for its window.
  public static let maximumAge: TimeInterval = 3600

  /// What a run does with the master found on its socket (`Reuse`).
  enum Reuse: Equatable {
    /// Carry this run's commands over it.
    case reuse
    /// Open a new master in its place: none answers there (no socket, or a dead one's).
    case open
    /// Close it, then open a new one: opened under another host key pin, or too old.
    case retire
    /// Leave it alone and connect with a master of this run's own, which does not persist:
    /// it is alive but its record is not complete (a first contact whose run has not ended,
    /// or one being installed just now), or it does not answer in time (busy). It is not
    /// this run's to close: another run may be using it.
    case ownConnection
  }

  /// The decision for a master that `probe` found on its socket, with `record` beside it,
  /// for a run whose host key pin is `pin` (`PersistentMasters.pinDigest`), at `now`.
  static func reuse(_ probe: MuxControl.Probe, record: Record?, pin: String, now: Date) -> Reuse {
    switch probe {
    case .gone: return .open
    case .silent: return .ownConnection
    case .alive: break
    }
    guard let record, let recorded = record.pin else { return .ownConnection }
    if recorded != pin || now.timeIntervalSince(record.opened) >= maximumAge || now < record.opened { return .retire }
    return .reuse
  }
}

/// The directory of the persistent masters of this user.
public struct PersistentMasters: Sendable {
  public let directory: String

  public init(directory: String) { self.directory = directory }

  /// The directory for this process: `persist` in the first runtime directory of cfi's own
  /// (`ControlDirectory.candidates`, never a shared one such as /tmp) whose sockets fit in
  /// sun_path; nil when there is none.
  public static func forUser(environment: [String: String] = ProcessInfo.processInfo.environment, uid: uid_t = getuid())
    -> PersistentMasters?
  {
    guard let own = ControlDirectory.candidates(environment: environment, uid: uid).first(where: { $0.prefix == "ssh-" })
    else { return nil }
    let masters = PersistentMasters(directory: own.base + "/persist")
    return masters.fits ? masters : nil
  }

  /// Whether a socket here fits in sun_path (108 bytes with its NUL) while ssh creates it
  /// under its opening name (`opening(for:)`, 7 characters longer), to which ssh adds 17.
  var fits: Bool { (directory + "/").utf8.count + MasterKey.socketNameLength + 7 + 17 < 108 }

  /// The runtime directory it is in (the runs' own control directories are there too).
  var runtimeDirectory: String { (directory as NSString).deletingLastPathComponent }

  /// Makes the directory (and the runtime directory above it) owner-only, if need be; false
  /// when it cannot be used: not creatable, not a directory, another user's, or reachable by
  /// anyone else.
  func prepare(uid: uid_t = getuid()) -> Bool {
    let base = runtimeDirectory
    for path in [base, directory] {
      if mkdir(path, 0o700) != 0 && errno != EEXIST { return false }
    }
    var status = stat()
    guard lstat(base, &status) == 0, (status.st_mode & S_IFMT) == S_IFDIR, status.st_uid == uid, status.st_mode & 0o022 == 0,
      lstat(directory, &status) == 0, (status.st_mode & S_IFMT) == S_IFDIR, status.st_uid == uid, status.st_mode & 0o077 == 0
    else { return false }
    return true
  }

  func socket(for key: MasterKey) -> String { directory + "/" + key.socketName }

  /// A name of its own for a master being opened for `socket`. Not `socket` itself: two runs
  /// opening it at once would both have ssh bind it, and the one that loses goes on as a
  /// plain connection (ssh "disables multiplexing"), which with `-N -f` nothing ever ends.
  func opening(for socket: String) -> String {
    socket + "." + String(UInt32.random(in: 0...0xFF_FFFF), radix: 16).leftPadded(to: 6)
  }

  /// Puts the master just opened on `opening` in `socket`'s place. A hard link first: atomic,
  /// and it never replaces another's. When another run's master for the same parameters got
  /// there first and is alive (or answers nothing in time), ours is told to exit and theirs
  /// serves; a dead one's socket is replaced by a rename, atomic too: a run that raced us
  /// there is never undone by an unlink of ours. Returns the socket to use and whether it is ours.
  func install(_ opening: String, as socket: String) -> (socket: String, ours: Bool) {
    if link(opening, socket) == 0 {
      unlink(opening)
      return (socket, true)
    }
    guard errno == EEXIST else { return (opening, false) }
    switch MuxControl.probe(path: socket) {
    case .alive, .silent:
      _ = MuxControl.terminate(path: opening)
      unlink(opening)
      return (socket, false)
    case .gone:
      // Not renamed (it cannot be, in one directory): ours serves this run under its own name.
      guard rename(opening, socket) == 0 else { return (opening, false) }
      return (socket, true)
    }
  }

  static func recordPath(_ socket: String) -> String { socket + ".json" }

  /// The record beside `socket`, if there is a readable one.
  func record(of socket: String) -> PersistentMaster.Record? {
    guard let data = FileManager.default.contents(atPath: Self.recordPath(socket)) else { return nil }
    let decoder = JSONDecoder()
    decoder.dateDecodingStrategy = .secondsSince1970
    return try? decoder.decode(PersistentMaster.Record.self, from: data)
  }

  /// Writes the record beside `socket` (owner-only, replaced whole): also its last use.
  func write(_ record: PersistentMaster.Record, of socket: String) {
    let encoder = JSONEncoder()
    encoder.dateEncodingStrategy = .secondsSince1970
    encoder.outputFormatting = .sortedKeys
    guard let data = try? encoder.encode(record) else { return }
    let path = Self.recordPath(socket)
    let temporary = path + ".new"
    guard FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: 0o600]),
      rename(temporary, path) == 0
    else {
      unlink(temporary)
      return
    }
  }

  /// Says that the master behind `socket` was used now.
  func touch(_ socket: String) {
    utimes(Self.recordPath(socket), nil)
  }

  /// Tells the master behind `socket` to exit, if one listens there, and removes the socket
  /// and its record; true if a master said yes.
  @discardableResult
  func close(_ socket: String) -> Bool {
    close([socket]).contains(socket)
  }

  /// `close(_:)` for several sockets at once (`MuxControl.terminate(paths:)`); the sockets
  /// whose master said yes.
  @discardableResult
  func close(_ sockets: [String]) -> Set<String> {
    let found = sockets.map(Self.inode)
    let closed = MuxControl.terminate(paths: sockets)
    for (socket, inode) in zip(sockets, found) {
      if let inode { remove(socket, inode: inode) }
    }
    return closed
  }

  /// Removes `socket` and its record if the socket is still the file `inode` names: another
  /// run may have put a master of its own there meanwhile (`install`), which stays.
  private func remove(_ socket: String, inode: ino_t) {
    guard Self.inode(socket) == inode else { return }
    unlink(socket)
    unlink(Self.recordPath(socket))
  }

  private static func inode(_ path: String) -> ino_t? {
    var status = stat()
    return lstat(path, &status) == 0 ? status.st_ino : nil
  }

  /// The masters alive here, by host; what is left of dead ones (a socket nobody listens on,
  /// a record without a socket) is removed. A live master with no readable record (being
  /// opened just now) is not listed, nor one that does not answer in time (busy): neither
  /// is removed.
  public func list() -> [PersistentMaster] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    var masters: [PersistentMaster] = []
    for name in names where Self.isSocketName(name) {
      let socket = directory + "/" + name
      let found = Self.inode(socket)
      let probe = MuxControl.probe(path: socket)
      guard case .alive(let pid) = probe else {
        if probe == .gone, let found { remove(socket, inode: found) }
        continue
      }
      guard let record = record(of: socket) else { continue }
      let modified = (try? FileManager.default.attributesOfItem(atPath: Self.recordPath(socket)))?[.modificationDate] as? Date
      masters.append(PersistentMaster(record: record, socket: socket, lastUsed: modified ?? record.opened, pid: pid))
    }
    for name in names where name.hasSuffix(".json") && Self.isSocketName(String(name.dropLast(5))) {
      if !names.contains(String(name.dropLast(5))) { unlink(directory + "/" + name) }
    }
    return masters.sorted { ($0.record.host, $0.record.user, $0.socket) < ($1.record.host, $1.record.user, $1.socket) }
  }

  /// Closes every master here whose host `matches` says yes to (with no test: every one,
  /// listed or not); returns those that were listed.
  @discardableResult
  public func close(where matches: ((PersistentMaster) -> Bool)? = nil) -> [PersistentMaster] {
    let listed = list()
    guard let matches else {
      // Masters still under their opening names too (a run killed as it opened one).
      for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
      where Self.isSocketName(String(name.prefix(MasterKey.socketNameLength))) && !name.hasSuffix(".json") {
        close(directory + "/" + name)
      }
      return listed
    }
    let chosen = listed.filter(matches)
    for master in chosen { close(master.socket) }
    return chosen
  }

  static func isSocketName(_ name: String) -> Bool {
    name.utf8.count == MasterKey.socketNameLength && name.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
  }

  /// SHA-256 of a host's pinned known_hosts lines, as a record keeps it ("" for none).
  static func pinDigest(_ lines: String?) -> String {
    guard let lines, !lines.isEmpty else { return "" }
    return SHA256.hash(data: Array(lines.utf8)).map { String(format: "%02x", $0) }.joined()
  }
}

extension String {
  /// The string with zeros in front, to `width` characters.
  fileprivate func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
