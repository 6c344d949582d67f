// The `cfi-sh` command: runs CFIScript runbooks (files, `-c` text, stdin, shebang scripts).

import ArgumentParser
import CFIScript
import Foundation
import Runtime


struct CFISh: AsyncParsableCommand {
  static let version = "0.1.0"

  static let configuration = CommandConfiguration(
    commandName: "cfi-sh",
    abstract: "Configure a pool of Linux machines: run CFIScript runbooks on them over ssh and rsync.",
    usage: """
      cfi-sh [OPTIONS]                        (interactive shell, on a terminal)
        cfi-sh [OPTIONS] RUNBOOK [ARGS...]
        cfi-sh [OPTIONS] -c TEXT [ARGS...]
        cfi-sh [OPTIONS] - [ARGS...]          (runbook on standard input)
      """,
    discussion: """
      A runbook says what to do on which hosts, for example
          on group lab < install lines("packages.list"); upgrade >

      Options go before RUNBOOK; what follows it is the runbook's own
      (the list `args`), but an option of cfi-sh's there is refused
      (exit 64); after '--' all is the runbook's: cfi-sh RUNBOOK -- --check.
      Runbooks can be scripts (#!/usr/bin/env cfi-sh). The language:
      cfi-sh-language(5), or docs/language.md.

      INTERACTIVE SHELL
        With no runbook on a terminal, cfi-sh is a shell (readline) that
        speaks the same language; variables, defs, groups and connections
        live for the session. ':help' lists its commands (:hosts, :groups,
        :discover, :target, :check, :diff, :set, :last, :failed,
        :unreachable, :rerun, :log, :save, :load, :quit). Ctrl-C stops the
        running entry, Ctrl-D quits. History: ~/.cfi_history (hashes
        redacted).

      TOOLS
        cfi-sh hosts [PATTERN]      list known hosts (--json)
        cfi-sh hosts accept NAME    accept a pending (announced) host;
                                    'hosts reject' refuses one
        cfi-sh hosts forget NAME    forget a host's pinned ssh key
        cfi-sh discover             who announces itself now
        cfi-sh log [RUN]            the run history: recent runs, one run
                                    ('last'), or one host's (--json)
        cfi-sh run TARGET COMMAND   run one command: cfi-sh run @lab 'uname -r'
        cfi-sh deliver RUNBOOK      run it, and later on the hosts that were
                                    off ('cfi-sh help deliver')
        cfi-sh deliveries           what is owed to hosts that were off;
                                    'deliveries cancel ID', 'deliveries show ID'
        cfi-sh nodeset SET          expand, fold or count host sets
        cfi-sh connections          ssh connections kept open after runs;
                                    'connections close [PATTERN]' ends them
        cfi-sh watch                run the deliveries owed to hosts that
                                    were off (--deliver) when they come
                                    back: a service, or one pass for cron
        cfi-sh server init          create the server's ssh key
        cfi-sh server bootstrap-script
                                    a script that makes freshly installed
                                    machines clients (preseed, cloud-init)
        cfi-sh client enroll        (on a client) announce it, trust the
                                    server's key

      FILES
        /var/lib/cfi/GROUP/         files per group, laid out as on the
                                    client's / (the store)
        /var/lib/cfi/.fetched/HOST/ what 'fetch PATH' copied from each host
        /etc/cfi/clients            static client list, one host a line:
                                    NAME [address=A] [port=P] [user=U] [group=G]
        /etc/cfi/id_ed25519         the server's ssh key
        /etc/cfi/server.conf        accept = pending (default: a host known
                                    only from its announcement waits for
                                    'cfi-sh hosts accept') or auto;
                                    keep_history = 90d (runs older than
                                    that leave the history) or forever;
                                    persist = 5m (how long connections
                                    stay open after a run) or 0
        /run/cfi/persist/           connections kept open after a run
                                    (root only: 'cfi-sh connections')
        /etc/dsh/group/NAME         dsh group files: more groups of hosts
        /var/lib/cfi/.cfi/state.sqlite
                                    the state database: run history
                                    ('cfi-sh log', --limit @failed), known
                                    and pending hosts, deliveries owed
        /var/log/cfi/audit.log      one JSON line per run and host result

      ENVIRONMENT
        CFI_STORE, CFI_CLIENTS, CFI_IDENTITY, CFI_SSH_CONFIG, CFI_AUDIT_LOG
                                    defaults for --store, -i, --identity,
                                    --ssh-config and --audit-log (useful for
                                    shebang scripts and cron, where the
                                    options cannot be given)
        CFI_DSH_GROUPS              dsh's group directory (/etc/dsh/group)
        CFI_SERVER_CONF             the server's configuration file
        CFI_HISTORY                 the shell's history file (~/.cfi_history;
                                    empty: no history file)
        CFI_RUNTIME_DIR             where ssh control sockets go (/run/cfi
                                    for root, else $XDG_RUNTIME_DIR/cfi)
        CFI_PERSIST                 default for --persist

      EXIT STATUS
        0    every host ok or changed
        1    the runbook is wrong and nothing ran, or an error on the
             server stopped the run (see the message)
        2    (bit) some hosts failed
        4    (bit) some hosts were unreachable; 6 = both
        8    (bit) an 'on' block matched no host, so nothing ran there
             (a warning names its target); e.g. 9 = with an error
        64   command-line usage error
        75   another run holds the store's lock: at once with --no-wait,
             else after waiting --lock-wait (10m); the message names
             the holder's pid and when it started
        129, 130, 141, 143
             stopped by SIGHUP, SIGINT (Ctrl-C), a closed standard
             output (SIGPIPE's status) or SIGTERM: remote commands
             killed, hosts 'interrupted', the run recorded; a second
             signal while it stops quits at once
      """,
    version: CFISh.version
  )

