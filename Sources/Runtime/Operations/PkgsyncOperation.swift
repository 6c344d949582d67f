// pkgsync: refuse maynothave patterns that match an essential package on the host, push the
// three lists, run `pkgsync -k`.

enum PkgsyncOperation {
  static func plan(_ lists: [String: [String]], _ source: LocalSource, _ facts: HostFacts) -> Plan {
    // Patterns in maynothave are expanded by aptitude on the host, as pkgsync does: refuse the
    // set, before the lists reach the host, if one of them names an essential package.
    let patterns = lists["maynothave", default: []].filter(Pkgsync.isPattern)
    if patterns.isEmpty { return pushAndRun(source, facts) }
    let essential = Pkgsync.essential.joined(separator: "|")
    let command = """
      export LC_ALL=C; for p in \(ShellQuote.join(patterns)); do aptitude -q -F '%p' search "$p" | tr -d ' \t' \
      | grep -x -E '\(essential)' | while read -r n; do printf '%s %s\\n' "$n" "$p"; done; done | head -1
      """
    return .command(facts.command(.script(command))) { exited in
      let hit = exited.stdout.split(separator: "\n").first.map { $0.split(separator: " ", maxSplits: 1) }
      if let hit, hit.count == 2 {
        return .failure(
          "refusing pkgsync for group '\(facts.host.group)': its maynothave pattern '\(hit[1])' matches '\(hit[0])', which a client needs to stay manageable"
        )
      }
      return pushAndRun(source, facts)
    }
  }

  /// All three lists always go together: pkgsync refuses to run with one missing.
  private static func pushAndRun(_ source: LocalSource, _ facts: HostFacts) -> Plan {
    CopyOperation.plan(source, to: "/etc/pkgsync/", facts) { pushed in
      guard pushed.status == .ok || pushed.status == .changed else { return .done(pushed) }
      return run(listsChanged: pushed.status == .changed, listsDiff: pushed.diff, facts)
    }
  }

  private static func run(listsChanged: Bool, listsDiff: String?, _ facts: HostFacts) -> Plan {
    if facts.options.check {
      // `pkgsync -s` would refresh package lists and read the host's old lists: say instead.
      return .done(
        StepResult(
          status: listsChanged ? .changed : .skipped,
          message: listsChanged ? "would update /etc/pkgsync and run pkgsync" : "would run pkgsync", diff: listsDiff))
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
    return .command(facts.command(.script(command))) { exited in
      var result = exited.result()
      let changes = PackageChange.parse(exited.stdout.split(whereSeparator: \.isNewline).map(String.init))
      result.output = changes.map(\.description).joined(separator: "\n")
      if result.status == .failed {
        result.message = pkgsyncErrors(exited.stderr)
        return .done(result)
      }
      var summary: [String] = []
      if listsChanged { summary.append("updated /etc/pkgsync") }
      if !changes.isEmpty { summary.append(PackageChange.summary(changes)) }
      if !summary.isEmpty {
        result.status = .changed
        result.message = summary.joined(separator: "; ")
      }
      if facts.options.diff {
        let text = (listsDiff ?? "") + (PackageChange.diff(changes) ?? "")
        result.diff = text.isEmpty ? nil : text
      }
      return .done(result)
    }
  }

  /// pkgsync's and aptitude's error lines (`Error: Missing files in /etc/pkgsync…`, `Couldn't
  /// find any package whose name or description matched "x"`, `E: …`), as one line.
  static func pkgsyncErrors(_ errorOutput: String) -> String {
    let markers = ["E: ", "Error", "Couldn't find", "Unable to", "Internal error"]
    let errors = errorOutput.split(whereSeparator: \.isNewline).filter { line in markers.contains { line.hasPrefix($0) } }
    return errors.isEmpty ? "pkgsync failed" : errors.joined(separator: "; ")
  }
}
