// The OpenSSH transport: OpenSSH as an argv prefix (as ClusterShell's Ssh worker), with one
// ControlMaster per host for the whole run (one handshake per host, however many steps),
// commands multiplexed over it by cfi-sh itself (`MuxSession`: no ssh process per command),
// rsync riding the same master. A host's master is opened on its own (`ssh -f -N`) before
// anything runs there, so that connecting and running fail apart: `UnreachableReason` says
// which. At the end the masters are told to exit over their sockets (MuxControl), not by an
// ssh each — except those that persist (`keepConnections(for:)`): they
// live in the user's `PersistentMasters` directory, stay open for their window after the run,
// and the next run reuses them after checking them (`MasterKey`, the host key pin, alive).
// Host keys are pinned in the server's own known_hosts on first contact; a changed key fails
// the host. Never a prompt (BatchMode), never StrictHostKeyChecking=no. Every host-derived
// value in an argv is a validated value (`SSHTarget`), and the destination follows `--`.

import Foundation
import Synchronization

/// Runs commands on real hosts over ssh, pushes with rsync.
public final class SSHTransport: Transport {
  private let configuration: SSHConfiguration
  /// The control directory this transport made, once it has.
  private let madeDirectory = Mutex<String?>(nil)
  private let connections = Mutex<[HostName: Connection]>([:])
  /// How long masters stay open after the run (ControlPersist); zero: closed at its end.
  private let window = Mutex<Duration>(.zero)
  /// The directory of masters that persist, once looked for (nil inside: none usable).
  private let persistent = Mutex<PersistentMasters??>(nil)
  /// Masters of hosts the run is done with, asked to exit while it goes on (`release`).
  private let exitRequests = MasterExitRequests()
  /// Per run: the known_hosts file as the run found it, and what identifies the identity and
  /// ssh_config files (`MasterKey`), read once.
  private let runFacts = Mutex<(knownHosts: KnownHostsFile.Index?, identity: String?, config: String?)?>(nil)

  /// The state of a host's master connection.
  enum Connection {
    /// Its master listens on this socket.
    case open(String)
    /// Connecting failed: every later command on the host ends the same way, without retrying.
    case failed(CommandResult)
  }

  /// A transport with `configuration`.
  public init(configuration: SSHConfiguration) {
    self.configuration = configuration
  }

  /// Where the control sockets are, made on first use: a run that stops before it connects
  /// (`cfi-sh -n`, a runbook with errors, a refused lock) leaves nothing behind. Making it
  /// removes what killed runs left (`ControlDirectory`).
  var controlDirectory: String {
    if let given = configuration.controlDirectory { return given }
    return madeDirectory.withLock { made in
      if let made { return made }
      for place in ControlDirectory.candidates(environment: ProcessInfo.processInfo.environment, uid: getuid()) {
        if let path = place.make() {
          made = path
          return path
        }
      }
      made = "/tmp/cfi-ssh-\(getpid())"
      return made!
    }
  }

  // MARK: - argv

  /// Options common to ssh and rsync's ssh, for `target`. User options (`-F`) come first so
  /// that ours cannot be overridden by accident where it matters.
  func sshOptions(for target: SSHTarget, connectTimeout: Duration, socket: String? = nil) -> [String] {
    var options: [String] = []
    if let configFile = configuration.configFile { options += ["-F", configFile] }
    options += [
      "-o", "BatchMode=yes",
      "-o", "ConnectTimeout=\(RemoteCommand.wholeSeconds(connectTimeout))",
      "-o", "ServerAliveInterval=\(configuration.serverAliveInterval)",
      "-o", "ServerAliveCountMax=\(configuration.serverAliveCountMax)",
      "-o", "StrictHostKeyChecking=accept-new",
      "-o", "UserKnownHostsFile=" + Self.configValue(configuration.knownHostsFile),
      "-o", "GlobalKnownHostsFile=/dev/null",
      "-o", "HostKeyAlias=\(target.name)",
      "-o", "ControlPath=" + Self.configValue(socket ?? controlPath(target)),
      "-o", "ForwardAgent=no",
      "-o", "ForwardX11=no",
      "-o", "LogLevel=ERROR",
      "-l", target.user,
    ]
    if let identityFile = configuration.identityFile {
      // As an option, not `-i`: ssh stat()s `-i`'s path as given, before expanding `%%`.
      options += ["-o", "IdentityFile=" + Self.configValue(identityFile), "-o", "IdentitiesOnly=yes"]
    }
    if let port = target.port { options += ["-p", String(port)] }
    return options
  }