  @Option(name: .customShort("c"), help: ArgumentHelp("Run TEXT as the runbook.", valueName: "text"))
  var command: String?

  @Flag(name: [.customShort("n"), .customLong("syntax-check")], help: "Parse and check the runbook; run nothing.")
  var syntaxCheck = false

  @Flag(help: "Dry run: report what would change on each host, change nothing.")
  var check = false

  @Flag(
    help: "Show what changes on each host (with --check: what would): a unified diff per text file that copy or sync changes, package versions from → to for install, remove, upgrade and pkgsync.")
  var diff = false

  @Flag(help: "Write events as JSON Lines on standard output (see docs/json-events.md).")
  var json = false

  @Option(name: .shortAndLong, help: ArgumentHelp("The static client list.", valueName: "file"), completion: .file())
  var inventory: String?

  @Option(help: ArgumentHelp("The store: one directory of files per group (default /var/lib/cfi).", valueName: "dir"), completion: .directory)
  var store: String?

  @Option(name: [.customShort("p"), .long], help: ArgumentHelp("Hosts worked on at once (default 64; fewer, said once, where file descriptors run short); overrides 'set parallel'.", valueName: "n"))
  var parallel: Int?

  @Option(help: ArgumentHelp("Limit per step on a host, e.g. 30s or 5m (default 1h; 'none' for no limit); overrides 'set timeout'.", valueName: "duration"))
  var timeout: String?

  @Option(help: ArgumentHelp("Limit for connecting to a host (default 10s); overrides 'set connect_timeout'.", valueName: "duration"))
  var connectTimeout: String?

  @Option(help: ArgumentHelp("Limit for a host to come back from 'reboot' (default 10m); overrides 'set reboot_timeout'.", valueName: "duration"))
  var rebootTimeout: String?

  @Option(help: ArgumentHelp("The server's ssh key (default /etc/cfi/id_ed25519, made by 'cfi-sh server init').", valueName: "file"), completion: .file())
  var identity: String?

  @Option(help: ArgumentHelp("An ssh_config file for ssh and rsync.", valueName: "file"), completion: .file())
  var sshConfig: String?

