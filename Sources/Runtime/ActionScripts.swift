// What each action does on a host, as remote shell scripts and rsync calls. Each reports
// ok / changed / failed precisely and honours check mode.

import Foundation

/// Performs actions through an SSHTransport.
struct ActionScripts {
  let transport: SSHTransport
  let store: Store

  func perform(_ action: Action, on host: Host, options: StepOptions) async -> StepResult {
    switch action {
    case .run(let command):
      return await run(command, on: host, options: options)
    case .script(let path, let arguments):
      return await script(path, arguments, on: host, options: options)
    case .password(let user, let hash):
      return await password(user, hash, on: host, options: options)
    case .install(let packages):
      return await apt("install", packages, on: host, options: options)
    case .remove(let packages):
      return await apt("remove", packages, on: host, options: options)
    case .upgrade:
      return await apt("upgrade", [], on: host, options: options)
    case .copy(let path, let destination):
      return await copy(path, to: destination, on: host, options: options)
    case .sync:
      return await copy("", to: nil, on: host, options: options)
    case .pkgsync:
      return await pkgsync(on: host, options: options)
    }
  }

  /// The result of a finished remote command: ok on exit 0, else failed with the exit code.
  private func finished(_ output: SSHTransport.Output, changed: Bool = false) -> StepResult {
    StepResult(
      status: output.status == 0 ? (changed ? .changed : .ok) : .failed, exitCode: output.status,
      output: output.stdout, errorOutput: output.stderr)
  }

  // MARK: - run, script

  private func run(_ command: String, on host: Host, options: StepOptions) async -> StepResult {
    if options.check {
      let (_, failure) = await transport.remote(host, "true", options: options)
      return failure ?? StepResult(status: .skipped, message: "would run")
    }
    let (output, failure) = await transport.remote(host, command, options: options)
    return failure ?? finished(output!)
  }

  private func script(_ path: String, _ arguments: [String], on host: Host, options: StepOptions) async -> StepResult {
    let file: String
    do { file = try store.resolve(path, group: host.group) } catch { return .failure(error.message) }
    guard let body = try? String(contentsOfFile: file, encoding: .utf8) else {
      return .failure("cannot read script '\(file)'")
    }
    if options.check {
      let (_, failure) = await transport.remote(host, "true", options: options)
      return failure ?? StepResult(status: .skipped, message: "would run \(path)")
    }
    // Upload through stdin to a private temp file, run it, remove it whatever happens.
    let command = """
      t=$(mktemp /tmp/cfi-script.XXXXXX) || exit 125; trap 'rm -f "$t"' EXIT; cat >"$t" && chmod 0700 "$t" && "$t" \(ShellQuote.join(arguments))
      """
    let (output, failure) = await transport.remote(host, command, input: body, options: options)
    return failure ?? finished(output!)
  }

  // MARK: - password

  private func password(_ user: String, _ hash: Secret, on host: Host, options: StepOptions) async -> StepResult {
    guard CryptHash.isValid(hash.revealed) else { return .failure(CryptHash.invalidMessage) }
    // The hash comes on stdin, never in argv. Compare first: an unchanged hash is `ok`.
    let apply = options.check ? "echo would-change" : "printf '%s:%s\\n' \"$u\" \"$h\" | chpasswd -e && echo changed"
    let command = """
      u=\(ShellQuote.quote(user)); IFS= read -r h; e=$(getent shadow "$u") || { echo "no user $u" >&2; exit 3; }; \
      c=$(printf '%s' "$e" | cut -d: -f2); if [ "$c" = "$h" ]; then echo unchanged; else \(apply); fi
      """
    let (output, failure) = await transport.remote(host, command, input: hash.revealed + "\n", options: options)
    if let failure { return failure }
    var result = finished(output!)
    result.output = ""
    switch output!.stdout.trimmingCharacters(in: .whitespacesAndNewlines) {
    case "changed": result.status = .changed
    case "would-change":
      result.status = .changed
      result.message = "would change the password of \(user)"
    default: break
    }
    return result
  }

  // MARK: - packages