  /// The ssh argv for `target`: our options, `extra` (master handling, `-N`, `-O`), then `--`,
  /// the address and the remote command, if any.
  func sshArgv(_ target: SSHTarget, connectTimeout: Duration, _ extra: [String], command: String?) -> [String] {
    ["ssh"] + sshOptions(for: target, connectTimeout: connectTimeout) + extra + ["--", target.address.rawValue]
      + (command.map { [$0] } ?? [])
  }

  /// The ssh argv that opens the master of `target` on `socket` and returns once it is up
  /// (forking it into the background), or fails as ssh could not connect. A master that
  /// persists ends once idle for `persist`; one of a run alone is closed at the run's end, and
  /// ends after two idle minutes if its run was killed.
  func masterArgv(_ target: SSHTarget, socket: String? = nil, connectTimeout: Duration, persist: Duration? = nil) -> [String] {
    let idle = persist.map { max(1, $0.components.seconds) } ?? 120
    return ["ssh"] + sshOptions(for: target, connectTimeout: connectTimeout, socket: socket)
      + ["-o", "ControlMaster=auto", "-o", "ControlPersist=\(idle)", "-N", "-f", "--", target.address.rawValue]
  }

  /// The rsync argv of `push` to `target`, over the target's master.
  func rsyncArgv(_ push: Push, to target: SSHTarget) -> [String] {
    ["rsync"] + push.options + ["-e", rsyncShell(for: target, connectTimeout: push.connectTimeout)]
      + ["--", push.source.argument, "\(target.address.rsyncHost):\(push.destination)"]
  }

  /// The rsync argv of `pull` from `target`, over the target's master.
  func rsyncArgv(_ pull: Pull, from target: SSHTarget) -> [String] {
    ["rsync"] + pull.options + ["-e", rsyncShell(for: target, connectTimeout: pull.connectTimeout)]
      + ["--", "\(target.address.rsyncHost):\(pull.source)", pull.destination]
  }

  /// rsync's `-e` value: ssh with this run's options, over the host's master. It ends in
  /// `--`: rsync appends the address and its own server command after it.
  func rsyncShell(for target: SSHTarget, connectTimeout: Duration) -> String {
    ShellQuote.rsyncShell(["ssh"] + sshOptions(for: target, connectTimeout: connectTimeout) + ["-o", "ControlMaster=no", "--"])
  }

  /// A path as the value of an ssh `-o` option. ssh splits such a line itself (quotes and
  /// backslashes, as in ssh_config) and expands `%` tokens in these paths: a path with a
  /// space, a quote or a `%` must be written for that.
  static func configValue(_ path: String) -> String {
    let expanded = path.replacingScalars(["%": "%%"])
    guard expanded.unicodeScalars.contains(where: { " \t'\"\\".unicodeScalars.contains($0) }) else { return expanded }
    return "\"" + expanded.replacingScalars(["\\": "\\\\", "\"": "\\\""]) + "\""
  }

  /// The control socket of `target`: the one its master was opened or found on, else where
  /// one would be opened now.
  private func controlPath(_ target: SSHTarget) -> String {
    if case .open(let socket) = connections.withLock({ $0[target.name] }) { return socket }
    if window.withLock({ $0 }) > .zero, let masters = persistentMasters { return masters.socket(for: masterKey(target)) }
    return "\(controlDirectory)/\(target.name)"
  }

  // MARK: - Masters that persist

  /// Keeps the masters opened from now on open for `window` after the run (ControlPersist),
  /// for the next run to reuse; zero: they close at the run's end (the default).
  public func keepConnections(for window: Duration) async {
    self.window.withLock { $0 = window }
  }

