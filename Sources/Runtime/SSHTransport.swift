// The OpenSSH transport: one ControlMaster per host for the whole run (one handshake per
// host, however many steps), commands multiplexed over it, rsync riding the same master.
// A host's first command opens the master itself (ControlMaster=auto: one ssh process for
// connect + command); rsync, which cannot, gets one opened first (`ssh -f -N`). At the end
// the masters are told to exit over their sockets (MuxControl), not by an ssh each.
// Host keys are pinned in the server's own known_hosts on first contact; a changed key fails
// the host. Never a prompt (BatchMode), never StrictHostKeyChecking=no.

import Foundation
import Subprocess
import Synchronization

/// Performs actions on real hosts over ssh and rsync.
public final class SSHTransport: Transport {
  private let configuration: SSHConfiguration
  private let store: Store
  private let controlDirectory: String
  private let connections = Mutex<[String: Connection]>([:])
  /// Remote kills started by interrupts, which must finish before the masters close.
  private let pendingKills = Mutex<[Task<Void, Never>]>([])
  /// Hosts whose package lists were refreshed in this run (apt-get update once per host).
  private let aptUpdated = Mutex<Set<String>>([])

  /// The state of a host's master connection.
  enum Connection {
    case open
    /// Connecting failed: every later step on the host fails the same way, without retrying.
    case failed(StepResult)
  }

  /// The most output kept per stream of a command; why: a runaway command must not eat the
  /// server's memory across hundreds of hosts.
  static let outputLimit = 16 << 20

  /// A transport for `store`'s groups with `configuration`.
  public init(configuration: SSHConfiguration, store: Store) {
    self.configuration = configuration
    self.store = store
    if let directory = configuration.controlDirectory {
      controlDirectory = directory
    } else {
      // Control socket paths must be short (sun_path is 108 bytes): a private dir under
      // $TMPDIR when that is short enough, else under /tmp.
      var base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
      if base.isEmpty || base.utf8.count > 48 { base = "/tmp" }
      while base.count > 1, base.hasSuffix("/") { base.removeLast() }
      var template = Array((base + "/cfi-ssh-XXXXXX").utf8CString)
      let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
      controlDirectory = made.map { String(cString: $0) } ?? "/tmp/cfi-ssh-\(getpid())"
    }
  }

  // MARK: - ssh command lines

  /// Options common to ssh and rsync's ssh, for `host`. User options (`-F`) come first so
  /// that ours cannot be overridden by accident where it matters.
  func sshOptions(for host: Host, connectTimeout: Duration) -> [String] {
    var options: [String] = []
    if let configFile = configuration.configFile { options += ["-F", configFile] }
    let seconds = max(1, Int(connectTimeout.components.seconds))
    options += [
      "-o", "BatchMode=yes",
      "-o", "ConnectTimeout=\(seconds)",
      "-o", "ServerAliveInterval=\(configuration.serverAliveInterval)",
      "-o", "ServerAliveCountMax=\(configuration.serverAliveCountMax)",
      "-o", "StrictHostKeyChecking=accept-new",
      "-o", "UserKnownHostsFile=\(configuration.knownHostsFile)",
      "-o", "GlobalKnownHostsFile=/dev/null",
      "-o", "HostKeyAlias=\(host.name)",
      "-o", "ControlPath=\(controlDirectory)/\(host.name)",
      "-o", "ForwardAgent=no",
      "-o", "ForwardX11=no",
      "-o", "LogLevel=ERROR",
      "-l", host.user ?? "root",
    ]
    if let identityFile = configuration.identityFile { options += ["-i", identityFile, "-o", "IdentitiesOnly=yes"] }
    if let port = host.port { options += ["-p", String(port)] }
    return options
  }

  struct Output {
    var status: Int32
    var stdout: String
    var stderr: String
  }

  /// Runs a local program, returning exit status and output. Throws only if it cannot start.
  private func execute(_ executable: String, _ arguments: [String], input: String? = nil) async throws -> Output {
    // Each child in a process group of its own; why: Ctrl-C on the terminal signals the whole
    // foreground group, and ssh or rsync dying of it would lose the connection the remote
    // kill needs. cfi-sh itself turns SIGINT into a cancellation that ends them in order.
    var platformOptions = PlatformOptions()
    platformOptions.processGroupID = 0
    let result = try await Subprocess.run(
      .name(executable), arguments: Arguments(arguments), platformOptions: platformOptions, input: .string(input ?? ""),
      output: .string(limit: SSHTransport.outputLimit), error: .string(limit: SSHTransport.outputLimit))
    let status: Int32
    switch result.terminationStatus {
    case .exited(let code): status = code
    case .signaled(let signal): status = 128 + signal
    }
    return Output(status: status, stdout: result.standardOutput, stderr: result.standardError)
  }

  // MARK: - Connections

  /// Where a host stands before a step.
  private enum Readiness {
    /// Its master is open: steps ride it.
    case open
    /// No master yet (or it ended after ControlPersist idle seconds, a REPL waiting at its
    /// prompt): the step's own ssh opens one.
    case needsMaster
    /// Connecting failed earlier in this run: every later step fails the same way.
    case failed(StepResult)
  }

