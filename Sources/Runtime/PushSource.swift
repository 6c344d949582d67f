// PushSource: what a push hands rsync as its source. A store file or tree is opened once and
// checked (`Store.open`); rsync then reads exactly that open object, never the store path
// again. Why: the store may be writable by others than root, and between the check and
// rsync's open (an ssh handshake apart) a path component could become a link to anywhere on
// the server, /etc/shadow included.
//
// How rsync reads the checked object: the descriptor becomes rsync's standard input, and the
// source argument names it through `/proc/self/fd/0`, a link the kernel resolves to the open
// object itself, not to a path. rsync holds its own copy of the descriptor (an old rsync still
// running cannot see a number we have reused), and no other child ever gets it (it is
// close-on-exec here; swift-subprocess closes every other descriptor in the child).
// - a tree: `/proc/self/fd/0/`; rsync walks below it with -l as before (links inside the
//   tree are sent as links). What rsync does inside the tree it resolves by path: a swap
//   there races rsync's own walk (its last component is opened O_NOFOLLOW since rsync 3.4).
// - a file: rsync names what it sends after the last component of its argument, and the
//   host's path (and a destination that is a directory) depends on that name. So a private
//   directory holds a link `NAME -> /proc/self/fd/0`, and rsync follows it (`--copy-links`,
//   which for a single file concerns nothing else).
// - pkgsync's lists: the texts that were checked, written to a private directory with the
//   store files' modes and times (so an unchanged list stays unchanged for rsync).
// Staging a whole tree instead would copy up to the whole tree per host and push; a
// descriptor costs nothing.

import Foundation

/// The source of a push, as rsync is given it.
public struct PushSource: Hashable, Sendable, CustomStringConvertible {
  /// rsync's source argument; a trailing `/` sends a directory's contents.
  public let argument: String
  /// What the operator knows it as: the store path it was opened from.
  public let shown: String
  /// How rsync reads it, for the golden files and the curious; nil for a plain path.
  public let how: String?
  /// What must stay open (the checked descriptor, rsync's stdin) or exist (a private
  /// directory) until rsync ends; released with the last copy of the source.
  let held: Held?

  /// A local path given to rsync as it is: for what no one but root can change (tests'
  /// scratch directories), never for the store.
  public static func path(_ path: String) -> PushSource {
    PushSource(argument: path, shown: path, how: nil, held: nil)
  }

  /// The descriptor rsync gets as its standard input, if any.
  var standardInput: Int32? { held?.file?.descriptor }

  public var description: String { shown }

  public static func == (a: PushSource, b: PushSource) -> Bool {
    a.argument == b.argument && a.shown == b.shown && a.how == b.how && a.held === b.held
  }

  public func hash(into hasher: inout Hasher) {
    hasher.combine(argument)
    hasher.combine(shown)
    hasher.combine(held.map(ObjectIdentifier.init))
  }

  /// Keeps a checked file open and a private directory in place for as long as a push may
  /// use them.
  final class Held: Sendable {
    let file: StoreFile?
    let privateDirectory: String?

    init(file: StoreFile?, privateDirectory: String?) {
      self.file = file
      self.privateDirectory = privateDirectory
    }

    deinit {
      if let privateDirectory { try? FileManager.default.removeItem(atPath: privateDirectory) }
    }
  }
}

extension PushSource {
  /// rsync's name for its standard input, as a path the kernel resolves to the open object.
  static let standardInputPath = "/proc/self/fd/0"

  /// A checked file or directory of the store (`Store.open(_:group:directories:)`).
  init(_ file: StoreFile) throws(StoreError) {
    var path = file.path
    while path.count > 1, path.hasSuffix("/") { path.removeLast() }
    if file.isDirectory {
      self.init(
        argument: Self.standardInputPath + "/", shown: path + "/",
        how: "opened once and checked, read by rsync as its stdin (\(Self.standardInputPath)/)",
        held: Held(file: file, privateDirectory: nil))
      return
    }
    let directory = try Self.privateDirectory()
    let held = Held(file: file, privateDirectory: directory)
    let name = (path as NSString).lastPathComponent
    guard symlink(Self.standardInputPath, directory + "/" + name) == 0 else {
      throw StoreError("cannot prepare the push of '\(path)': \(String(cString: strerror(errno)))")
    }
    self.init(
      argument: directory + "/" + name, shown: path,
      how: "opened once and checked, read by rsync as its stdin (\(Self.standardInputPath)) under the name \(name)",
      held: held)
  }

  /// `texts` (file name → text as checked, and the checked file for its mode and time),
  /// written to a private directory and sent as one directory's contents, shown as `shown`.
  init(checkedTexts texts: [(name: String, text: String, file: StoreFile)], shownAs shown: String) throws(StoreError) {
    let directory = try Self.privateDirectory()
    let held = Held(file: nil, privateDirectory: directory)
    for (name, text, file) in texts {
      let path = directory + "/" + name
      var times = [file.modified, file.modified]
      guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: file.permissions]),
        utimensat(AT_FDCWD, path, &times, AT_SYMLINK_NOFOLLOW) == 0
      else {
        throw StoreError("cannot prepare the push of '\(file.path)': \(String(cString: strerror(errno)))")
      }
    }
    self.init(argument: directory + "/", shown: shown, how: "the lists as read and checked, from a private copy", held: held)
  }

  /// A new directory only root (we) can change, under $TMPDIR or /tmp.
  private static func privateDirectory() throws(StoreError) -> String {
    var base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
    if base.isEmpty { base = "/tmp" }
    while base.count > 1, base.hasSuffix("/") { base.removeLast() }
    var template = Array((base + "/cfi-push-XXXXXX").utf8CString)
    guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
      throw StoreError("cannot make a private directory in \(base): \(String(cString: strerror(errno)))")
    }
    return String(cString: made)
  }
}