  private func apt(_ verb: String, _ names: [String], on host: Host, options: StepOptions) async -> StepResult {
    if let bad = names.first(where: { !PackageName.isValid($0) }) {
      return .failure("'\(bad)' is not a valid Debian package name")
    }
    if verb != "upgrade" && names.isEmpty { return StepResult(status: .ok, message: "nothing to \(verb)") }
    let apt = "apt-get -q -y -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"
    let arguments = verb == "upgrade" ? "upgrade" : ShellQuote.join([verb, "--"] + names)
    // C locale: the lines parsed below (Inst/Remv/Conf, dpkg's Unpacking/Removing/Setting up)
    // would be translated under the LANG that ssh passes on.
    var command = "export LC_ALL=C DEBIAN_FRONTEND=noninteractive; "
    // Refresh the package lists once per host per run (not in check mode: it changes nothing).
    // DPkg::Lock::Timeout covers the dpkg lock only: `apt-get update` fails at once while another
    // update (a cron job's) holds the lists lock, so wait for that lock here.
    if transport.needsAptUpdate(host) && !options.check {
      command += """
        n=0; until u=$(\(apt) update 2>&1); do case $u in *'Could not get lock'*) if [ $n -lt 600 ]; then \
        n=$((n+1)); sleep 1; continue; fi;; esac; printf '%s\\n' "$u" >&2; exit 100; done; echo \(Self.aptUpdated); 
        """
    }
    // Simulate first (no lock needed): when nothing is due the host is `ok` at once, even while
    // another apt holds the dpkg lock. In check mode the simulated plan is the answer.
    command += """
      sim=$(\(apt) -s \(arguments) 2>&1) || { printf '%s\\n' "$sim" >&2; exit 100; }; \
      plan=$(printf '%s\\n' "$sim" | grep -E '^(Inst|Remv|Conf) '); [ -n "$plan" ] || exit 0; 
      """
    if options.check {
      command += "printf '%s\\n' \"$plan\""
    } else {
      // What dpkg really did (not the plan: another apt may have done it meanwhile) decides
      // `changed`; apt's whole output is shown only when it failed.
      command += """
        log=$(mktemp) || exit 125; trap 'rm -f "$log"' EXIT; \(apt) \(arguments) >"$log" 2>&1; rc=$?; \
        grep -E '^(Unpacking|Removing|Setting up) ' "$log" | tr -d '\\r' | sed "s/:$(dpkg --print-architecture) / /"; \
        [ $rc -eq 0 ] || { cat "$log" >&2; exit $rc; }
        """
    }
    let (output, failure) = await transport.remote(host, command, options: options)
    if let failure { return failure }
    // dpkg writes through apt's pty: its lines end in "\r\n" (one Character in Swift).
    let lines = output!.stdout.split(whereSeparator: \.isNewline).map(String.init)
    if lines.contains(Self.aptUpdated) { transport.markAptUpdated(host) }
    var result = finished(output!)
    let changes = PackageChange.parse(lines.filter { $0 != Self.aptUpdated })
    result.output = changes.map(\.description).joined(separator: "\n")
    if result.status == .failed {
      result.message = Self.aptErrors(output!.stderr)
    } else if !changes.isEmpty {
      result.status = .changed
      result.message = (options.check ? "would change: " : "") + PackageChange.summary(changes)
    }
    return result
  }

  /// pkgsync's and aptitude's error lines (`Error: Missing files in /etc/pkgsync…`, `Couldn't
  /// find any package whose name or description matched "x"`, `E: …`), as one line.
  static func pkgsyncErrors(_ errorOutput: String) -> String {
    let markers = ["E: ", "Error", "Couldn't find", "Unable to", "Internal error"]
    let errors = errorOutput.split(whereSeparator: \.isNewline).filter { line in markers.contains { line.hasPrefix($0) } }
    return errors.isEmpty ? "pkgsync failed" : errors.joined(separator: "; ")
  }

  /// The marker line the remote script prints once `apt-get update` succeeded.
  private static let aptUpdated = "cfi:apt-updated"

  /// apt's error lines (`E: Unable to locate package x`), as one line for the message.
  static func aptErrors(_ errorOutput: String) -> String? {
    let errors = errorOutput.split(whereSeparator: \.isNewline).filter { $0.hasPrefix("E: ") }.map { $0.dropFirst(3) }
    return errors.isEmpty ? nil : errors.joined(separator: "; ")
  }

  // MARK: - copy, sync, pkgsync