  /// The directory of persistent masters, made on first use; nil when none can be used.
  private var persistentMasters: PersistentMasters? {
    persistent.withLock { found in
      if let found { return found }
      let masters = PersistentMasters.forUser().flatMap { $0.prepare() ? $0 : nil }
      // A run whose masters all persist makes no directory of its own, where the directories
      // of killed runs are otherwise swept (`ControlDirectory.make`): swept here too.
      if let masters { ControlDirectory(base: masters.runtimeDirectory, prefix: "ssh-").removeStale() }
      found = .some(masters)
      return masters
    }
  }

  private var facts: (knownHosts: KnownHostsFile.Index?, identity: String?, config: String?) {
    runFacts.withLock { facts in
      if let facts { return facts }
      let read = (
        knownHosts: (try? String(contentsOfFile: configuration.knownHostsFile, encoding: .utf8)).map(KnownHostsFile.Index.init),
        identity: configuration.identityFile.map(MasterKey.fileIdentity), config: configuration.configFile.map(MasterKey.fileIdentity)
      )
      facts = read
      return read
    }
  }

  /// Everything `target`'s master is opened with.
  func masterKey(_ target: SSHTarget) -> MasterKey {
    let facts = facts
    return MasterKey(
      name: target.name.rawValue, address: target.address.rawValue, port: target.port, user: target.user, identity: facts.identity,
      knownHosts: configuration.knownHostsFile, config: facts.config,
      serverAlive: "\(configuration.serverAliveInterval)x\(configuration.serverAliveCountMax)")
  }

  /// The digest of the lines that pin `name`'s key, as the run found the known_hosts file.
  private func pin(_ name: HostName) -> String {
    PersistentMasters.pinDigest(facts.knownHosts?.pins(for: name))
  }

  /// What to do with the master on `socket` for `name` (`PersistentMaster.Reuse`): reused
  /// only if opened with the same parameters (its name says so), under the host key pin
  /// there is now, not too old, and alive.
  private func reuse(_ socket: String, for name: HostName, in masters: PersistentMasters) -> PersistentMaster.Reuse {
    PersistentMaster.reuse(MuxControl.probe(path: socket), record: masters.record(of: socket), pin: pin(name), now: Date())
  }

  // MARK: - Connections

  /// How connecting went (`connect`).
  private enum Connecting {
    /// A master was there: opened earlier in the run, or one kept from an earlier run and
    /// reused. It may have ended since (ControlPersist idle seconds, a REPL waiting at its
    /// prompt; a kept one closed by another run): its session finds no one on its socket and
    /// it is opened again (`session`).
    case found
    /// ssh opened one just now, saying `said` on stderr (nothing, unless it could not make
    /// its control socket).
    case opened(said: String)
    /// Connecting failed, now or earlier in this run (every later command ends the same way):
    /// what to report.
    case failed(CommandResult)

    init(_ failure: CommandResult?, else success: Connecting) { self = failure.map(Connecting.failed) ?? success }
  }

  /// Before a master is opened: ssh writes the known_hosts file, whose directory may not exist yet.
  private func prepareKnownHosts() {
    try? FileManager.default.createDirectory(
      atPath: (configuration.knownHostsFile as NSString).deletingLastPathComponent, withIntermediateDirectories: true,
      attributes: [.posixPermissions: 0o700])
  }

  /// Records how opening the host's master went; a failure is kept for the rest of the run,
  /// unless the command was interrupted (Ctrl-C is not a fact about the host: the REPL's next
  /// entry connects afresh). Returns what to report.
  private func recordConnect(_ target: SSHTarget, socket: String, failure: CommandResult?) -> CommandResult? {
    guard let failure else {
      connections.withLock { $0[target.name] = .open(socket) }
      return nil
    }
    if Task.isCancelled { return CommandResult(.interrupted("interrupted while connecting")) }
    connections.withLock { $0[target.name] = .failed(failure) }
    return failure
  }

