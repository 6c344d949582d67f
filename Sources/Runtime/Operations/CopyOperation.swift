// copy and sync: rsync of a store file or tree to the host, itemized so that `changed` is
// what rsync really changed.

enum CopyOperation {
  /// Pushes `source` to `destination` (default: the same path under the host's `/`), then
  /// goes on with `then` given the push's result. `wholeTree`: the group's whole tree (sync).
  static func plan(
    _ source: LocalSource, to destination: String?, _ facts: HostFacts, wholeTree: Bool = false,
    then: @escaping @Sendable (StepResult) -> Plan
  ) -> Plan {
    let options = facts.options
    if let destination, !destination.hasPrefix("/") {
      return .failure("the destination of 'copy' must be an absolute path, not '\(destination)'")
    }
    var target = destination ?? "/" + source.relative
    if source.isDirectory, !target.hasSuffix("/") { target += "/" }
    // -rlpt: contents, symlinks as links, modes, times, owned by root; --mkpath: missing parents.
    // --delay-updates: every file lands by rename at the end, so a dropped link never leaves a
    // half-written file. Never --delete.
    var arguments = [
      "-rlptD", "--chown=root:root", "--omit-dir-times", "--mkpath", "--delay-updates", "--itemize-changes",
      "--protect-args",
    ]
    // A tree's directories exist on the client already (/, /etc, …): their modes must stay the
    // client's (rsync -p would give them the store's), so a tree keeps the modes of what
    // exists; new files get the store's modes.
    // A single file reaches rsync as a link to its checked descriptor (`PushSource`): rsync
    // must follow that one link, and there is nothing else for --copy-links to follow.
    arguments.append(source.isDirectory ? "--no-perms" : "--copy-links")
    if options.check { arguments.append("--dry-run") }
    arguments.append("--timeout=\(RemoteCommand.wholeSeconds(Push.ioTimeout(step: options.timeout)))")
    // Files at the top of a group's tree (packages.list, scripts) are the server's own:
    // nothing belongs in the client's `/` itself, so `sync` sends only the directories.
    if wholeTree { arguments += ["--include=/*/", "--exclude=/*"] }
    // What an interrupted rsync left beside the files this push writes goes first. rsync's
    // own remote command does it (`--rsync-path`: no second round trip per host), unless the
    // list is too long for one argument of the host's shell; then a command of its own does.
    let files = options.check ? [] : hostFiles(source, target: target, named: destination != nil, wholeTree: wholeTree)
    let cleanUp = files.isEmpty ? nil : rsyncPathRemovingTemporaries(files)
    if let cleanUp { arguments.append("--rsync-path=" + cleanUp) }
    let push = Push(source: source.source, destination: target, options: arguments, connectTimeout: options.connectTimeout)
    let hostTarget = target
    @Sendable func result(_ exited: Exited, diff: String?) -> Plan {
      let changes = changedFiles(exited)
      var result = StepResult(
        status: exited.status == 0 ? (changes.isEmpty ? .ok : .changed) : .failed, exitCode: exited.status,
        output: "", errorOutput: exited.stderr)
      if !changes.isEmpty {
        result.message = (options.check ? "would change " : "") + "\(changes.count) file\(changes.count == 1 ? "" : "s")"
        result.output = changes.joined(separator: "\n")
        result.diff = diff
      }
      return then(result)
    }
    /// --diff: the itemized list of `dryRun` (the push itself in check mode), compared before `next`.
    @Sendable func compared(_ dryRun: Exited, next: @escaping @Sendable (String?) -> Plan) -> Plan {
      let changes = changedFiles(dryRun)
      guard dryRun.status == 0, !changes.isEmpty else { return next(nil) }
      let items = FileDiff.changes(changes, source: source, target: hostTarget, named: destination != nil)
      return FileDiff.plan(items, source: source, facts, then: next)
    }
    let send: Plan
    if options.diff && !options.check {
      // The host's files as they are before the push changes them: a dry run says which.
      var dryRun = push
      dryRun.options.insert("--dry-run", at: dryRun.options.firstIndex { $0.hasPrefix("--timeout=") } ?? dryRun.options.endIndex)
      send = .push(dryRun) { listed in
        compared(listed) { diff in .push(push) { result($0, diff: diff) } }
      }
    } else {
      send = .push(push) { exited in
        options.diff ? compared(exited) { result(exited, diff: $0) } : result(exited, diff: nil)
      }
    }
    guard !files.isEmpty, cleanUp == nil else { return send }
    return .command(facts.command(.script(removeTemporaries), input: .text(files.joined(separator: "\n") + "\n"))) { _ in send }
  }