  private func copy(_ path: String, to destination: String?, on host: Host, options: StepOptions) async -> StepResult {
    let source: String
    do {
      source = path.isEmpty ? try store.resolve(".", group: host.group) : try store.resolve(path, group: host.group)
    } catch { return .failure(error.message) }
    if let destination, !destination.hasPrefix("/") {
      return .failure("the destination of 'copy' must be an absolute path, not '\(destination)'")
    }
    if let failure = await transport.connectFailure(host, options: options) { return failure }
    var isDirectory: ObjCBool = false
    _ = FileManager.default.fileExists(atPath: source, isDirectory: &isDirectory)
    let relative = (try? Store.normalizedRelativePath(path.isEmpty ? "." : path)) ?? ""
    var target = destination ?? "/" + relative
    var from = source
    if isDirectory.boolValue {
      from += "/"
      if !target.hasSuffix("/") { target += "/" }
    }
    // -rlpt: contents, symlinks as links, modes, times, owned by root; --mkpath: missing parents.
    // --delay-updates: every file lands by rename at the end, so a dropped link never leaves a
    // half-written file. Never --delete.
    var arguments = [
      "-rlptD", "--chown=root:root", "--omit-dir-times", "--mkpath", "--delay-updates", "--itemize-changes",
      "--protect-args", "-e", transport.rsyncShell(for: host, options: options),
    ]
    // A tree's directories exist on the client already (/, /etc, …): their modes must stay the
    // client's (rsync -p would give them the store's), so a tree keeps the modes of what
    // exists; new files get the store's modes.
    if isDirectory.boolValue { arguments.append("--no-perms") }
    if options.check { arguments.append("--dry-run") }
    if let timeout = options.timeout { arguments.append("--timeout=\(max(1, timeout.components.seconds))") }
    // Files at the top of a group's tree (packages.list, scripts) are the server's own:
    // nothing belongs in the client's `/` itself, so `sync` sends only the directories.
    if path.isEmpty { arguments += ["--include=/*/", "--exclude=/*"] }
    arguments += [from, "\(host.connectAddress):\(target)"]
    do {
      let output = try await transport.rsync(arguments)
      let changes = output.stdout.split(separator: "\n").filter { !$0.hasPrefix(".") }.map(String.init)
      var result = StepResult(
        status: output.status == 0 ? (changes.isEmpty ? .ok : .changed) : .failed, exitCode: output.status,
        output: "", errorOutput: output.stderr)
      if !changes.isEmpty {
        result.message = (options.check ? "would change " : "") + "\(changes.count) file\(changes.count == 1 ? "" : "s")"
        result.output = changes.joined(separator: "\n")
      }
      return result
    } catch {
      return .failure("cannot run rsync: \(error)")
    }
  }

  private func pkgsync(on host: Host, options: StepOptions) async -> StepResult {
    let lists: [String: [String]]
    do throws(StoreError) { lists = try Pkgsync.checkedLists(in: store, group: host.group) } catch {
      return .failure(error.message)
    }
    // Patterns in maynothave are expanded by aptitude on the host, as pkgsync does: refuse the
    // set, before the lists reach the host, if one of them names an essential package.
    let patterns = lists["maynothave", default: []].filter(Pkgsync.isPattern)
    if !patterns.isEmpty {
      let essential = Pkgsync.essential.joined(separator: "|")
      let command = """
        export LC_ALL=C; for p in \(ShellQuote.join(patterns)); do aptitude -q -F '%p' search "$p" | tr -d ' \t' \
        | grep -x -E '\(essential)' | while read -r n; do printf '%s %s\\n' "$n" "$p"; done; done | head -1
        """
      let (output, failure) = await transport.remote(host, command, options: options)
      if let failure { return failure }
      let hit = output!.stdout.split(separator: "\n").first.map { $0.split(separator: " ", maxSplits: 1) }
      if let hit, hit.count == 2 {
        return .failure(
          "refusing pkgsync for group '\(host.group)': its maynothave pattern '\(hit[1])' matches '\(hit[0])', which a client needs to stay manageable")
      }
    }
    // All three lists always go together: pkgsync refuses to run with one missing.
    let pushed = await copy("etc/pkgsync/", to: "/etc/pkgsync/", on: host, options: options)
    guard pushed.status == .ok || pushed.status == .changed else { return pushed }
    if options.check {
      // `pkgsync -s` would refresh package lists and read the host's old lists: say instead.
      let listsChange = pushed.status == .changed
      return StepResult(
        status: listsChange ? .changed : .skipped,
        message: listsChange ? "would update /etc/pkgsync and run pkgsync" : "would run pkgsync")
    }
    // `pkgsync -k`: install musthave, remove maynothave, keep every other package. Plain
    // pkgsync also removes each installed package that nothing listed needs — on a real host
    // everything a list forgot (kernel, boot loader, the tools of the day). pkgsync marks every
    // unlisted package automatically installed (`&M`), which -k tolerates but a later
    // `apt autoremove` would act on: the manual marks it took are given back.
    let command = """
      export LC_ALL=C; m=$(mktemp) && o=$(mktemp) || exit 125; trap 'rm -f "$m" "$o"' EXIT; \
      apt-mark showmanual | sort >"$m"; pkgsync -k >"$o" 2>&1; rc=$?; \
      apt-mark showauto | sort | comm -12 - "$m" | xargs -r apt-mark manual >/dev/null; \
      grep -E '^(Unpacking|Removing|Setting up) ' "$o" | tr -d '\\r' | sed "s/:$(dpkg --print-architecture) / /"; \
      [ $rc -eq 0 ] || { cat "$o" >&2; exit $rc; }
      """
    let (output, failure) = await transport.remote(host, command, options: options)
    if let failure { return failure }
    var result = finished(output!)
    let changes = PackageChange.parse(output!.stdout.split(whereSeparator: \.isNewline).map(String.init))
    result.output = changes.map(\.description).joined(separator: "\n")
    if result.status == .failed {
      result.message = Self.pkgsyncErrors(output!.stderr)
      return result
    }
    var summary: [String] = []
    if pushed.status == .changed { summary.append("updated /etc/pkgsync") }
    if !changes.isEmpty { summary.append(PackageChange.summary(changes)) }
    if !summary.isEmpty {
      result.status = .changed
      result.message = summary.joined(separator: "; ")
    }
    return result
  }
}