  /// Opens the host's master on its own, unless it is open.
  private func connect(_ target: SSHTarget, connectTimeout: Duration) async -> Connecting {
    switch connections.withLock({ $0[target.name] }) {
    case .open: return .found
    case .failed(let result): return .failed(result)
    case nil: break
    }
    let window = window.withLock { $0 }
    var masters = window > .zero ? persistentMasters : nil
    var socket = "\(controlDirectory)/\(target.name)"
    if let found = masters {
      socket = found.socket(for: masterKey(target))
      switch reuse(socket, for: target.name, in: found) {
      case .reuse:
        found.touch(socket)
        return Connecting(recordConnect(target, socket: socket, failure: nil), else: .found)
      case .open: break
      case .retire: found.close(socket)
      case .ownConnection:
        masters = nil
        socket = "\(controlDirectory)/\(target.name)"
      }
    }
    prepareKnownHosts()
    let opening = masters?.opening(for: socket) ?? socket
    let argv = masterArgv(target, socket: opening, connectTimeout: connectTimeout, persist: masters == nil ? nil : window)
    let failure: CommandResult?
    var said = ""
    do {
      let output = try await LocalProcess.run(argv[0], Array(argv.dropFirst()))
      said = output.stderr
      failure = output.status == 0
        ? nil
        : SSHFailure.classify(target.name, stderr: output.stderr, connectTimeout: connectTimeout, liveness: configuration.liveness)
    } catch {
      failure = CommandResult(.notRun("cannot start ssh: \(error)"))
    }
    guard failure == nil, let masters else { return Connecting(recordConnect(target, socket: socket, failure: failure), else: .opened(said: said)) }
    let (installed, ours) = masters.install(opening, as: socket)
    if ours {
      // The pin it was opened under: the one ssh checked the host's key against, or none
      // yet at a first contact (then ssh pins the key, and the run's end records it).
      let pin = pin(target.name)
      masters.write(
        PersistentMaster.Record(
          host: target.name.rawValue, user: target.user, port: target.port, address: target.address.rawValue,
          window: Int(window.components.seconds), opened: Date(), pin: pin.isEmpty ? nil : pin),
        of: installed)
    }
    return Connecting(recordConnect(target, socket: installed, failure: nil), else: ours ? .opened(said: said) : .found)
  }

  // MARK: - Transport

  /// Runs `command` over the host's master (opened first if needed). Its input goes to its stdin
  /// (secrets travel this way, never in argv). Its timeout is enforced on the host.
  public func run(_ command: RemoteCommand, on host: Host) async -> CommandResult {
    let target: SSHTarget
    do throws(SSHTarget.Invalid) { target = try SSHTarget(host) } catch { return CommandResult(.notRun(error.message)) }
    // The master is opened on its own first, so that nothing runs before the host is
    // reached: a failure to connect is then ssh's word on connecting, and a connection that
    // dies later (the master gone) is a command that may have run, never taken for one that
    // did not start.
    let opened: String?
    switch await connect(target, connectTimeout: command.connectTimeout) {
    case .failed(let failure): return failure
    case .found: opened = nil
    case .opened(let said): opened = said
    }
    // The command runs in a process group of its own on the host, tagged, so that a timeout
    // (`timeout` signals its whole process group) or an interrupt (killed by its tag over the
    // master) ends everything it started: closing the session alone would leave it running.
    let tag = RemoteCommand.newTag()
    let line = command.wrapped(tag: tag)
    let kill = RemoteCommand.killScript(tag: tag)
    let ending = await TaggedCommand.run(
      program: "ssh", tag: tag,
      { try await self.session(target, line, input: command.standardInput, connectTimeout: command.connectTimeout, opened: opened) },
      reachable: { FileManager.default.fileExists(atPath: controlPath(target)) },
      kill: { (try? await self.session(target, kill, input: nil, connectTimeout: .seconds(5), opened: nil))?.status == 0 })
    let output: ProgramResult
    let status: Int32?
    switch ending {
    case .stopped(let result): return result
    case .finished(let finished, let reported): (output, status) = (finished, reported)
    }
    if status == nil, output.status == 255, let lost = await connectionLost(target, connectTimeout: command.connectTimeout) {
      return CommandResult(.unreachable(lost), stdout: output.stdout, stderr: output.stderr)
    }
    guard let status else {
      return CommandResult(
        .notRun("no exit status came back from \(host.name): the command may not have run (its session ended with \(output.status))"),
        stdout: output.stdout, stderr: output.stderr)
    }
    return CommandResult.finished(status: status, stdout: output.stdout, stderr: output.stderr, timeout: command.timeout)
  }

