// password: compare the host's hash with the new one, set it with `chpasswd -e` if it differs.

import Foundation

enum PasswordOperation {
  static func plan(_ user: String, _ hash: Secret, _ facts: HostFacts) -> Plan {
    guard CryptHash.isValid(hash.revealed) else { return .failure(CryptHash.invalidMessage) }
    // The hash comes on stdin, never in argv. Compare first: an unchanged hash is `ok`.
    let apply = facts.options.check ? "echo would-change" : "printf '%s:%s\\n' \"$u\" \"$h\" | chpasswd -e && echo changed"
    let command = """
      u=\(ShellQuote.quote(user)); IFS= read -r h; e=$(getent shadow "$u") || { echo "no user $u" >&2; exit 3; }; \
      c=$(printf '%s' "$e" | cut -d: -f2); if [ "$c" = "$h" ]; then echo unchanged; else \(apply); fi
      """
    return .command(facts.command(.script(command), input: .secret(Secret(hash.revealed + "\n")))) { exited in
      var result = exited.result()
      result.output = ""
      switch exited.stdout.trimmingCharacters(in: .whitespacesAndNewlines) {
      case "changed": result.status = .changed
      case "would-change":
        result.status = .changed
        result.message = "would change the password of \(user)"
      default: break
      }
      return .done(result)
    }
  }
}
