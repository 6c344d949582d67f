// fetch: a host's file or directory copied into `STORE/.fetched/HOST/PATH` with rsync over the
// host's connection, itemized so that `changed` means the local copy changed.

enum FetchOperation {
  static func plan(_ path: String, into directory: String, _ facts: HostFacts) -> Plan {
    let options = facts.options
    // -rlpt: contents, links as links, modes, times; --chmod=go-rwx: what is fetched (configs,
    // logs) is readable by the owner only. rsync writes each file to a temporary name in its
    // directory and renames it: never a half-written file. Nothing is ever deleted locally.
    var arguments = ["-rlpt", "--chmod=go-rwx", "--itemize-changes", "--protect-args"]
    if options.check { arguments.append("--dry-run") }
    arguments.append("--timeout=\(RemoteCommand.wholeSeconds(Push.ioTimeout(step: options.timeout)))")
    let pull = Pull(source: path, destination: directory, options: arguments, connectTimeout: options.connectTimeout)
    return .pull(pull) { exited in
      let changes = exited.stdout.split(separator: "\n").filter(isChange).map(String.init)
      var result = exited.result(changed: !changes.isEmpty)
      if exited.status != 0 {
        result.message = missing(exited.stderr) ? "'\(path)' does not exist on the host" : rsyncError(exited.stderr)
      } else if !changes.isEmpty {
        result.message = (options.check ? "would fetch " : "fetched ") + "\(changes.count) file\(changes.count == 1 ? "" : "s")"
        result.output = changes.joined(separator: "\n")
      } else {
        result.output = ""
      }
      return .done(result)
    }
  }

  /// An itemized line of something rsync changed (`>f+++++++++ name`, `cd+++++++++ dir/`,
  /// `cL+++++++++ link -> target`); not its other lines (`created directory …`) nor
  /// unchanged items (`.d..t…`).
  static func isChange(_ line: Substring) -> Bool {
    guard let first = line.first, let second = line.dropFirst().first else { return false }
    return "<>ch".contains(first) && "fdLDS".contains(second)
  }

  /// rsync's sender could not find the path (`link_stat "PATH" failed: No such file or directory`).
  static func missing(_ errorOutput: String) -> Bool {
    errorOutput.contains("link_stat") && errorOutput.contains("No such file or directory")
  }

  /// rsync's own error lines (`rsync: …`, `rsync error: …`), as one line for the message.
  static func rsyncError(_ errorOutput: String) -> String? {
    let errors = errorOutput.split(whereSeparator: \.isNewline).filter { $0.hasPrefix("rsync: ") }.map { $0.dropFirst(7) }
    return errors.isEmpty ? nil : errors.joined(separator: "; ")
  }
}
