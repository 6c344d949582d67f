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
    let apt = "DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"
    // Refresh the package lists once per host per run (not in check mode: it changes nothing).
    let update = transport.needsAptUpdate(host) && !options.check ? "\(apt) update >/dev/null || exit 100; " : ""
    let arguments = verb == "upgrade" ? "upgrade" : ShellQuote.join([verb, "--"] + names)
    // Simulate first: the Inst/Remv lines say exactly what would change.
    let command = """
      \(update)sim=$(\(apt) -s \(arguments) 2>&1) || { printf '%s\\n' "$sim" >&2; exit 100; }; \
      plan=$(printf '%s\\n' "$sim" | grep -E '^(Inst|Remv) '); \
      if [ -z "$plan" ]; then exit 0; fi; printf '%s\\n' "$plan"; \
      \(options.check ? "exit 0" : "log=$(mktemp) && \(apt) \(arguments) >\"$log\" 2>&1 || { cat \"$log\" >&2; rm -f \"$log\"; exit 1; }; rm -f \"$log\"")
      """
    let (output, failure) = await transport.remote(host, command, options: options)
    if let failure { return failure }
    transport.markAptUpdated(host)
    var result = finished(output!)
    let changes = output!.stdout.split(separator: "\n").map { line -> String in
      let words = line.split(separator: " ")
      return words.count >= 2 ? "\(words[0] == "Inst" ? "+" : "-")\(words[1])" : String(line)
    }
    result.output = ""
    if result.status == .ok && !changes.isEmpty {
      result.status = .changed
      result.message = (options.check ? "would change: " : "") + changes.joined(separator: " ")
    }
    return result
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
    do throws(StoreError) { _ = try Pkgsync.checkedLists(in: store, group: host.group) } catch {
      return .failure(error.message)
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
    let (output, failure) = await transport.remote(host, "pkgsync", options: options)
    if let failure { return failure }
    var result = finished(output!)
    // aptitude's summary ("0 packages upgraded, 2 newly installed, 0 to remove and 5 not
    // upgraded.") says whether any package changed.
    let packagesChanged = output!.stdout.split(separator: "\n").contains { line in
      guard line.contains("newly installed") else { return false }
      return line.split(separator: ",").contains { part in
        let words = part.split(separator: " ")
        guard let count = words.first.flatMap({ Int($0) }), count > 0 else { return false }
        return part.contains("upgraded") && !part.contains("not upgraded") || part.contains("newly installed")
          || part.contains("to remove")
      }
    }
    if result.status == .ok && (packagesChanged || pushed.status == .changed) { result.status = .changed }
    return result
  }
}