/// One package change, from apt-get's simulation (`Inst`, `Remv`, `Conf` lines) or from what
/// dpkg reported doing (`Unpacking`, `Removing`, `Setting up` lines, C locale).
struct PackageChange: Equatable, CustomStringConvertible {
  enum Kind: String { case install, upgrade, remove, configure }
  var kind: Kind
  var name: String
  var from: String?
  var to: String?

  /// `install cfi-test-b 1.0`, `upgrade cfi-test-a 1.0 -> 1.1`, `remove cfi-test-a 1.0`.
  var description: String {
    switch kind {
    case .upgrade: "upgrade \(name) \(from ?? "?") -> \(to ?? "?")"
    case .remove: "remove \(name)" + (from.map { " " + $0 } ?? "")
    case .install, .configure: "\(kind.rawValue) \(name)" + (to.map { " " + $0 } ?? "")
    }
  }

  /// `+new +upgraded -removed`, in the order apt or dpkg gave them.
  static func summary(_ changes: [PackageChange]) -> String {
    changes.map { ($0.kind == .remove ? "-" : "+") + $0.name }.joined(separator: " ")
  }

  /// The changes that `lines` describe; a package that is unpacked (or installed) and then
  /// configured counts once.
  static func parse(_ lines: [String]) -> [PackageChange] {
    var changes: [PackageChange] = []
    func add(_ change: PackageChange) {
      if let index = changes.firstIndex(where: { $0.name == change.name }) {
        if change.kind != .configure { changes[index] = change }
      } else {
        changes.append(change)
      }
    }
    for line in lines {
      let words = line.split(separator: " ").map(String.init)
      func bare(_ word: String) -> String { word.trimmingCharacters(in: CharacterSet(charactersIn: "[]()")) }
      switch words.first {
      case "Inst" where words.count >= 3:
        // Inst NAME [OLD] (NEW ORIGIN [ARCH])  — OLD only for an upgrade
        if words[2].hasPrefix("["), words.count >= 4 {
          add(PackageChange(kind: .upgrade, name: words[1], from: bare(words[2]), to: bare(words[3])))
        } else {
          add(PackageChange(kind: .install, name: words[1], to: bare(words[2])))
        }
      case "Remv" where words.count >= 2:
        add(PackageChange(kind: .remove, name: words[1], from: words.count >= 3 ? bare(words[2]) : nil))
      case "Conf" where words.count >= 2:
        add(PackageChange(kind: .configure, name: words[1], to: words.count >= 3 ? bare(words[2]) : nil))
      case "Unpacking" where words.count >= 3:
        // Unpacking NAME (NEW) [over (OLD)] ...
        if words.count >= 5, words[3] == "over" {
          add(PackageChange(kind: .upgrade, name: words[1], from: bare(words[4]), to: bare(words[2])))
        } else {
          add(PackageChange(kind: .install, name: words[1], to: bare(words[2])))
        }
      case "Removing" where words.count >= 2:
        add(PackageChange(kind: .remove, name: words[1], from: words.count >= 3 ? bare(words[2]) : nil))
      case "Setting" where words.count >= 3 && words[1] == "up":
        add(PackageChange(kind: .configure, name: words[2], to: words.count >= 4 ? bare(words[3]) : nil))
      default:
        continue
      }
    }
    return changes
  }
}