  /// Runs `line` (for the host's login shell) in a new session over the host's master, with
  /// `input` on its stdin. A master that does not answer has run nothing, and is opened again,
  /// once: one found (`opened` nil) that ended while idle or was closed by another run, or
  /// one opened just now that ended at once (the host closed the connection right after
  /// letting us in, or the master was stopped). Not where ssh, opening it, said that it could
  /// not make its control socket (`opened` holds what it said): it went on with a connection
  /// of its own, which serves no session, and would again. Those endings, and a session the
  /// master refused, are the command's result (`TaggedCommand.Stop`).
  private func session(
    _ target: SSHTarget, _ line: String, input: String?, connectTimeout: Duration, opened: String?
  ) async throws -> ProgramResult {
    var opened = opened
    var reopened = false
    while true {
      guard case .open(let socket) = connections.withLock({ $0[target.name] }) else {
        throw TaggedCommand.Stop(CommandResult(.notRun("no connection to \(target.name)")))
      }
      do {
        return try await MuxSession.run(socket: socket, command: line, input: input, outputLimit: LocalProcess.outputLimit)
      } catch MuxSession.Failure.noMaster {
        if let said = opened.flatMap(SSHFailure.noControlSocket) {
          throw TaggedCommand.Stop(
            CommandResult(.notRun("ssh could not make a control socket for \(target.name) (\(said)): nothing ran")))
        }
        guard !reopened else {
          throw TaggedCommand.Stop(
            CommandResult(.unreachable(Unreachable(.connectionLost, "connection lost as soon as it was made (nothing ran)"))))
        }
        reopened = true
        connections.withLock { $0[target.name] = nil }
        switch await connect(target, connectTimeout: connectTimeout) {
        case .failed(let failure): throw TaggedCommand.Stop(failure)
        case .found: opened = nil
        case .opened(let said): opened = said
        }
      } catch MuxSession.Failure.refused(let reason) {
        throw TaggedCommand.Stop(CommandResult(.notRun("the connection to \(target.name) did not run the command: \(reason)")))
      } catch MuxSession.Failure.lost(let reason) {
        throw TaggedCommand.Stop(
          CommandResult(.unreachable(Unreachable(.connectionLost, "the command's session was lost (it may have run): \(reason)"))))
      }
    }
  }

  public func push(_ push: Push, to host: Host) async -> CommandResult {
    await rsync(on: host, connectTimeout: push.connectTimeout) { await push.run(self.rsyncArgv(push, to: $0)) }
  }

  public func pull(_ pull: Pull, from host: Host) async -> CommandResult {
    await rsync(on: host, connectTimeout: pull.connectTimeout) { await pull.run(self.rsyncArgv(pull, from: $0)) }
  }

  /// Runs an rsync (`transfer`) over the host's master, opened first if needed.
  private func rsync(
    on host: Host, connectTimeout: Duration, _ transfer: (SSHTarget) async -> CommandResult
  ) async -> CommandResult {
    let target: SSHTarget
    do throws(SSHTarget.Invalid) { target = try SSHTarget(host) } catch { return CommandResult(.notRun(error.message)) }
    // rsync's ssh would connect on its own where the master has gone (ended while idle,
    // closed by another run), not as the run's connections are made: make sure one answers.
    if case .open(let socket) = connections.withLock({ $0[target.name] }), MuxControl.probe(path: socket) == .gone {
      connections.withLock { $0[target.name] = nil }
    }
    if case .failed(let failure) = await connect(target, connectTimeout: connectTimeout) { return failure }
    let result = await transfer(target)
    // rsync tells a dropped link in several ways (12, 30, 255); the master gone tells it plainly.
    if case .exited(let status) = result.termination, status != 0,
      let lost = await connectionLost(target, connectTimeout: connectTimeout)
    {
      return CommandResult(.unreachable(lost), stdout: result.stdout, stderr: result.stderr)
    }
    return result
  }