  @Option(
    help: ArgumentHelp(
      "Reach only these hosts, in every block: patterns (pc[01-10], @lab), @failed, @unreachable or @changed (each host's latest result with this runbook), !SET to leave hosts out. Repeatable.",
      valueName: "set"), completion: CompletionKind.hosts)
  var limit: [String] = []

  @Flag(
    help: "Deliver: every targeted host found unreachable gets the runbook later, when it comes back ('cfi-sh watch' runs it; 'cfi-sh deliveries' lists what is owed). Same as 'cfi-sh deliver'.")
  var deliver = false

  @Option(
    help: ArgumentHelp(
      "Give up a delivery not made within DURATION, e.g. 7d (default: never); for the deliveries the run records (--deliver, 'set deliver = until_done').",
      valueName: "duration"))
  var expire: String?

  @Option(
    help: ArgumentHelp(
      "Keep ssh connections open this long after the run, for the next run to reuse (default 5m, or server.conf's persist; 0: close them at the run's end); overrides 'set persist'. 'cfi-sh connections' lists them.",
      valueName: "duration"))
  var persist: String?

  @Flag(help: "Use only the client list, dsh groups and known clients: do not browse for announced hosts.")
  var noDiscovery = false

  @Flag(help: "Fail at once if another run holds the store's lock, instead of waiting for it.")
  var noWait = false

  @Option(help: ArgumentHelp("How long to wait for another run's lock on the store before giving up with status 75 (default 10m; 'none' to wait as long as it takes).", valueName: "duration"))
  var lockWait: String?

  @Option(help: ArgumentHelp("The audit log: one JSON line per run and per host result (default /var/log/cfi/audit.log; 'none' to disable).", valueName: "file"), completion: .file())
  var auditLog: String?

  @Flag(help: "Do not record this run in the store's run history ('cfi-sh log'; --limit @failed then cannot find it). The audit log still records it.")
  var noHistory = false

  @Option(help: ArgumentHelp("Also write each host's output of each step into files under DIR (DIR/HOST/NN.stdout, .stderr, and DIR/HOST/steps).", valueName: "dir"), completion: .directory)
  var outputDir: String?

  @Flag(name: .shortAndLong, help: "Show only failures and the recap.")
  var quiet = false

  @Flag(name: .shortAndLong, help: "Show every host's result as it arrives, with all output.")
  var verbose = false

  @Argument(help: ArgumentHelp("The runbook file; '-' reads standard input.", valueName: "runbook"), completion: .file(extensions: ["cfi"]))
  var runbook: String?

