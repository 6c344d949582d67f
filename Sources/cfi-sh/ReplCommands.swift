// The REPL's meta-commands: lines starting with `:`. They look at and steer the session
// (hosts, target, check mode, the last run); what changes hosts is always the language.

import CFIScript
import CFISyntax
import Foundation
import Runtime

/// Whether the REPL goes on after a meta-command.
enum CommandOutcome {
  case proceed, quit
}

extension Repl {
  /// The help `:help` prints.
  static let help = """
    Type CFIScript statements (docs/language.md); an open '<' block continues on the next line.
      on group lab < run "uptime" >       run on a group's hosts
      :target @lab  then  run "uptime"    bare actions run on the default target

    :help                 this list
    :hosts [PATTERN]      known hosts (pc[01-05], @lab), where from, whether online
    :groups               groups with their hosts, online and silent
    :discover             browse for announced hosts now and remember them
    :target [TARGET]      set the default target (@lab, pc[01-05], group lab, all);
                          ':target none' clears it; without TARGET, show it
    :check [on|off]       dry-run mode: report what would change, change nothing
    :diff [on|off]        show what changes: file diffs, package versions from → to
    :set [NAME VALUE]     show the settings, or set one (same as 'set NAME = VALUE')
    :last                 the last run's result per host
    :failed               make the last run's failed, unreachable or interrupted
                          hosts the target
    :unreachable          make the last run's unreachable hosts the target
    :rerun                run the last entry again, on the current target
    :log [RUN|HOST]       the run history: recent runs, one run ('last' or an id
                          prefix), or one host's runs
    :save [-f] FILE       write this session's successful entries as a runbook
    :load FILE            run a runbook file in this session
    :quit                 leave (also Ctrl-D)
    Ctrl-C stops the running entry (remote commands are killed), or clears the line.

    """

  /// Runs a meta-command line.
  func command(_ line: String) async -> CommandOutcome {
    let words = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
    let name = words[0]
    let argument = words.dropFirst().joined(separator: " ")
    switch name {
    case ":help", ":h", ":?": Stream.standardOutput.write(Repl.help)
    case ":quit", ":q", ":exit": return .quit
    case ":hosts": await hosts(Array(words.dropFirst()))
    case ":groups": await groups()
    case ":discover": await discover()
    case ":target": await setTarget(argument)
    case ":check": setCheck(argument)
    case ":diff": setDiff(argument)
    case ":set": await setting(Array(words.dropFirst()))
    case ":last": last()
    case ":failed": await targetLast([.failed, .unreachable, .interrupted], "failed")
    case ":unreachable": await targetLast([.unreachable], "unreachable")
    case ":rerun": await rerun()
    case ":log": log(argument)
    case ":save": save(Array(words.dropFirst()))
    case ":load": await load(argument)
    default:
      var message = "unknown command '\(name)'"
      if let guess = closestMatch(to: name, in: ReplCompletion.metaCommands) { message += " (did you mean '\(guess)'?)" }
      fail(message + "; :help lists the commands")
    }
    return .proceed
  }

  func fail(_ message: String) {
    Stream.standardError.write("cfi-sh: \(message)\n")
  }

  // MARK: - Hosts

  private func hosts(_ patterns: [String]) async {
    let inventory = await session.inventory
    // Hosts that only this session's `group` statements name, too.
    var known = Set(entries.map(\.host.name))
    let named = inventory.groupNames.sorted().flatMap { inventory.hosts(inGroup: $0) }
      .filter { known.insert($0.name).inserted }
      .map { InventoryEntry(host: $0, sources: ["session"], lastSeen: nil, online: false) }
    do {
      let selected = try InventoryEntry.select(entries + named, patterns: patterns, in: inventory)
        .sorted { HostFolding.naturalLess($0.host.name, $1.host.name) }
      Stream.standardOutput.write(HostsCommand.render(selected, json: false, discovery: !options.noDiscovery))
    } catch {
      fail(error.message)
    }
  }

