// `cfi-sh deliver RUNBOOK`: runs the runbook now and owes it to the targeted hosts that were
// off; it is `cfi-sh --deliver RUNBOOK` with the same options, output and exit statuses.
// What is recorded, and when, is Runtime's (`FleetRun`, `Deliveries`).

import ArgumentParser
import Foundation

enum DeliverRun {
  static let usage = "usage: " + synopsis + "\n\n" + discussion

  static let synopsis = """
    cfi-sh deliver [OPTIONS] RUNBOOK [ARGS...]
           cfi-sh deliver [OPTIONS] -c TEXT [ARGS...]
           cfi-sh deliver [OPTIONS] - [ARGS...]     (runbook on standard input)
    """

  /// What `deliver --help` says below the synopsis, and its man page.
  static let discussion = """
    Runs the runbook now, as 'cfi-sh --deliver' does, and owes it to every
    targeted host found unreachable: each gets a pending delivery, which
    'cfi-sh watch' runs, limited to that host (and others back at the same
    time), when it comes back, until an attempt leaves it ok or changed,
    the delivery expires or is cancelled.
    A runbook that says 'set deliver = until_done' does the same when run
    as 'cfi-sh RUNBOOK'.

    A delivery keeps the runbook's text and its includes' as they are now
    (so -c TEXT and standard input can be delivered too), its arguments, and
    the options that shape a run (--parallel, --timeout, --connect-timeout,
    --reboot-timeout, --diff). It does not keep the store's files: a delivery
    pushes the group's tree as it is when it runs. A host owed the same
    runbook (same texts, arguments and options) is not owed it twice.

    OPTIONS are cfi-sh's (cfi-sh --help); besides:
      --expire DURATION   give up a delivery not made within DURATION, e.g.
                          7d or 12h ('cfi-sh deliveries' then shows it
                          expired); default: never
    --check is refused: a dry run delivers nothing. The exit status is the
    run's, as for 'cfi-sh RUNBOOK' (4: some hosts were unreachable).

    See also: cfi-sh deliveries (what is owed, cancel), cfi-sh watch, and
    docs/language.md, "Delivery".
    """

  static func main(_ arguments: [String]) async {
    do {
      // `deliver --help` is about deliver (after `--`, words are the runbook's).
      if arguments.prefix(while: { $0 != "--" }).contains(where: { $0 == "-h" || $0 == "--help" }) {
        print(usage)
        return
      }
      var options = try CFISh.parse(arguments)
      // Without a runbook on a terminal, cfi-sh would start the shell, which delivers nothing.
      if options.command == nil, options.runbook == nil, isatty(0) == 1 {
        throw CommandFailure.usage("no runbook to deliver. " + usage.prefix { $0 != "\n" })
      }
      options.deliver = true
      try options.validate()
      try await options.run()
    } catch {
      CFISh.exit(withError: error)
    }
  }
}