  @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("Arguments for the runbook (its `args`).", valueName: "args"))
  var arguments: [String] = []

  func validate() throws {
    if let parallel, parallel < 1 { throw ValidationError("--parallel must be at least 1") }
    if quiet && verbose { throw ValidationError("--quiet and --verbose exclude each other") }
    if let timeout { _ = try parseLimit(timeout, option: "--timeout") }
    if let lockWait { _ = try parseLimit(lockWait, option: "--lock-wait") }
    if noWait && lockWait != nil { throw ValidationError("--no-wait and --lock-wait exclude each other") }
    if let connectTimeout { _ = try parseDuration(connectTimeout, option: "--connect-timeout") }
    if let rebootTimeout { _ = try parseDuration(rebootTimeout, option: "--reboot-timeout") }
    if let expire { _ = try parseDuration(expire, option: "--expire") }
    if let persist { _ = try parsePersist(persist, option: "--persist") }
    if deliver && check { throw ValidationError("--deliver and --check exclude each other: a dry run delivers nothing") }
  }

  /// The options of this command line that shape how a run goes, as words, kept with a
  /// delivery so that it runs later as it would have now: parallel and the limits.
  var runShapingOptions: [String] {
    var words: [String] = []
    if let parallel { words += ["--parallel", String(parallel)] }
    if let timeout { words += ["--timeout", timeout] }
    if let connectTimeout { words += ["--connect-timeout", connectTimeout] }
    if let rebootTimeout { words += ["--reboot-timeout", rebootTimeout] }
    if diff { words.append("--diff") }
    return words
  }

  /// An option's value: given on the command line, else from the environment variable.
  static func setting(_ value: String?, _ variable: String) -> String? {
    value ?? ProcessInfo.processInfo.environment[variable].flatMap { $0.isEmpty ? nil : $0 }
  }

  var storeRoot: String { CFISh.setting(store, "CFI_STORE") ?? Store.defaultRoot }
  var clientList: String? { CFISh.setting(inventory, "CFI_CLIENTS") }
  var identityFile: String? { CFISh.setting(identity, "CFI_IDENTITY") }
  var sshConfigFile: String? { CFISh.setting(sshConfig, "CFI_SSH_CONFIG") }
  var dshGroupDirectory: String { CFISh.setting(nil, "CFI_DSH_GROUPS") ?? Inventory.dshGroupDirectory }
  var auditLogPath: String { CFISh.setting(auditLog, "CFI_AUDIT_LOG") ?? AuditLog.defaultPath }
  var persistWindow: String? { CFISh.setting(persist, "CFI_PERSIST") }
  /// The server's configuration: `CFI_SERVER_CONF` or /etc/cfi/server.conf.
  static var configurationFile: String { setting(nil, "CFI_SERVER_CONF") ?? ServerConfiguration.defaultPath }

  /// The settings the command line gives, and their names: `set` in a runbook does not
  /// override those.
  func commandLineSettings() throws -> (RunSettings, locked: Set<String>) {
    var settings = RunSettings()
    var locked: Set<String> = []
    if let parallel {
      settings.parallel = parallel
      locked.insert("parallel")
    }
    if let timeout {
      settings.timeout = try parseLimit(timeout, option: "--timeout")
      locked.insert("timeout")
    }
    if let connectTimeout {
      settings.connectTimeout = try parseDuration(connectTimeout, option: "--connect-timeout")
      locked.insert("connect_timeout")
    }
    if let rebootTimeout {
      settings.rebootTimeout = try parseDuration(rebootTimeout, option: "--reboot-timeout")
      locked.insert("reboot_timeout")
    }
    try CFISh.applyPersist(persistWindow, configuration: { try ServerConfiguration.load(CFISh.configurationFile) }, to: &settings, locked: &locked)
    return (settings, locked)
  }

  /// The window of `--persist` (or `CFI_PERSIST`, given as `window`), which `set persist` does
  /// not override; else server.conf's `persist`, a default that `set persist` does; else
  /// `RunSettings.defaultPersist`.
  static func applyPersist(
    _ window: String?, configuration: () throws -> ServerConfiguration, to settings: inout RunSettings, locked: inout Set<String>
  ) throws {
    if let window {
      settings.persist = try parsePersist(window, option: "--persist")
      locked.insert("persist")
      return
    }
    do {
      if let site = try configuration().persist { settings.persist = site }
    } catch let error as InventorySourceError {
      throw CommandFailure(error)
    }
  }

  /// The `--limit` of this command line for the runbook `name` (`@failed` and the like read
  /// its last real run on this store: `LastRun.find`); nil without one.
  func runLimit(inventory: Inventory, runbook name: String, source: String? = nil) throws -> RunLimit? {
    guard !limit.isEmpty else { return nil }
    var last: LastRun?? = nil
    let store = storeRoot
    let log = auditLogPath
    do {
      return try RunLimit.parse(limit, members: { inventory.hosts(inGroup: $0).map(\.name) }) { status throws(HostPatternError) in
        if last == nil {
          last = .some(
            LastRun.find(
              store: Store(root: store), auditLog: log == "none" ? nil : log, runbook: name, source: source,
              warning: { Stream.standardError.write("cfi-sh: \($0)\n") }))
        }
        guard let found = last ?? nil else {
          let audit = log == "none" ? "" : " nor in the audit log '\(log)'"
          throw HostPatternError(
            message: "--limit @\(status): no earlier run of \(name) on \(store), neither in its run history\(audit)", offset: 0)
        }
        return found.hosts(status)
      }
    } catch {
      throw CommandFailure(message: error.message, status: ExitStatus.usage)
    }
  }

  /// How long a run waits for another run's lock: `--lock-wait`, else 10 minutes, so that a
  /// run stuck behind a hung one ends (status 75) instead of queueing forever; nil: no limit.
  func lockWaitLimit() throws -> Duration? {
    guard let lockWait else { return CFISh.defaultLockWait }
    return try parseLimit(lockWait, option: "--lock-wait")
  }

  static let defaultLockWait: Duration = .seconds(600)

  /// No runbook, no `-c`, and a person at a terminal: the interactive shell.
  var interactive: Bool { command == nil && runbook == nil && isatty(0) == 1 && isatty(1) == 1 }

  func run() async throws {
    if interactive {
      if json || syntaxCheck { throw ValidationError("--json and -n need a runbook; the interactive shell takes neither") }
      if deliver || expire != nil {
        throw ValidationError("--deliver and --expire need a runbook: the interactive shell records no deliveries")
      }
      do {
        let status = try await Repl(options: self).run()
        throw ExitCode(status)
      } catch let failure as CommandFailure {
        Stream.standardError.write("cfi-sh: \(failure.message)\n")
        throw ExitCode(failure.status)
      }
    }
    let status = try await RunbookRunner(options: self).run()
    throw ExitCode(status)
  }
}

