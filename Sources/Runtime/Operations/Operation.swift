// Operations: what each action sends to a host, as values. An operation turns an action
// (with its store inputs already read) and the host's facts into a `Plan`: commands and
// pushes, each followed by a decision taken from its result. No I/O here: reading the store
// happens before (`PreparedAction.prepare`), running the plan after (`ActionExecutor`).

import Foundation

/// An action with what it needs from the store already read.
public enum PreparedAction: Sendable {
  case copy(LocalSource, destination: String?)
  case sync(LocalSource)
  case run(command: String)
  /// `path` as the runbook names it, `body` read from the store.
  case script(path: String, body: String, arguments: [String])
  case password(user: String, hash: Secret)
  case install(packages: [String])
  case remove(packages: [String])
  case upgrade
  /// The group's three lists (read and checked) and the directory holding them.
  case pkgsync(lists: [String: [String]], source: LocalSource)
  case fullUpgrade
  case service(unit: String, state: ServiceState)
  /// `path` on the host (checked), `into`: the local directory it goes into.
  case fetch(path: String, into: String)
  case reboot(onlyIfNeeded: Bool)

  /// Reads what `action` needs from `host`'s tree in `store`.
  public static func prepare(_ action: Action, for host: Host, store: Store) throws(StoreError) -> PreparedAction {
    switch action {
    case .copy(let path, let destination): return .copy(try LocalSource(path, group: host.group.rawValue, store: store), destination: destination)
    case .sync: return .sync(try LocalSource("", group: host.group.rawValue, store: store))
    case .run(let command): return .run(command: command)
    case .script(let path, let arguments):
      // Read once, from the file that was checked; the body goes to the host on stdin.
      return .script(path: path, body: try store.text(path, group: host.group.rawValue), arguments: arguments)
    case .password(let user, let hash): return .password(user: user, hash: hash)
    case .install(let packages): return .install(packages: packages)
    case .remove(let packages): return .remove(packages: packages)
    case .upgrade: return .upgrade
    case .pkgsync:
      // What is pushed is the lists as they were checked, not the store's files again.
      let lists = try Pkgsync.checked(in: store, group: host.group.rawValue)
      let source = try PushSource(
        checkedTexts: lists.map { ($0.name, $0.text, $0.file) },
        shownAs: store.directory(of: host.group.rawValue) + "/etc/pkgsync/{\(Pkgsync.lists.joined(separator: ","))}")
      return .pkgsync(
        lists: Dictionary(uniqueKeysWithValues: lists.map { ($0.name, $0.entries) }),
        source: LocalSource(source: source, relative: "etc/pkgsync/", isDirectory: true, files: Pkgsync.lists))
    case .fullUpgrade: return .fullUpgrade
    case .service(let unit, let state): return .service(unit: unit, state: state)
    case .fetch(let path):
      let checked = try Store.hostPath(path)
      return .fetch(path: checked, into: store.fetched(checked, from: host.name))
    case .reboot(let onlyIfNeeded): return .reboot(onlyIfNeeded: onlyIfNeeded)
    }
  }
}

/// A file or tree of a group's store, opened once and checked: what a push of it sends.
public struct LocalSource: Hashable, Sendable {
  /// What rsync is given (the checked descriptor, see `PushSource`).
  public var source: PushSource
  /// Its path relative to the group's tree (`""` for the tree itself), as on the host's `/`.
  public var relative: String
  public var isDirectory: Bool
  /// What the push may write as files on the host, relative to the directory it sends (a
  /// file: its own name): rsync's temporary files beside them are what an interrupted push
  /// leaves (`CopyOperation` removes them first).
  public var files: [String]

  public init(source: PushSource, relative: String, isDirectory: Bool, files: [String] = []) {
    self.source = source
    self.relative = relative
    self.isDirectory = isDirectory
    self.files = files
  }

  /// `path` in `group`'s tree (`""`: the tree itself).
  init(_ path: String, group: String, store: Store) throws(StoreError) {
    let file = try store.open(path.isEmpty ? "." : path, group: group, directories: true)
    let relative = (try? Store.normalizedRelativePath(path.isEmpty ? "." : path)) ?? ""
    self.init(
      source: try PushSource(file), relative: relative, isDirectory: file.isDirectory,
      files: file.isDirectory ? Self.files(in: file) : [(file.path as NSString).lastPathComponent])
  }

