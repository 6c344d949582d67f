// `cfi-sh run TARGET COMMAND`: the commonest runbook in one line, without quoting the command
// inside CFIScript. It is `cfi-sh -c 'on host "TARGET" < run "COMMAND" >'` with the same
// options, output and exit statuses; the text is made by the language's own printer, so a
// command holding quotes, `$` or backslashes reaches the hosts exactly as typed.

import ArgumentParser
import CFISyntax

enum AdHocRun {
  static let usage = "usage: " + synopsis + "   (TARGET: all, @lab, pc[01-10], …)"
  static let synopsis = "cfi-sh run [OPTIONS] TARGET COMMAND..."

  static func main(_ arguments: [String]) async {
    do {
      var options = try CFISh.parse(arguments)
      guard options.command == nil, let target = options.runbook else {
        throw CommandFailure.usage(options.command == nil ? usage : "-c and a command: give one. " + usage)
      }
      if let option = CFISh.ownOption(in: options.arguments) {
        throw CommandFailure.usage("'\(option)' after TARGET: cfi-sh's options go before it. " + usage)
      }
      let words = CFISh.runbookArguments(options.arguments)
      guard !words.isEmpty else { throw CommandFailure.usage("no command to run. " + usage) }
      options.command = runbook(target: target, command: words.joined(separator: " "))
      options.runbook = nil
      options.arguments = []
      try await options.run()
    } catch {
      CFISh.exit(withError: error)
    }
  }

  /// The runbook text: `on all` for `all`, else the target as a string of patterns.
  static func runbook(target: String, command: String) -> String {
    let on = target == "all" ? "on all" : "on host " + ScriptPrinter.quoted(target)
    return on + " < run " + ScriptPrinter.quoted(command) + " >"
  }
}