  /// The longest `--rsync-path` that carries the clean-up: the host's sshd hands the whole
  /// remote command to the shell as one argument, and Linux caps one argument at 128 KiB.
  static let rsyncPathLimit = 64 << 10

  /// `printf '%s\n' PATH… | sh -c 'removeTemporaries'; rsync`: the host's shell runs it before
  /// rsync's server, in the same session (printf is a builtin: no argument-count limit); nil
  /// when it would be longer than `rsyncPathLimit`.
  static func rsyncPathRemovingTemporaries(_ files: [String]) -> String? {
    let text = "printf '%s\\n' \(ShellQuote.join(files)) | sh -c \(ShellQuote.quote(removeTemporaries)); rsync"
    return text.utf8.count <= rsyncPathLimit ? text : nil
  }

  /// The lines of rsync's itemized list that change something: an item rsync sends or makes
  /// (`>f…`, `cd…`, `cL…`), or one whose permissions, owner, group, ACL or extended
  /// attributes it sets without sending it (`.f...p.....`: a mode set back to the store's is a
  /// change for the host's users). A modification time alone (`.f..t......`, `.d..t......`)
  /// is not: nobody reads it as configuration, and a store file touched on the server would
  /// otherwise report every host changed.
  static func changedFiles(_ exited: Exited) -> [String] {
    exited.stdout.split(separator: "\n").filter { line in
      guard line.hasPrefix(".") else { return true }
      return line.dropFirst(2).prefix(9).contains { "pogax".contains($0) }
    }.map(String.init)
  }

  /// The host paths the push may write a file at. A file sent to a destination it names goes
  /// to that path, or into it when it is a directory: both. A newline cannot be read back
  /// from the list, so such a name is left out (rsync's temporary files of it stay).
  static func hostFiles(_ source: LocalSource, target: String, named: Bool, wholeTree: Bool) -> [String] {
    var paths: [String]
    if source.isDirectory {
      // sync sends no file at the top of the tree (see `--exclude=/*` above).
      paths = source.files.filter { !wholeTree || $0.contains("/") }.map { target + $0 }
    } else if let name = source.files.first {
      paths = target.hasSuffix("/") ? [target + name] : named ? [target, target + "/" + name] : [target]
    } else {
      paths = []
    }
    return paths.filter { !$0.contains("\n") }
  }

  /// Removes, beside each path read from stdin, what an rsync that did not finish leaves: its
  /// temporary file `.NAME.XXXXXX` (mkstemp's six letters or digits: a SIGKILLed rsync or a
  /// crashed host leaves it, and no later rsync removes it) and its partial file in
  /// `.~tmp~/` (--delay-updates's directory), then that directory if empty. Only a regular
  /// file with no group or other permissions is taken for a temporary file: rsync makes them
  /// so, while an admin's `.NAME.backup` beside NAME usually is not.
  static let removeTemporaries = [
    #"x='[A-Za-z0-9]'; while IFS= read -r p; do d=${p%/*}; n=${p##*/};"#,
    #"for f in "$d/.$n".$x$x$x$x$x$x; do [ -f "$f" ] && [ ! -h "$f" ] || continue;"#,
    #"case $(stat -c %a -- "$f") in 0|?00) rm -f -- "$f";; esac; done;"#,
    #"[ -d "$d/.~tmp~" ] || continue; [ ! -f "$d/.~tmp~/$n" ] || [ -h "$d/.~tmp~/$n" ] || rm -f -- "$d/.~tmp~/$n";"#,
    #"rmdir -- "$d/.~tmp~" 2>/dev/null; done; exit 0"#,
  ].joined(separator: " ")
}
