// The built-in functions: what they take and what they give.

/// A built-in function.
enum Builtin: String, CaseIterable {
  /// `lines(PATH)` / `lines(PATH, GROUP)`: a list file from the store.
  case lines
  /// `env(NAME)` / `env(NAME, DEFAULT)`: an environment variable of cfi-sh.
  case env
  /// `len(LIST or STRING)`: number of elements or characters.
  case len

  /// How many arguments it takes.
  var arity: ClosedRange<Int> {
    switch self {
    case .lines, .env: 1...2
    case .len: 1...1
    }
  }

  var signature: String {
    switch self {
    case .lines: "lines(path) or lines(path, group)"
    case .env: "env(name) or env(name, default)"
    case .len: "len(value)"
    }
  }
}

/// The settings `set` accepts.
enum Setting: String, CaseIterable {
  case parallel, timeout, connect_timeout, max_fail, serial, discovery
  case reboot_timeout, deliver, persist

  var expectation: String {
    switch self {
    case .parallel: "a number of hosts of at least 1"
    case .timeout: "a duration such as 30s or 5m, or none"
    case .connect_timeout: "a duration such as 10s"
    case .max_fail: "a number of hosts (0 or more), a percentage such as 10%, or none"
    case .serial: "a number of hosts (1 or more), a percentage such as 25%, or none"
    case .discovery: "on or off"
    case .reboot_timeout: "a duration such as 10m"
    case .deliver: "until_done or off"
    case .persist: "a duration such as 5m, or 0"
    }
  }

  /// `set deliver = until_done` (true) or `off`/`false` (false); nil for anything else.
  /// `until_done` is a word of `set`, as `none` is: never a variable there.
  static func deliverMode(_ value: Expression) -> Bool? {
    switch value.kind {
    case .variable("until_done"): true
    case .boolean(false): false
    default: nil
    }
  }
}

import CFISyntax
import Runtime

extension RunSettings {
  /// Applies `set NAME = value`, returning what is wrong with the value, if anything.
  mutating func apply(_ setting: Setting, _ value: Value) -> String? {
    let bad = "'\(setting.rawValue)' must be \(setting.expectation), not \(value.typeName)"
    switch (setting, value) {
    case (.parallel, .integer(let count)):
      guard count >= 1 else { return "'parallel' must be at least 1" }
      parallel = count
    case (.timeout, .duration(let duration)):
      guard duration > .zero else { return "'timeout' must be positive (or none)" }
      timeout = duration
    case (.timeout, .integer(0)):
      // The spelling of `none` before there was one; kept for runbooks that use it.
      timeout = nil
    case (.connect_timeout, .duration(let duration)):
      guard duration >= .seconds(1) else { return "'connect_timeout' must be at least 1s (ssh counts whole seconds)" }
      connectTimeout = duration
    case (.max_fail, .integer(let count)):
      guard count >= 0 else { return "'max_fail' must not be negative" }
      maxFail = .count(count)
    case (.max_fail, .percent(let percent)):
      guard (0...100).contains(percent) else { return "'max_fail' must be between 0% and 100%" }
      maxFail = .percent(percent)
    case (.serial, .integer(let count)):
      guard count >= 1 else { return "'serial' must be at least 1" }
      serial = .count(count)
    case (.serial, .percent(let percent)):
      guard (1...100).contains(percent) else { return "'serial' must be between 1% and 100%" }
      serial = .percent(percent)
    case (.discovery, .boolean(let on)):
      discovery = on
    case (.persist, .duration(let duration)):
      guard duration == .zero || duration >= .seconds(1) else { return "'persist' must be 0 or at least 1s (ssh counts whole seconds)" }
      persist = duration
    case (.persist, .integer(0)):
      persist = .zero
    case (.reboot_timeout, .duration(let duration)):
      guard duration >= .seconds(1) else { return "'reboot_timeout' must be at least 1s" }
      rebootTimeout = duration
    default:
      return bad
    }
    return nil
  }
}

extension RunSettings {
  /// Applies `set NAME = none`: no limit. Returns what is wrong, if anything.
  mutating func applyNone(_ setting: Setting) -> String? {
    switch setting {
    case .timeout: timeout = nil
    case .max_fail: maxFail = nil
    case .serial: serial = nil
    case .parallel, .connect_timeout, .discovery, .reboot_timeout, .deliver, .persist: return "'\(setting.rawValue)' must be \(setting.expectation), not none"
    }
    return nil
  }
}

extension Expression {
  /// `none` as the value of `set` (`set timeout = none`): a word of `set`, as `on` and `off`
  /// are, and not a variable there.
  var isNoneWord: Bool {
    if case .variable("none") = kind { true } else { false }
  }
}

extension Program {
  /// Whether the runbook says `set discovery = off` (or `false`) at its top level or in a
  /// file it includes there, so that the inventory can be loaded without browsing first.
  public var turnsDiscoveryOff: Bool {
    StatementWalk().contains(statements, entering: { statement in
      if case .include = statement.kind { true } else { false }
    }, where: { statement in
      guard case .set(let name, let value) = statement.kind, name.name == Setting.discovery.rawValue,
        case .boolean(false) = value.kind
      else { return false }
      return true
    })
  }
}
