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
    let push = Push(source: source.source, destination: target, options: arguments, connectTimeout: options.connectTimeout)
    return .push(push) { exited in
      let changes = exited.stdout.split(separator: "\n").filter { !$0.hasPrefix(".") }.map(String.init)
      var result = StepResult(
        status: exited.status == 0 ? (changes.isEmpty ? .ok : .changed) : .failed, exitCode: exited.status,
        output: "", errorOutput: exited.stderr)
      if !changes.isEmpty {
        result.message = (options.check ? "would change " : "") + "\(changes.count) file\(changes.count == 1 ? "" : "s")"
        result.output = changes.joined(separator: "\n")
      }
      return then(result)
    }
  }
}