  /// Everything but directories below `directory`, read through its checked descriptor (as
  /// rsync reads it, links inside not followed), never its path.
  private static func files(in directory: StoreFile) -> [String] {
    var files: [String] = []
    func walk(_ descriptor: Int32, _ prefix: String) {
      guard descriptor >= 0 else { return }
      guard let stream = fdopendir(descriptor) else {
        close(descriptor)
        return
      }
      defer { closedir(stream) }
      while let entry = readdir(stream) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard name != ".", name != ".." else { continue }
        var status = stat()
        guard fstatat(dirfd(stream), name, &status, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
        if status.st_mode & S_IFMT == S_IFDIR {
          walk(openat(dirfd(stream), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), prefix + name + "/")
        } else {
          files.append(prefix + name)
        }
      }
    }
    walk(openat(directory.descriptor, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), "")
    return files.sorted()
  }
}

/// What an operation knows about the host and the step besides the action.
public struct HostFacts: Hashable, Sendable {
  public var host: Host
  public var options: StepOptions
  /// This run already refreshed the host's package lists (`apt-get update` once per host per run).
  public var aptListsRefreshed: Bool

  public init(host: Host, options: StepOptions, aptListsRefreshed: Bool = false) {
    self.host = host
    self.options = options
    self.aptListsRefreshed = aptListsRefreshed
  }

  /// A command with the step's limits.
  func command(_ body: RemoteCommand.Body, input: RemoteCommand.Input? = nil) -> RemoteCommand {
    RemoteCommand(body, input: input, timeout: options.timeout, connectTimeout: options.connectTimeout)
  }
}

/// What a finished command (or push) left for the plan to decide on. Only commands that ran
/// to their end get here; the executor reports every other ending itself.
public struct Exited: Hashable, Sendable {
  public var status: Int32
  public var stdout: String
  public var stderr: String

  public init(status: Int32, stdout: String = "", stderr: String = "") {
    self.status = status
    self.stdout = stdout
    self.stderr = stderr
  }

  /// ok on exit 0 (changed if `changed`), else failed with the exit code; output kept.
  func result(changed: Bool = false) -> StepResult {
    StepResult(
      status: status == 0 ? (changed ? .changed : .ok) : .failed, exitCode: status, output: stdout, errorOutput: stderr)
  }
}

/// Facts a plan learned about the host, kept for the rest of the run.
public struct Learned: OptionSet, Hashable, Sendable {
  public let rawValue: Int
  public init(rawValue: Int) { self.rawValue = rawValue }
  public static let aptListsRefreshed = Learned(rawValue: 1)
}

/// The steps of an action on one host: each command or push is followed by the decision of
/// what comes next, taken from its result.
public enum Plan: Sendable {
  /// Nothing more to send: the step's result.
  case done(StepResult, learned: Learned)
  /// Run a command, then go on with what its result decides.
  case command(RemoteCommand, then: @Sendable (Exited) -> Plan)
  /// Push a tree, then go on with what rsync's result decides.
  case push(Push, then: @Sendable (Exited) -> Plan)
  /// Pull a host's file or tree, then go on with what rsync's result decides.
  case pull(Pull, then: @Sendable (Exited) -> Plan)
  /// Wait for the host to come back from a reboot (its master is closed first), then go on
  /// with what the wait found. On its way back, the host is reached afresh: the master that
  /// the wait opened carries the steps after it.
  case awaitReboot(RebootWait, then: @Sendable (RebootWait.Outcome) -> Plan)
  /// Read files of a push's source on this machine (what a diff compares with), then go on.
  case read(StoreRead, then: @Sendable ([StoreContent]) -> Plan)

  /// The end of a plan.
  static func done(_ result: StepResult) -> Plan { .done(result, learned: []) }
  static func failure(_ message: String) -> Plan { .done(.failure(message)) }
}

/// The operation of each action.
public enum Operations {
  /// What `action` sends to the host described by `facts`.
  public static func plan(_ action: PreparedAction, facts: HostFacts) -> Plan {
    switch action {
    case .run(let command): CommandOperations.run(command, facts)
    case .script(let path, let body, let arguments): CommandOperations.script(path, body: body, arguments, facts)
    case .password(let user, let hash): PasswordOperation.plan(user, hash, facts)
    case .install(let packages): PackageOperations.apt("install", packages, facts)
    case .remove(let packages): PackageOperations.apt("remove", packages, facts)
    case .upgrade: PackageOperations.apt("upgrade", [], facts)
    case .copy(let source, let destination): CopyOperation.plan(source, to: destination, facts) { .done($0) }
    case .sync(let source): CopyOperation.plan(source, to: nil, facts, wholeTree: true) { .done($0) }
    case .pkgsync(let lists, let source): PkgsyncOperation.plan(lists, source, facts)
    case .fullUpgrade: PackageOperations.apt("full-upgrade", [], facts)
    case .service(let unit, let state): ServiceOperation.plan(unit, state, facts)
    case .fetch(let path, let directory): FetchOperation.plan(path, into: directory, facts)
    case .reboot(let onlyIfNeeded): RebootOperation.plan(onlyIfNeeded: onlyIfNeeded, facts)
    }
  }
}