  private func groups() async {
    let inventory = await session.inventory
    let names = allGroups(inventory)
    let online = Set(entries.filter(\.online).map(\.host.name))
    var lines: [[String]] = []
    for group in names.sorted() {
      let members = inventory.hosts(inGroup: group).map(\.name)
      if members.isEmpty && group == .unknown { continue }
      let up = members.filter(online.contains).count
      var state = options.noDiscovery ? "" : "\(up) online"
      if !options.noDiscovery && up < members.count { state += ", \(members.count - up) known but silent" }
      lines.append(["\(group) (\(members.count))", members.isEmpty ? "-" : HostFolding.foldedString(members), state])
    }
    let widths = (0..<2).map { column in lines.map { $0[column].count }.max() ?? 0 }
    for line in lines {
      let text = line[0].padding(toLength: widths[0] + 1, withPad: " ", startingAt: 0)
        + line[1].padding(toLength: widths[1] + 2, withPad: " ", startingAt: 0) + line[2]
      Stream.standardOutput.write(text.trimmingCharacters(in: .whitespaces) + "\n")
    }
  }

  private func discover() async {
    do {
      let before = Set(entries.map(\.host.name))
      let snapshot = try await fleet.discover()
      discovered = snapshot.entries
      browseFollowed = true
      let found = snapshot.entries.filter(\.online).map(\.host)
      await session.replaceInventory(snapshot.inventory)
      let new = found.map(\.name).filter { !before.contains($0) }
      var text = "\(found.count) host\(found.count == 1 ? "" : "s") announcing"
      if !new.isEmpty { text += "; new: \(HostFolding.foldedString(new))" }
      Stream.standardOutput.write(text + "\n")
      await refreshVocabulary()
    } catch {
      fail(error.description)
    }
  }


  // MARK: - History

  /// `:log [RUN|HOST]` (`LogView.show`).
  private func log(_ argument: String) {
    do {
      Stream.standardOutput.write(try LogView(json: false, style: style).show(argument, in: try HistoryQuery.open(store: fleet.store)))
    } catch {
      fail(error.description)
    }
  }

  // MARK: - Target and modes

  /// Sets (or shows, or clears) the default target; false if `text` is not a target.
  @discardableResult
  private func setTarget(_ text: String) async -> Bool {
    if text.isEmpty {
      Stream.standardOutput.write(target.map { "target: \($0.text)\n" } ?? "no target: bare actions need an 'on' block\n")
      return true
    }
    if text == "none" || text == "-" {
      target = nil
    } else {
      let first = text.split(separator: " ").first.map(String.init) ?? ""
      let full = ["all", "group", "host", "hosts"].contains(first) ? text : "host " + text
      let (parsed, errors) = await session.parseTarget(full)
      guard let parsed else {
        await report(errors)
        return false
      }
      target = parsed
    }
    await refreshVocabulary()
    return true
  }

  private func setCheck(_ argument: String) {
    guard let on = mode(argument, check, ":check") else { return }
    check = on
    Stream.standardOutput.write("check mode is \(check ? "on: nothing will be changed" : "off")\n")
  }

  private func setDiff(_ argument: String) {
    guard let on = mode(argument, diff, ":diff") else { return }
    diff = on
    Stream.standardOutput.write("diff is \(diff ? "on: changes are shown as diffs" : "off")\n")
  }

  /// A mode's new state from `on`, `off` or nothing (`current`); nil, said, for anything else.
  private func mode(_ argument: String, _ current: Bool, _ command: String) -> Bool? {
    switch argument {
    case "on": return true
    case "off": return false
    case "": return current
    default:
      fail("\(command) takes on or off")
      return nil
    }
  }

  private func setting(_ words: [String]) async {
    if words.isEmpty {
      let settings = await session.settings
      Stream.standardOutput.write(
        """
        parallel = \(settings.parallel)
        timeout = \(settings.timeout.map(\.cfiText) ?? "none")
        connect_timeout = \(settings.connectTimeout.cfiText)
        max_fail = \(settings.maxFail?.description ?? "none")
        serial = \(settings.serial?.description ?? "none")
        discovery = \(settings.discovery ? "on" : "off")
        reboot_timeout = \(settings.rebootTimeout.cfiText)
        check = \(check ? "on" : "off")  (:check)
        diff = \(diff ? "on" : "off")  (:diff)

        """)
      return
    }
    guard words.count == 2 || (words.count == 3 && words[1] == "=") else {
      fail(":set takes a setting and a value, e.g. ':set parallel 16'")
      return
    }
    _ = await enter("set \(words[0]) = \(words.last!)\n", typed: false)
  }