/// Parses a command-line duration: a duration literal as in runbooks (`30s`, `5m`, `1h`, `2d`,
/// `250ms`), or a bare number of seconds.
func parseDuration(_ text: String, option: String) throws -> Duration {
  do throws(DurationTextError) {
    return try Duration(cfiText: text.allSatisfy { $0.isASCII && $0.isNumber } && !text.isEmpty ? text + "s" : text)
  } catch {
    throw ValidationError("\(option): \(error.message), or a number of seconds")
  }
}

/// Parses `--persist`: a duration as `parseDuration` reads it, 0, or at least a second (ssh
/// counts whole seconds).
func parsePersist(_ text: String, option: String) throws -> Duration {
  let window = try parseDuration(text, option: option)
  guard window == .zero || window >= .seconds(1) else { throw ValidationError("\(option): 0, or at least 1s") }
  return window
}

/// Parses a limit of the command line: a duration as `parseDuration` reads it, or `none` (nil:
/// no limit).
func parseLimit(_ text: String, option: String) throws -> Duration? {
  if text == "none" { return nil }
  do {
    return try parseDuration(text, option: option)
  } catch let error as ValidationError {
    throw ValidationError(error.message + ", or none")
  }
}

extension CFISh {
  /// Every spelling of cfi-sh's own options (a test holds it to what `--help` shows).
  static let optionNames: Set<String> = [
    "-c", "-n", "--syntax-check", "--check", "--diff", "--json", "-i", "--inventory", "--store", "-p", "--parallel", "--timeout",
    "--connect-timeout", "--reboot-timeout", "--identity", "--ssh-config", "--limit", "--deliver", "--expire", "--persist", "--no-discovery",
    "--no-wait", "--lock-wait",
    "--audit-log", "--no-history", "--output-dir", "-q", "--quiet", "-v", "--verbose", "-h", "--help", "--version",
  ]

  /// The first of the runbook's arguments, before a `--`, that is an option of cfi-sh's:
  /// `site.cfi --check` is a habit from other tools, and as the runbook's argument it would
  /// run for real. Short options count in clusters and with a value attached (`-qv`, `-p8`).
  static func ownOption(in arguments: [String]) -> String? {
    for argument in arguments {
      if argument == "--" { return nil }
      guard argument.hasPrefix("-"), argument.count > 1 else { continue }
      let name = argument.hasPrefix("--") ? String(argument.prefix { $0 != "=" }) : String(argument.prefix(2))
      if optionNames.contains(name) { return argument }
    }
    return nil
  }

  /// The runbook's arguments: the words after RUNBOOK, without the first `--`.
  static func runbookArguments(_ words: [String]) -> [String] {
    guard let separator = words.firstIndex(of: "--") else { return words }
    return Array(words[..<separator] + words[(separator + 1)...])
  }
}