  private func readiness(_ host: Host) -> Readiness {
    switch connections.withLock({ $0[host.name] }) {
    case .open: FileManager.default.fileExists(atPath: "\(controlDirectory)/\(host.name)") ? .open : .needsMaster
    case .failed(let result): .failed(result)
    case nil: .needsMaster
    }
  }

  /// Records how opening the host's master went; a failure is kept for the rest of the run,
  /// unless the step was interrupted (Ctrl-C is not a fact about the host: the REPL's next
  /// entry connects afresh). Returns what to report.
  private func recordConnect(_ host: Host, failure: StepResult?, since start: ContinuousClock.Instant) -> StepResult? {
    guard var failure else {
      connections.withLock { $0[host.name] = .open }
      return nil
    }
    failure.duration = ContinuousClock.now - start
    if Task.isCancelled { return StepResult(status: .interrupted, message: "interrupted while connecting", duration: failure.duration) }
    connections.withLock { $0[host.name] = .failed(failure) }
    return failure
  }

  /// The ssh options that make this step's ssh open the master if `needsMaster` (it forks
  /// the master into the background and runs the step through it), else ride it.
  private func masterOptions(_ needsMaster: Bool) -> [String] {
    if needsMaster {
      try? FileManager.default.createDirectory(
        atPath: (configuration.knownHostsFile as NSString).deletingLastPathComponent, withIntermediateDirectories: true,
        attributes: [.posixPermissions: 0o700])
      return ["-o", "ControlMaster=auto", "-o", "ControlPersist=120"]
    }
    return ["-o", "ControlMaster=no"]
  }

  /// Opens the host's master on its own (before rsync, which cannot open one); returns a
  /// result to report if that failed.
  private func connect(_ host: Host, options: StepOptions) async -> StepResult? {
    switch readiness(host) {
    case .open: return nil
    case .failed(let result): return result
    case .needsMaster: break
    }
    let start = ContinuousClock.now
    let arguments = sshOptions(for: host, connectTimeout: options.connectTimeout) + masterOptions(true) + ["-N", "-f", host.connectAddress]
    let failure: StepResult?
    do {
      let output = try await execute("ssh", arguments)
      failure = output.status == 0 ? nil : SSHTransport.classifyConnectFailure(host, output.stderr, options.connectTimeout)
    } catch {
      failure = StepResult(status: .failed, message: "cannot start ssh: \(error)")
    }
    return recordConnect(host, failure: failure, since: start)
  }

  public func startNewRun() async {
    connections.withLock { connections in
      connections = connections.filter { if case .failed = $0.value { false } else { true } }
    }
    aptUpdated.withLock { $0 = [] }
    let kills = pendingKills.withLock { kills in
      defer { kills = [] }
      return kills
    }
    for kill in kills { await kill.value }
  }