  /// Why a command whose ssh or rsync failed did so, when its host's master has died under
  /// it: its keep-alives went unanswered for the liveness bound, or the connection was reset.
  /// The host is forgotten, so that its next command connects afresh; nil while the master lives.
  private func connectionLost(_ target: SSHTarget, connectTimeout: Duration) async -> Unreachable? {
    guard !(await masterAlive(target, connectTimeout: connectTimeout)) else { return nil }
    connections.withLock { $0[target.name] = nil }
    return Unreachable(.connectionLost, "connection lost during the command (it may have run)")
  }

  private func masterAlive(_ target: SSHTarget, connectTimeout: Duration) async -> Bool {
    let argv = sshArgv(target, connectTimeout: connectTimeout, ["-O", "check"], command: nil)
    return (try? await LocalProcess.run(argv[0], Array(argv.dropFirst())))?.status == 0
  }

  /// A new run (the shell's next entry): failures are forgotten, and the persistent masters
  /// kept from the last one are checked again as a new run's would be (their pins recorded
  /// first, as at a run's end): one that died meanwhile, was unpinned or grew too old is
  /// dropped (closed if need be), and the host's next command opens or finds another.
  public func startNewRun() async {
    connections.withLock { connections in
      connections = connections.filter { if case .failed = $0.value { false } else { true } }
    }
    runFacts.withLock { $0 = nil }
    guard window.withLock({ $0 }) > .zero, let masters = persistent.withLock({ $0 ?? nil }) else { return }
    let kept = persistentConnections(in: masters)
    recordPins(of: kept.map(\.socket), in: masters)
    for (name, socket) in kept {
      switch reuse(socket, for: name, in: masters) {
      case .reuse: continue
      case .retire: masters.close(socket)
      case .open, .ownConnection: break
      }
      connections.withLock { $0[name] = nil }
    }
  }

