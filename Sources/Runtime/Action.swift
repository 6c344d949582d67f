// Action: the typed operations a runbook asks of a host. The Runtime knows how to perform
// them (a Transport does); the language only builds them.

/// One operation on one host, with typed parameters.
public enum Action: Hashable, Sendable, CustomStringConvertible {
  /// Push `STORE/<group>/<path>` to the same path on the host, or to `destination`.
  case copy(path: String, destination: String?)
  /// Push the whole `STORE/<group>/` tree to the host's `/`.
  case sync
  /// Run a shell command on the host.
  case run(command: String)
  /// Upload a script from the store, run it with arguments, remove it.
  case script(path: String, arguments: [String])
  /// Set a user's password from a crypt hash.
  case password(user: String, hash: Secret)
  /// Install packages with apt.
  case install(packages: [String])
  /// Remove packages with apt.
  case remove(packages: [String])
  /// Upgrade all packages with apt.
  case upgrade
  /// Push the pkgsync lists and run pkgsync.
  case pkgsync

  /// The action's keyword, as in the language (`copy`, `run`, …).
  public var name: String {
    switch self {
    case .copy: "copy"
    case .sync: "sync"
    case .run: "run"
    case .script: "script"
    case .password: "password"
    case .install: "install"
    case .remove: "remove"
    case .upgrade: "upgrade"
    case .pkgsync: "pkgsync"
    }
  }

  /// A one-line rendering for output and logs, with secrets redacted.
  public var description: String {
    switch self {
    case .copy(let path, nil): "copy \(quoted(path))"
    case .copy(let path, let destination?): "copy \(quoted(path)) to \(quoted(destination))"
    case .run(let command): "run \(quoted(command))"
    case .script(let path, let arguments): (["script", quoted(path)] + arguments.map(quoted)).joined(separator: " ")
    case .password(let user, let hash): "password \(quoted(user)) \(hash)"
    case .install(let packages): (["install"] + packages).joined(separator: " ")
    case .remove(let packages): (["remove"] + packages).joined(separator: " ")
    case .sync, .upgrade, .pkgsync: name
    }
  }
}

/// Quotes a string the way the language writes it, for display only.
private func quoted(_ text: String) -> String {
  var out = "\""
  for character in text {
    switch character {
    case "\"": out += "\\\""
    case "\\": out += "\\\\"
    case "\n": out += "\\n"
    case "$": out += "\\$"
    default: out.append(character)
    }
  }
  return out + "\""
}