  /// Says why ssh could not connect, in the operator's words.
  static func classifyConnectFailure(_ host: Host, _ stderr: String, _ timeout: Duration) -> StepResult {
    let text = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
    if text.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") || text.contains("Host key verification failed") {
      return StepResult(
        status: .failed, errorOutput: text,
        message: "host key of \(host.name) has changed; if the host was reinstalled, run 'cfi-sh hosts forget \(host.name)' to accept its new key")
    }
    let message: String
    if text.contains("timed out") {
      message = "connect timeout after \(Int(timeout.components.seconds))s"
    } else if text.contains("Permission denied") {
      message = "authentication failed (is the server's key in root's authorized_keys?)"
    } else if let last = text.split(separator: "\n").last {
      message = String(last).replacingOccurrences(of: "ssh: ", with: "")
    } else {
      message = "cannot connect"
    }
    return StepResult(status: .unreachable, errorOutput: text, message: message)
  }

  /// Runs a remote shell command over the host's master. `input` goes to its stdin (secrets
  /// travel this way, never in argv). A step timeout is enforced on the host too.
  func remote(_ host: Host, _ command: String, input: String? = nil, options: StepOptions) async -> (Output?, StepResult?) {
    let needsMaster: Bool
    switch readiness(host) {
    case .open: needsMaster = false
    case .needsMaster: needsMaster = true
    case .failed(let result): return (nil, result)
    }
    let start = ContinuousClock.now
    // The command runs in its own session on the host, tagged, so that a timeout (`timeout`
    // signals its whole process group) or an interrupt (`killRemote`) ends everything it
    // started — killing the local ssh alone would leave it running.
    let tag = "cfi-step-" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
    var inner = "sh -c \(ShellQuote.quote(command)) \(tag)"
    if let timeout = options.timeout {
      inner = "timeout -k 5 \(max(1, Int(timeout.components.seconds))) " + inner
    }
    var arguments = sshOptions(for: host, connectTimeout: options.connectTimeout) + masterOptions(needsMaster)
    arguments += [host.connectAddress, "--", "exec setsid -w " + inner]
    do {
      let output = try await withTaskCancellationHandler {
        try await execute("ssh", arguments, input: input)
      } onCancel: {
        killRemote(tag, on: host)
      }
      if needsMaster {
        // ssh's own failures exit 255; with no master left behind, the host was not reached
        // and the command never ran.
        let opened = FileManager.default.fileExists(atPath: "\(controlDirectory)/\(host.name)")
        let failure = !opened && output.status == 255
          ? SSHTransport.classifyConnectFailure(host, output.stderr, options.connectTimeout) : nil
        if let failure = recordConnect(host, failure: failure, since: start) { return (nil, failure) }
        if !opened { connections.withLock { $0[host.name] = nil } }
      } else if output.status == 255, !(await masterAlive(host, options: options)) {
        connections.withLock { $0[host.name] = nil }
        return (nil, StepResult(status: .unreachable, errorOutput: output.stderr, message: "connection to \(host.name) lost"))
      }
      if options.timeout != nil, output.status == 124 || output.status == 137 {
        var result = StepResult(status: .failed, exitCode: output.status, output: output.stdout, errorOutput: output.stderr)
        result.message = "timed out after \(Value(options.timeout!)) (the command was killed on the host)"
        return (nil, result)
      }
      return (output, nil)
    } catch {
      if Task.isCancelled { return (nil, StepResult(status: .interrupted)) }
      return (nil, StepResult(status: .failed, message: "cannot run ssh: \(error)"))
    }
  }

  /// Ends a tagged remote command's session (TERM, then KILL), over the host's master.
  /// Runs detached; `shutdown()` waits for it before closing the master.
  private func killRemote(_ tag: String, on host: Host) {
    // `[s]`: the pattern must not match this killer's own command line.
    let pattern = ShellQuote.quote(tag.replacingOccurrences(of: "cfi-step-", with: "cfi-[s]tep-"))
    let kill = """
      for s in TERM KILL; do for p in $(pgrep -f -- \(pattern)); do kill -$s -- -"$p" 2>/dev/null; done; \
      pgrep -f -- \(pattern) >/dev/null || exit 0; sleep 1; done
      """
    let arguments =
      sshOptions(for: host, connectTimeout: .seconds(5)) + ["-o", "ControlMaster=no", host.connectAddress, "--", kill]
    let task = Task.detached { _ = try? await self.execute("ssh", arguments) }
    pendingKills.withLock { $0.append(task) }
  }

  private func masterAlive(_ host: Host, options: StepOptions) async -> Bool {
    let arguments = sshOptions(for: host, connectTimeout: options.connectTimeout) + ["-O", "check", host.connectAddress]
    return (try? await execute("ssh", arguments))?.status == 0
  }

  // MARK: - Transport

  public func perform(_ action: Action, on host: Host, options: StepOptions) async -> StepResult {
    let clock = ContinuousClock()
    let start = clock.now
    var result = await ActionScripts(transport: self, store: store).perform(action, on: host, options: options)
    if Task.isCancelled && result.status != .ok && result.status != .changed { result.status = .interrupted }
    result.duration = clock.now - start
    return result
  }

  public func shutdown() async {
    for kill in pendingKills.withLock({ $0 }) { await kill.value }
    // Every socket in the directory, not only the masters recorded open: a first command
    // interrupted just as its master came up leaves one that was never recorded.
    let sockets = (try? FileManager.default.contentsOfDirectory(atPath: controlDirectory)) ?? []
    // Each master is told to exit over its socket, in-process; `ssh -O exit` only where
    // that fails (an OpenSSH speaking another mux version).
    let refused = sockets.filter { !MuxControl.terminate(path: "\(controlDirectory)/\($0)") }
    await withTaskGroup(of: Void.self) { group in
      for name in refused {
        group.addTask {
          let host = Host(name: name)
          let arguments = self.sshOptions(for: host, connectTimeout: .seconds(5)) + ["-O", "exit", "cfi-control"]
          _ = try? await self.execute("ssh", arguments)
        }
      }
    }
    try? FileManager.default.removeItem(atPath: controlDirectory)
  }

  /// Whether the host's package lists still need refreshing in this run.
  func needsAptUpdate(_ host: Host) -> Bool { !aptUpdated.withLock { $0.contains(host.name) } }
  func markAptUpdated(_ host: Host) { _ = aptUpdated.withLock { $0.insert(host.name) } }

  /// Opens the host's master if needed; a result to report if that failed.
  func connectFailure(_ host: Host, options: StepOptions) async -> StepResult? {
    await connect(host, options: options)
  }

  /// rsync's `-e` value: ssh with this run's options, over the host's master.
  func rsyncShell(for host: Host, options: StepOptions) -> String {
    (["ssh"] + sshOptions(for: host, connectTimeout: options.connectTimeout) + ["-o", "ControlMaster=no"])
      .map(ShellQuote.quote).joined(separator: " ")
  }

  /// Runs rsync (locally) over the host's master.
  func rsync(_ arguments: [String]) async throws -> Output {
    try await execute("rsync", arguments)
  }
}

/// A duration for messages (`30s`).
private struct Value: CustomStringConvertible {
  let duration: Duration
  init(_ duration: Duration) { self.duration = duration }
  var description: String { "\(duration.components.seconds)s" }
}
