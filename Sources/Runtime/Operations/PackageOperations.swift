// install, remove, upgrade, upgrade full: apt-get, simulated first; what dpkg did decides
// `changed`.

import Foundation

enum PackageOperations {
  /// The marker line the remote script prints once `apt-get update` succeeded.
  static let aptUpdated = "cfi:apt-updated"

  static func apt(_ verb: String, _ names: [String], _ facts: HostFacts) -> Plan {
    let options = facts.options
    if let bad = names.first(where: { !PackageName.isValid($0) }) {
      return .failure("'\(bad)' is not a valid Debian package name")
    }
    // `upgrade` and `full-upgrade` take no names: they concern every installed package.
    let upgrades = verb == "upgrade" || verb == "full-upgrade"
    if !upgrades && names.isEmpty { return .done(StepResult(status: .ok, message: "nothing to \(verb)")) }
    let apt = "apt-get -q -y -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"
    let arguments = upgrades ? verb : ShellQuote.join([verb, "--"] + names)
    // C locale: the lines parsed below (Inst/Remv/Conf, dpkg's Unpacking/Removing/Setting up)
    // would be translated under the LANG that ssh passes on.
    var command = "export LC_ALL=C DEBIAN_FRONTEND=noninteractive; "
    // Refresh the package lists once per host per run (not in check mode: it changes nothing).
    // DPkg::Lock::Timeout covers the dpkg lock only: `apt-get update` fails at once while another
    // update (a cron job's) holds the lists lock, so wait for that lock here.
    if !facts.aptListsRefreshed && !options.check {
      command += """
        n=0; until u=$(\(apt) update 2>&1); do case $u in *'Could not get lock'*) if [ $n -lt 600 ]; then \
        n=$((n+1)); sleep 1; continue; fi;; esac; printf '%s\\n' "$u" >&2; exit 100; done; echo \(aptUpdated); 
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
    return .command(facts.command(.script(command))) { exited in
      // dpkg writes through apt's pty: its lines end in "\r\n" (one Character in Swift).
      let lines = exited.stdout.split(whereSeparator: \.isNewline).map(String.init)
      let learned: Learned = lines.contains(aptUpdated) ? .aptListsRefreshed : []
      var result = exited.result()
      let changes = PackageChange.parse(lines.filter { $0 != aptUpdated })
      result.output = changes.map(\.description).joined(separator: "\n")
      if result.status == .failed {
        result.message = aptErrors(exited.stderr)
      } else if !changes.isEmpty {
        result.status = .changed
        result.message = (options.check ? "would change: " : "") + PackageChange.summary(changes)
        if options.diff {
          // The same list, with versions from → to: said once.
          result.diff = PackageChange.diff(changes)
          result.output = ""
        }
      }
      return .done(result, learned: learned)
    }
  }

  /// apt's error lines (`E: Unable to locate package x`), as one line for the message.
  static func aptErrors(_ errorOutput: String) -> String? {
    let errors = errorOutput.split(whereSeparator: \.isNewline).filter { $0.hasPrefix("E: ") }.map { $0.dropFirst(3) }
    return errors.isEmpty ? nil : errors.joined(separator: "; ")
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

  /// For --diff: `pkg 1.0 → 1.1`, `pkg (new) 2.0`, `pkg 1.0 → (removed)`, `pkg 1.0 (configured)`.
  var diffLine: String {
    switch kind {
    case .upgrade: "\(name) \(from ?? "?") → \(to ?? "?")"
    case .install: "\(name) (new) \(to ?? "?")"
    case .remove: "\(name) \(from ?? "?") → (removed)"
    case .configure: "\(name) \(to ?? "?") (configured)"
    }
  }

  /// The --diff text of `changes`, one line each; nil for none.
  static func diff(_ changes: [PackageChange]) -> String? {
    changes.isEmpty ? nil : changes.map(\.diffLine).joined(separator: "\n") + "\n"
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