  // MARK: - The last run

  private func last() {
    guard let result = lastResult else {
      Stream.standardOutput.write("nothing has run yet\n")
      return
    }
    if result.outcomes.isEmpty { Stream.standardOutput.write("the last entry ran on no hosts\n") }
    var groups: [String: [String]] = [:]
    for outcome in result.outcomes {
      let text = outcome.status.rawValue + (outcome.message.map { ": " + $0 } ?? "")
      groups[text, default: []].append(outcome.host.name.rawValue)
    }
    for (text, hosts) in groups.sorted(by: { HostFolding.naturalLess($0.value[0], $1.value[0]) }) {
      Stream.standardOutput.write("\(HostFolding.foldedString(hosts)) (\(hosts.count))  \(text)\n")
    }
  }

  /// Makes the last run's hosts with one of `statuses` the target.
  private func targetLast(_ statuses: Set<StepStatus>, _ word: String) async {
    let hosts = lastResult?.outcomes.filter { statuses.contains($0.status) }.map(\.host.name.rawValue) ?? []
    guard !hosts.isEmpty else {
      fail(lastResult == nil ? "nothing has run yet" : "no \(word) hosts in the last run; the target stays")
      return
    }
    guard await setTarget(HostFolding.fold(hosts).joined(separator: ", ")) else { return }
    Stream.standardOutput.write("target: \(HostFolding.foldedString(hosts)) (\(hosts.count) \(word))\n")
  }

  private func rerun() async {
    guard let text = lastText else {
      fail("nothing to run again yet")
      return
    }
    Stream.standardOutput.write(style.dim("rerun on \(target?.text ?? "its own targets"): ") + text + "\n")
    _ = await enter(text, retarget: true)
  }

  // MARK: - Files

  /// Writes the saved entries as a runbook; password hashes become variables read from the
  /// environment (`CFI_HASH_1`, …), so the file never holds one.
  private func save(_ words: [String]) {
    let force = words.first == "-f"
    let paths = force ? Array(words.dropFirst()) : words
    guard paths.count == 1, let path = paths.first else {
      fail(":save takes a file name, e.g. ':save nightly.cfi' (-f to replace an existing file)")
      return
    }
    guard !saved.isEmpty else {
      fail("nothing to save: no entry has run successfully yet")
      return
    }
    if !force && FileManager.default.fileExists(atPath: path) {
      fail("'\(path)' exists; ':save -f \(path)' replaces it")
      return
    }
    let (body, variables) = SecretText.hashesAsVariables(saved.joined(separator: "\n"))
    var text = "#!/usr/bin/env cfi-sh\n# Saved from a cfi-sh session on \(ISO8601DateFormatter().string(from: Date())).\n"
    if !variables.isEmpty {
      text += "# Password hashes are not written here: set them in the environment before running.\n"
      for variable in variables {
        let environment = "CFI_" + variable.uppercased()
        text += "let \(variable) = env(\"\(environment)\", \"\")\n"
        text += "if \(variable) == \"\" < fail \"set \(environment) to the crypt hash (mkpasswd -m yescrypt)\" >\n"
      }
    }
    text += "\n" + body + "\n"
    do {
      try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
      Stream.standardOutput.write("saved \(saved.count) entr\(saved.count == 1 ? "y" : "ies") to \(path)\n")
    } catch {
      fail("cannot write '\(path)': \(Loader.reason(error))")
    }
  }

  /// Runs a runbook file in the session: its variables and defs stay.
  private func load(_ path: String) async {
    guard !path.isEmpty else {
      fail(":load takes a runbook file")
      return
    }
    let text: String
    do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
      fail("cannot read runbook '\(path)': \(Loader.reason(error))")
      return
    }
    switch await session.parse(text, name: path) {
    case .incomplete:
      fail("\(path): the file ends inside a block")
    case .errors(let diagnostics):
      await report(diagnostics)
    case .entry(let entry):
      await report(entry.warnings)
      let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
      await run(entry.program, savedAs: "include " + ScriptPrinter.quoted(absolute))
    }
  }
}
