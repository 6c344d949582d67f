// DescriptorLimit: how many hosts can be worked on at once within the process's file
// descriptors. Each host running holds a few (its command's session, or the pipes of the ssh opening its master); a
// fan-out of 1,000 needs several thousand, above the usual soft limit of 1,024. cfi-sh raises
// the soft limit to the hard one at start (`raise()`); where even that is too low, the
// fan-out is lowered and the hosts take turns, said once on stderr (`fanOut(_:hosts:)`), rather than
// hosts failing with "too many open files".

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif
import Synchronization

/// The process's limit on open file descriptors (RLIMIT_NOFILE).
public struct DescriptorLimit: Hashable, Sendable {
  /// The limit in force (what `ulimit -n` says).
  public var soft: Int
  /// The most the soft limit may be raised to (`ulimit -Hn`); `Int.max`: unlimited.
  public var hard: Int

  /// Descriptors one host holds while it is worked on: a command's session over the master
  /// (`MuxSession`: the control socket, three socket pairs whose other ends go to the master
  /// as it starts, a wake-up pair) takes nine at most, six once started; opening the master
  /// (an ssh's pipes and process descriptor, about six) never happens at the same time.
  /// One more is a margin.
  public static let perHost = 10
  /// Descriptors kept for everything else: stdio, the store's lock, the audit log, the state
  /// database and its WAL, the avahi client's bus, the closing of masters over their sockets.
  public static let reserve = 64

  public init(soft: Int, hard: Int) {
    self.soft = soft
    self.hard = hard
  }

  /// Hosts that can be worked on at once within the soft limit (at least one).
  public var hostsAtOnce: Int { max(1, (soft - Self.reserve) / Self.perHost) }

  /// Descriptors that `hosts` hosts at once need.
  public static func needed(hosts: Int) -> Int { reserve + hosts * perHost }

  /// The soft limit raised as far as the hard one allows (an unlimited hard limit: to
  /// `ceiling`, the kernel's `nr_open` default); never lowered.
  public func raised(ceiling: Int = 1 << 20) -> DescriptorLimit {
    DescriptorLimit(soft: max(soft, min(hard, ceiling)), hard: hard)
  }

  /// How many of `hosts` run at once for a requested fan-out of `requested`: fewer when the
  /// soft limit allows fewer; then also what to say about it.
  public func fanOut(_ requested: Int, hosts: Int) -> (limit: Int, notice: String?) {
    let wanted = max(1, min(requested, hosts))
    guard wanted > hostsAtOnce else { return (requested, nil) }
    let hardText = hard == Int.max ? "unlimited" : String(hard)
    return (
      hostsAtOnce,
      "\(wanted) hosts at once need about \(Self.needed(hosts: wanted)) file descriptors; this process may open \(soft) "
        + "(ulimit -n; hard limit \(hardText)): \(hostsAtOnce) hosts run at once, the others take turns. "
        + "Raise the hard limit (ulimit -Hn, LimitNOFILE=) to run more at once."
    )
  }

  // MARK: - The process's own

  /// The process's limit now.
  public static func current() -> DescriptorLimit {
    var limit = rlimit()
    guard getrlimit(resourceNoFile, &limit) == 0 else { return DescriptorLimit(soft: 1024, hard: 1024) }
    return DescriptorLimit(soft: count(limit.rlim_cur), hard: count(limit.rlim_max))
  }

  /// Raises the process's soft limit to its hard limit (what `raised()` says) and returns the
  /// limit in force afterwards; a refusal leaves the limit as it was. Programs this process
  /// starts inherit it. Called once, at start.
  @discardableResult
  public static func raise() -> DescriptorLimit {
    let now = current()
    let target = now.raised()
    if target.soft > now.soft {
      var limit = rlimit()
      if getrlimit(resourceNoFile, &limit) == 0 {
        limit.rlim_cur = rlim_t(target.soft)
        _ = setrlimit(resourceNoFile, &limit)
      }
    }
    let after = current()
    inForce.withLock { $0 = after }
    return after
  }

  /// The limit the fan-out goes by: the process's, as `raise()` left it (read once otherwise).
  private static let inForce = Mutex<DescriptorLimit?>(nil)
  /// Whether the process has said that its fan-out was lowered (said once per process).
  private static let said = Mutex(false)

  /// `fanOut(_:hosts:)` of the process's limit: the hosts to run at once. Lowered, it is said
  /// to `notify` (stderr by default) the first time in the process.
  public static func fanOut(
    _ requested: Int, hosts: Int, notify: (String) -> Void = { StateDatabase.standardError("note: " + $0) }
  ) -> Int {
    let limit = inForce.withLock { limit in
      if limit == nil { limit = current() }
      return limit!
    }
    let (allowed, notice) = limit.fanOut(requested, hosts: hosts)
    if let notice, said.withLock({ said in defer { said = true }; return !said }) { notify(notice) }
    return allowed
  }

  /// `value` as a count; RLIM_INFINITY (all ones) as `Int.max`.
  private static func count(_ value: rlim_t) -> Int {
    value > rlim_t(Int.max) ? Int.max : Int(value)
  }

  #if canImport(Glibc)
    private static let resourceNoFile = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
  #else
    private static let resourceNoFile = RLIMIT_NOFILE
  #endif
}
