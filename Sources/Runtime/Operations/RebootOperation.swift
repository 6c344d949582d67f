// reboot: read the host's boot id (and whether it asks for a reboot), schedule the reboot so
// that the command's exit status comes back before the connection dies, then wait until the
// host is back with another boot id. The waiting is the executor's (`Plan.awaitReboot`).

enum RebootOperation {
  /// Where Debian's packages ask for a reboot (update-notifier-common, unattended-upgrades and
  /// the kernel's postinst hooks create it; a boot empties /run).
  static let marker = "/run/reboot-required"

  /// Prints the boot id (a new one at every boot), then `reboot-required` when the marker exists.
  static let state = "cat /proc/sys/kernel/random/boot_id && if [ -e \(marker) ]; then echo reboot-required; fi"

  /// Starts the reboot in a session of its own, detached from the command's and from the
  /// connection, a second later: the command returns its exit status while sshd still
  /// serves it (`shutdown -r now` at once could cut the connection first, and then whether
  /// it worked would be unknown). `shutdown` by name: PATH decides which (Ansible's reboot
  /// module does the same), and its absence is an error here, not a silent nothing later.
  static let schedule = """
    command -v shutdown >/dev/null 2>&1 || { echo "no 'shutdown' command on PATH" >&2; exit 127; }; \
    setsid -f sh -c 'sleep 1; exec shutdown -r now "reboot by cfi-sh"' </dev/null >/dev/null 2>&1
    """

  static func plan(onlyIfNeeded: Bool, _ facts: HostFacts) -> Plan {
    .command(facts.command(.script(state))) { exited in
      guard exited.status == 0, let bootID = RebootWait.bootID(in: exited.stdout) else {
        var result = exited.result()
        result.status = .failed
        result.message = "cannot read the boot id of the host"
        return .done(result)
      }
      if onlyIfNeeded && !exited.stdout.contains("reboot-required") {
        return .done(StepResult(status: .ok, exitCode: 0, message: "no reboot needed"))
      }
      if facts.options.check {
        return .done(
          onlyIfNeeded
            ? StepResult(status: .changed, exitCode: 0, message: "would reboot (\(marker) exists)")
            : StepResult(status: .skipped, message: "would reboot"))
      }
      return .command(facts.command(.script(schedule))) { scheduled in
        guard scheduled.status == 0 else {
          var result = scheduled.result()
          result.message = scheduled.stderr.split(separator: "\n").last.map(String.init) ?? "could not start the reboot"
          return .done(result)
        }
        // A try is bounded by the connect timeout and, once connected, by 30s: a host half
        // up must not hold the wait past its own timeout.
        var probe = facts.command(.script(state))
        probe.timeout = min(probe.timeout ?? RebootWait.longestTry, RebootWait.longestTry)
        let wait = RebootWait(probe: probe, previousBootID: bootID, timeout: facts.options.rebootTimeout)
        return .awaitReboot(wait) { .done(result(of: $0, wait)) }
      }
    }
  }

  static func result(of outcome: RebootWait.Outcome, _ wait: RebootWait) -> StepResult {
    switch outcome {
    case .back(let after):
      return StepResult(status: .changed, message: "rebooted in \(after.components.seconds)s")
    case .sameBootID:
      return StepResult(status: .failed, message: "did not reboot: the boot id is the same after \(wait.timeout.cfiText)")
    case .notBack(let last):
      return StepResult(
        status: .unreachable,
        message: "not back within \(wait.timeout.cfiText) of its reboot" + (last.map { " (last try: \($0.message))" } ?? ""),
        reason: .rebootTimeout)
    }
  }
}

/// How to wait for a host that was told to reboot: try `probe` (which prints the boot id as
/// its first line) until it answers with another boot id than `previousBootID`, for at most
/// `timeout` after the reboot was started.
public struct RebootWait: Hashable, Sendable, CustomStringConvertible {
  public var probe: RemoteCommand
  public var previousBootID: String
  public var timeout: Duration

  /// What the wait found.
  public enum Outcome: Hashable, Sendable {
    /// The host answered with a new boot id, this long after the reboot was started.
    case back(after: Duration)
    /// When the time was up, the host answered with the boot id it had before: it did not reboot.
    case sameBootID
    /// When the time was up, the host was not reached; the last try's reason, if one was given.
    case notBack(Unreachable?)
  }

  public init(probe: RemoteCommand, previousBootID: String, timeout: Duration) {
    self.probe = probe
    self.previousBootID = previousBootID
    self.timeout = timeout
  }

  /// The boot id in a probe's output: its first line, a UUID as the kernel writes it.
  public static func bootID(in output: String) -> String? {
    guard let line = output.split(separator: "\n").first, line.utf8.count == 36,
      line.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) })
    else { return nil }
    return String(line)
  }

  /// The first pause between tries; they double, up to eight times this: a host back after
  /// a minute is seen within seconds, and a slow one costs a few connects a minute.
  public static let firstPause: Duration = .seconds(1)
  /// The longest a try may run once connected.
  public static let longestTry: Duration = .seconds(30)

  /// What the wait's outcome is when the time is up, from the last try's result.
  static func lastOutcome(_ last: CommandResult?) -> Outcome {
    switch last?.termination {
    case .exited(0)?: .sameBootID
    case .unreachable(let unreachable)?: .notBack(unreachable)
    default: .notBack(nil)
    }
  }

  public var description: String {
    "await reboot: a boot id other than \(previousBootID), within \(timeout.cfiText), trying\n"
      + probe.description.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n")
  }
}
