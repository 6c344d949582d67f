// RunSettings: the knobs of a run (`set …` in a runbook, options on the command line).

/// A count that may be absolute or a share of a total, as in `set max_fail = 10%`.
public enum HostLimit: Hashable, Sendable, CustomStringConvertible {
  case count(Int)
  case percent(Int)

  /// The limit for a block of `total` hosts. Percentages round up, so 10% of 5 hosts is 1,
  /// never 0 (a percentage must not silently mean "none").
  public func resolved(total: Int) -> Int {
    switch self {
    case .count(let count): count
    case .percent(let percent): (total * percent + 99) / 100
    }
  }

  public var description: String {
    switch self {
    case .count(let count): "\(count)"
    case .percent(let percent): "\(percent)%"
    }
  }
}

/// The settings that govern how an `on` block fans out.
public struct RunSettings: Hashable, Sendable {
  /// Hosts worked on at once (ClusterShell's and pdsh's default fan-out is 64).
  public var parallel = 64
  /// Limit per step on a host; `nil`: none (`set timeout = none`). An hour by default: a
  /// command that hangs must not hold the run, and the store's lock, forever while every
  /// later cron run queues behind it; real steps (an upgrade, pkgsync) take minutes.
  public var timeout: Duration? = RunSettings.defaultTimeout
  public static let defaultTimeout: Duration = .seconds(3600)
  /// Limit for connecting to a host.
  public var connectTimeout: Duration = .seconds(10)
  /// Limit for a host to come back from `reboot`: a new boot id, sshd answering.
  public var rebootTimeout: Duration = RunSettings.defaultRebootTimeout
  public static let defaultRebootTimeout: Duration = .seconds(600)
  /// Once more hosts than this have failed (or were unreachable), no new host starts.
  /// `nil`: no limit.
  public var maxFail: HostLimit? = nil
  /// Hosts in rolling batches of this size: a batch starts when the previous one is done.
  /// `nil`: one batch.
  public var serial: HostLimit? = nil
  /// How long ssh connections stay open after the run, for the next run to reuse (OpenSSH's
  /// ControlPersist); zero: closed at the run's end. Five minutes by default: a day of short
  /// runs in a row (and cron every few minutes) pays one handshake per host, and an idle
  /// connection is gone soon after.
  public var persist: Duration = RunSettings.defaultPersist
  public static let defaultPersist: Duration = .seconds(300)
  /// Use avahi discovery when resolving targets.
  public var discovery = true

  public init() {}
}