  public func shutdown() async {
    let persisting = window.withLock { $0 } > .zero
    // The masters of persistent sockets this run used: kept for their window (their last
    // use said, a first contact's pin recorded), or closed when the window is zero now.
    if let masters = persistent.withLock({ $0 ?? nil }) {
      let used = persistentConnections(in: masters).map(\.socket)
      if persisting {
        recordPins(of: used, in: masters)
      } else {
        masters.close(used)
      }
    }
    // Nothing else to close where no directory was made (the run never connected there).
    guard let directory = controlDirectoryIfMade else { return }
    // Every socket in the directory, not only the masters recorded open: a first command
    // interrupted just as its master came up leaves one that was never recorded.
    let sockets = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).map { directory + "/" + $0 }
    await closeMasters(sockets: sockets)
    exitRequests.closeAll()
    ControlDirectory.remove(directory)
  }

  /// The hosts whose master is open on a socket of `masters`, with the socket.
  private func persistentConnections(in masters: PersistentMasters) -> [(name: HostName, socket: String)] {
    connections.withLock { connections in
      connections.compactMap { name, connection in
        if case .open(let socket) = connection, socket.hasPrefix(masters.directory + "/") { return (name, socket) }
        return nil
      }
    }
  }

  /// The run's own control directory, if it has one yet.
  private var controlDirectoryIfMade: String? { configuration.controlDirectory ?? madeDirectory.withLock { $0 } }

  /// At the end of a run whose masters persist: each record says it was used now, and those
  /// of first contacts get the pin ssh wrote meanwhile (one read of known_hosts for all).
  private func recordPins(of sockets: [String], in masters: PersistentMasters) {
    var unpinned: [(String, PersistentMaster.Record, HostName)] = []
    for socket in sockets {
      guard let record = masters.record(of: socket) else { continue }
      if record.pin == nil, let name = HostName(record.host) {
        unpinned.append((socket, record, name))
      } else {
        masters.touch(socket)
      }
    }
    guard !unpinned.isEmpty else { return }
    let pins = KnownHostsFile(path: configuration.knownHostsFile).pins(for: unpinned.map(\.2))
    for (socket, var record, name) in unpinned {
      record.pin = PersistentMasters.pinDigest(pins[name])
      masters.write(record, of: socket)
    }
  }

  public func forget(_ host: Host) async {
    let socket = connections.withLock { connections -> String? in
      defer { connections[host.name] = nil }
      if case .open(let socket) = connections[host.name] { return socket }
      return nil
    }
    if let socket, let masters = persistent.withLock({ $0 ?? nil }), socket.hasPrefix(masters.directory + "/") {
      masters.close(socket)
      return
    }
    // No directory made: nothing was ever opened (and none is made for this).
    guard let directory = controlDirectoryIfMade else { return }
    await closeMasters(sockets: [socket ?? directory + "/" + host.name.rawValue])
  }

  /// A master of the run's own (no window keeps it) is told to exit as soon as the run is
  /// done with its host, without waiting for the answer, rather than with all the others at
  /// the end: a run over hundreds of hosts then does not hold an ssh process here, an sshd
  /// session there and their keep-alives for every host it is done with. Whatever still
  /// listens at the end is closed then (`shutdown` closes every socket of the directory).
  public func release(_ host: Host) async {
    guard window.withLock({ $0 }) == .zero, let directory = controlDirectoryIfMade else { return }
    let socket = connections.withLock { connections -> String? in
      guard case .open(let socket) = connections[host.name], socket.hasPrefix(directory + "/") else { return nil }
      connections[host.name] = nil
      return socket
    }
    if let socket { exitRequests.request(path: socket) }
  }

  public var runsOnThisMachine: Bool { false }

  /// Tells the masters behind the control sockets `paths` (of the run's directory, each named
  /// after its host) to exit, over their sockets, in-process and all at once; `ssh -O exit`
  /// only where that fails (an OpenSSH speaking another mux version). Nothing where there is
  /// no socket.
  private func closeMasters(sockets paths: [String]) async {
    let closed = MuxControl.terminate(paths: paths)
    await withTaskGroup(of: Void.self) { group in
      for path in paths where !closed.contains(path) && FileManager.default.fileExists(atPath: path) {
        guard let target = SSHTarget(controlSocket: (path as NSString).lastPathComponent) else { continue }
        let argv = ["ssh"] + sshOptions(for: target, connectTimeout: .seconds(5), socket: path) + ["-O", "exit", "--", target.address.rawValue]
        group.addTask { _ = try? await LocalProcess.run(argv[0], Array(argv.dropFirst())) }
      }
    }
  }
}

/// A host as ssh reaches it, each part validated: what an ssh or rsync argv may contain of it.
struct SSHTarget: Hashable, Sendable {
  var name: HostName
  var address: HostAddress
  var port: Int?
  var user: String

  /// Why a host cannot be reached with ssh.
  struct Invalid: Error {
    var message: String
  }

  /// The host's name and address are valid by their types; its port and user are checked here.
  init(_ host: Host) throws(Invalid) {
    if let port = host.port, !(1...65535).contains(port) { throw Invalid(message: "'\(port)' is not a valid port") }
    let user = host.user ?? "root"
    guard Self.isValidUser(user) else { throw Invalid(message: "'\(user)' is not a valid user name") }
    self.init(name: host.name, address: host.connectAddress, port: host.port, user: user)
  }

  init(name: HostName, address: HostAddress, port: Int? = nil, user: String = "root") {
    self.name = name
    self.address = address
    self.port = port
    self.user = user
  }

  /// The master behind the control socket `name` (named after its host), for `ssh -O`.
  init?(controlSocket name: String) {
    guard let name = HostName(name), let address = HostAddress("cfi-control") else { return nil }
    self.init(name: name, address: address)
  }

  /// POSIX portable user names (letters, digits, `.`, `_`, `-`; not starting with `-`), 32 bytes at most.
  static func isValidUser(_ user: String) -> Bool {
    guard let first = user.utf8.first, first != UInt8(ascii: "-"), user.utf8.count <= 32 else { return false }
    return user.utf8.allSatisfy { HostName.isNameByte($0) }
  }
}
