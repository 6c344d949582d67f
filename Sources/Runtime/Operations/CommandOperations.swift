// run and script: a command, or a script from the store uploaded through stdin.

enum CommandOperations {
  /// In check mode the host is only reached (`true`): a command's effects cannot be known.
  static func run(_ command: String, _ facts: HostFacts) -> Plan {
    if facts.options.check {
      return .command(facts.command(.argv(["true"]))) { _ in .done(StepResult(status: .skipped, message: "would run")) }
    }
    return .command(facts.command(.script(command))) { .done($0.result()) }
  }

  static func script(_ path: String, body: String, _ arguments: [String], _ facts: HostFacts) -> Plan {
    if facts.options.check {
      return .command(facts.command(.argv(["true"]))) { _ in .done(StepResult(status: .skipped, message: "would run \(path)")) }
    }
    // Upload through stdin to a private temp file, run it, remove it whatever happens.
    let command = """
      t=$(mktemp /tmp/cfi-script.XXXXXX) || exit 125; trap 'rm -f "$t"' EXIT; cat >"$t" && chmod 0700 "$t" && "$t" \(ShellQuote.join(arguments))
      """
    return .command(facts.command(.script(command), input: .text(body))) { .done($0.result()) }
  }
}
