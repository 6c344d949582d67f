// service: a systemd unit brought to a state with systemctl. The unit's state is read first
// (`is-active`, `is-enabled`), so that a unit already in the state is `ok` and nothing runs;
// `restarted` and `reloaded` always act. A unit systemd does not know fails with its message.

import Foundation

enum ServiceOperation {
  /// The marker lines the query prints, one per state read.
  static let activeMarker = "active="
  static let enabledMarker = "enabled="

  static func plan(_ unit: String, _ state: ServiceState, _ facts: HostFacts) -> Plan {
    guard UnitName.isValid(unit) else { return .failure("'\(unit)' is \(UnitName.invalidMessage)") }
    let quoted = ShellQuote.quote(unit)
    // Both states on their own lines, whatever systemctl says on stderr (an unknown unit:
    // is-enabled prints nothing on stdout and its message on stderr).
    let query = """
      command -v systemctl >/dev/null || { echo 'systemctl: not found (service needs systemd on the host)' >&2; exit 127; }; \
      a=$(systemctl is-active -- \(quoted)); e=$(systemctl is-enabled -- \(quoted)); \
      printf '\(activeMarker)%s\\n\(enabledMarker)%s\\n' "$a" "$e"
      """
    return .command(facts.command(.script(query))) { exited in
      guard exited.status == 0 else {
        var result = exited.result()
        result.message = firstLine(exited.stderr)
        return .done(result)
      }
      let lines = exited.stdout.split(separator: "\n")
      func value(_ marker: String) -> String {
        lines.first { $0.hasPrefix(marker) }.map { String($0.dropFirst(marker.count)) } ?? ""
      }
      let active = value(activeMarker), enabled = value(enabledMarker)
      // is-enabled knows every unit that has a unit file: nothing (or, with newer systemd,
      // `not-found`) means systemd has no such unit.
      if enabled.isEmpty || enabled == "not-found" {
        return .done(StepResult(status: .failed, errorOutput: exited.stderr, message: firstLine(exited.stderr) ?? "unit \(unit) not found"))
      }
      guard needsAction(state, active: active, enabled: enabled) else { return .done(StepResult(status: .ok)) }
      if facts.options.check { return .done(StepResult(status: .changed, message: "would \(verb(state)) \(unit)")) }
      return .command(facts.command(.argv(["systemctl", verb(state), "--", unit]))) { exited in
        var result = exited.result(changed: true)
        result.message = exited.status == 0 ? "\(state.rawValue) \(unit)" : firstLine(exited.stderr)
        return .done(result)
      }
    }
  }

  /// Whether a unit `active` (is-active) and `enabled` (is-enabled) must be acted on to be in `state`.
  static func needsAction(_ state: ServiceState, active: String, enabled: String) -> Bool {
    switch state {
    case .started: !["active", "reloading", "activating"].contains(active)
    case .stopped: !["inactive", "failed"].contains(active)
    case .restarted, .reloaded: true
    // static, indirect, generated, transient: as enabled as such a unit gets (`enable` would do nothing).
    case .enabled: !["enabled", "static", "alias", "indirect", "generated", "transient"].contains(enabled)
    case .disabled: ["enabled", "enabled-runtime", "linked", "linked-runtime"].contains(enabled)
    }
  }

  /// systemctl's command for `state`.
  static func verb(_ state: ServiceState) -> String {
    switch state {
    case .started: "start"
    case .stopped: "stop"
    case .restarted: "restart"
    case .reloaded: "reload"
    case .enabled: "enable"
    case .disabled: "disable"
    }
  }

  /// The first non-empty line of `text` (systemctl's message; it adds hints on later lines).
  static func firstLine(_ text: String) -> String? {
    text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.first { !$0.isEmpty }
  }
}
