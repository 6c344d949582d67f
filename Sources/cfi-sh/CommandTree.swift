// The whole command line as one tree of commands, for what is generated from it rather than
// run: the man pages (`--experimental-dump-help`, which argument-parser's generate-manual
// reads; `make man`) and the shell completion scripts (`--generate-completion-script bash`,
// `zsh` or `fish`; `make completions`). Running never goes through it: Main dispatches to
// `CFISh`, `Tools`, `AdHocRun` and `DeliverRun`, whose options and texts these are.

import ArgumentParser

struct CommandTree: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "cfi-sh",
    abstract: CFISh.configuration.abstract,
    usage: CFISh.configuration.usage,
    discussion: CFISh.configuration.discussion,
    version: CFISh.version,
    subcommands: [RunCommand.self, DeliverCommand.self] + Tools.configuration.subcommands)

  /// The first words that ask for this tree instead of a run.
  static func isAsked(by arguments: [String]) -> Bool {
    guard let first = arguments.first else { return false }
    return first == "--experimental-dump-help" || first == "---completion"
      || first == "--generate-completion-script" || first.hasPrefix("--generate-completion-script=")
  }

  @OptionGroup var options: CFISh

  /// `cfi-sh run TARGET COMMAND...` (`AdHocRun`).
  struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "run",
      abstract: "Run one command on hosts: a runbook of one line.",
      usage: AdHocRun.synopsis,
      discussion: """
        'cfi-sh run TARGET COMMAND...' is 'cfi-sh -c' with the runbook
        'on host "TARGET" < run "COMMAND" >' ('on all' for TARGET all), with the
        same options, output and exit statuses. The words after TARGET are the
        command, joined by spaces and sent exactly as typed: quotes, '$' and
        backslashes reach the hosts unchanged. OPTIONS are cfi-sh's (see
        cfi-sh(1)) and go before TARGET; after '--' every word is the command's.

          cfi-sh run @lab 'uname -r'
          cfi-sh run --limit '!pc03' 'pc[01-10]' systemctl is-active ssh
        """)

    @Argument(help: ArgumentHelp("The hosts: all, a pattern (pc[01-10]) or @GROUP.", valueName: "target"), completion: CompletionKind.targets)
    var target: String

    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The command and its arguments.", valueName: "command"))
    var command: [String] = []
  }

  /// `cfi-sh deliver RUNBOOK` (`DeliverRun`).
  struct DeliverCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "deliver",
      abstract: "Run a runbook, and later on the targeted hosts that were off.",
      usage: DeliverRun.synopsis,
      discussion: DeliverRun.discussion)

    @OptionGroup var options: CFISh
  }
}

extension CompletionKind {
  /// Host names and `@GROUP`s, as `cfi-sh hosts --names` lists them (no browsing).
  static let hosts = CompletionKind.shellCommand("cfi-sh hosts --names 2>/dev/null")
  /// `all` and the host names and groups: a target of `cfi-sh run`.
  static let targets = CompletionKind.shellCommand("echo all; cfi-sh hosts --names 2>/dev/null")
  /// The hosts waiting for `cfi-sh hosts accept`.
  static let pendingHosts = CompletionKind.shellCommand("cfi-sh hosts --names --pending 2>/dev/null")
}
