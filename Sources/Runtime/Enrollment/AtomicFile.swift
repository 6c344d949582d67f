// AtomicFile: the one way enrollment and `server init` write files (authorized_keys, the pin,
// avahi service files). avahi-daemon reads a service file as soon as it appears and sshd reads
// authorized_keys at every login: neither may ever see half of a file.

import Foundation

/// Reading and replacing small files safely: a new version is written to a temporary file in
/// the same directory, synced, and renamed over the old one (readers see the old or the new
/// file, never half of one; a crash leaves at worst a stray temporary file).
public enum AtomicFile {
  /// The file's bytes; nil when it does not exist.
  public static func read(_ path: String) throws(EnrollmentError) -> [UInt8]? {
    var info = stat()
    if stat(path, &info) != 0 {
      if errno == ENOENT { return nil }
      throw EnrollmentError("cannot read \(path): \(String(cString: strerror(errno)))")
    }
    guard let data = FileManager.default.contents(atPath: path) else {
      throw EnrollmentError("cannot read \(path)")
    }
    return Array(data)
  }

  /// Creates `path` and missing parents with `mode` (an existing directory is left as it is).
  public static func createDirectory(_ path: String, mode: Int) throws(EnrollmentError) {
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
      if isDirectory.boolValue { return }
      throw EnrollmentError("\(path) is not a directory")
    }
    do {
      try FileManager.default.createDirectory(
        atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: mode])
    } catch {
      throw EnrollmentError("cannot create \(path): \(error.localizedDescription)")
    }
  }

  /// Writes `bytes` to `path` unless the file already holds exactly them (then it is left
  /// alone: same inode, nothing for avahi or sshd to notice); its directory is created with
  /// `directoryMode` when missing. Whether it wrote.
  public static func update(_ bytes: [UInt8], at path: String, directoryMode: Int, newFileMode: mode_t) throws(EnrollmentError) -> Bool {
    if try read(path) == bytes { return false }
    try createDirectory((path as NSString).deletingLastPathComponent, mode: directoryMode)
    try write(bytes, to: path, newFileMode: newFileMode)
    return true
  }

  /// Replaces the file at `path` (through a symbolic link: its target) with `bytes`. An
  /// existing file keeps its mode and owner; a new one gets `newFileMode` and the caller's owner.
  public static func write(_ bytes: [UInt8], to path: String, newFileMode: mode_t) throws(EnrollmentError) {
    try write(bytes, to: path, newFileMode: newFileMode, beforeRename: { _ throws(EnrollmentError) in })
  }

  /// `write`, with `beforeRename` run on the synced temporary file: what fails there fails like
  /// a full disk would, which tests cannot otherwise cause (they run as root).
  static func write(
    _ bytes: [UInt8], to path: String, newFileMode: mode_t, beforeRename: (String) throws(EnrollmentError) -> Void
  ) throws(EnrollmentError) {
    var target = path
    var info = stat()
    if lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFLNK {
      guard let resolved = realpath(path, nil) else {
        throw EnrollmentError("\(path) is a symbolic link to nowhere: \(String(cString: strerror(errno)))")
      }
      target = String(cString: resolved)
      free(resolved)
    }
    let exists = stat(target, &info) == 0
    if exists, (info.st_mode & S_IFMT) != S_IFREG { throw EnrollmentError("\(target) is not a regular file") }
    let directory = (target as NSString).deletingLastPathComponent
    let name = (target as NSString).lastPathComponent
    var template = Array("\(directory.isEmpty ? "." : directory)/.\(name).cfi-XXXXXX".utf8CString)
    let fd = mkstemp(&template)
    guard fd >= 0 else { throw EnrollmentError("cannot write in \(directory): \(String(cString: strerror(errno)))") }
    let temporary = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    func fail(_ what: String) -> EnrollmentError {
      let error = EnrollmentError("cannot write \(target) (\(what)): \(String(cString: strerror(errno)))")
      close(fd)
      unlink(temporary)
      return error
    }
    var written = 0
    while written < bytes.count {
      let count = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
      if count < 0 {
        if errno == EINTR { continue }
        throw fail("write")
      }
      written += count
    }
    guard fchmod(fd, exists ? info.st_mode & 0o7777 : newFileMode) == 0 else { throw fail("chmod") }
    if exists, info.st_uid != geteuid() || info.st_gid != getegid() {
      guard fchown(fd, info.st_uid, info.st_gid) == 0 else { throw fail("chown") }
    }
    guard fsync(fd) == 0 else { throw fail("fsync") }
    guard close(fd) == 0 else {
      unlink(temporary)
      throw EnrollmentError("cannot write \(target) (close): \(String(cString: strerror(errno)))")
    }
    do { try beforeRename(temporary) } catch {
      unlink(temporary)
      throw error
    }
    guard rename(temporary, target) == 0 else {
      let error = EnrollmentError("cannot replace \(target): \(String(cString: strerror(errno)))")
      unlink(temporary)
      throw error
    }
    let directoryFD = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY)
    if directoryFD >= 0 {
      _ = fsync(directoryFD)
      close(directoryFD)
    }
  }

  /// Removes a file; whether it existed.
  public static func remove(_ path: String) throws(EnrollmentError) -> Bool {
    if unlink(path) == 0 { return true }
    if errno == ENOENT { return false }
    throw EnrollmentError("cannot remove \(path): \(String(cString: strerror(errno)))")
  }
}
