// `on` blocks: resolving targets to hosts, and fanning the body out over them with
// `parallel`, `serial` and `max_fail`.

import CFISyntax
import Runtime
import Synchronization

/// Counts hosts that failed or were unreachable in a block, shared by its host tasks.
private final class FailureCounter: Sendable {
  private let count = Mutex(0)
  func increment() { count.withLock { $0 += 1 } }
  var value: Int { count.withLock { $0 } }
}

/// Finds hosts by name: the inventory's (a pending one too: naming it accepts it), else a new
/// host in the group `group` statements give it.
private struct HostLookup {
  let inventory: Inventory
  /// Group of each host that only `group` statements name.
  let groups: [HostName: GroupName]

  func host(named name: HostName) -> Host {
    inventory.named(name) ?? Host(name: name, group: groups[name] ?? .unknown)
  }
}

extension Interpreter {
  /// A lookup over the frame's inventory. A host that only `group` statements name falls into
  /// the first of its groups (by name) that the store has, else `unknown`; why: its group picks
  /// its store tree, so it must not depend on how a block names the host.
  private func lookup(in frame: Frame) -> HostLookup {
    let inventory = frame.top?.inventory ?? options.inventory
    var groups: [HostName: GroupName] = [:]
    for group in inventory.namedSets.keys.sorted() {
      let hasTree = options.store.hasGroup(group.rawValue)
      for name in inventory.namedSets[group]! where inventory.named(name) == nil {
        if groups[name] == nil || hasTree && groups[name] == .unknown {
          groups[name] = hasTree ? group : .unknown
        }
      }
    }
    return HostLookup(inventory: inventory, groups: groups)
  }

  /// Parses pattern items into patterns (strings are evaluated now and may hold a list).
  private func patterns(_ items: [PatternItem], in frame: Frame) throws -> [(HostPattern, SourceRange)] {
    try items.flatMap { item -> [(HostPattern, SourceRange)] in
      switch item {
      case .pattern(let text, let range):
        do throws(HostPatternError) { return [(try HostPattern(parsing: text), range)] } catch {
          throw RuntimeError(error.message, at: range)
        }
      case .expression(let expression):
        let value = try evaluate(expression, in: frame)
        return try value.flattened.flatMap { element -> [(HostPattern, SourceRange)] in
          let text = try self.text(element, "a host pattern", at: expression.range)
          do throws(HostPatternError) { return try HostPattern.parseList(text).map { ($0, expression.range) } } catch {
            throw RuntimeError("in '\(text)': \(error.message)", at: expression.range)
          }
        }
      }
    }
  }

  /// Whether a group exists: in the inventory, in the store, or `unknown`.
  private func groupExists(_ group: GroupName, _ inventory: Inventory) -> Bool {
    group == .unknown || inventory.hasGroup(group) || options.store.hasGroup(group.rawValue)
  }

  /// The hosts of the group named `text` (a name that is not a group name names no group).
  private func hosts(inGroup text: String, _ lookup: HostLookup, at range: SourceRange) throws -> [Host] {
    guard let group = GroupName(text) else { throw RuntimeError("unknown group '\(text)'", at: range) }
    return try hosts(inGroup: group, lookup, at: range)
  }

  private func hosts(inGroup group: GroupName, _ lookup: HostLookup, at range: SourceRange) throws -> [Host] {
    guard groupExists(group, lookup.inventory) else { throw RuntimeError("unknown group '\(group)'", at: range) }
    return lookup.inventory.hosts(inGroup: group).map { lookup.host(named: $0.name) }
  }

  /// The hosts a host-name pattern names; a name its expansion makes that is no host name
  /// (longer than one may be) is an error at the pattern.
  private func hosts(expanding pattern: HostPattern, _ lookup: HostLookup, at range: SourceRange) throws -> [Host] {
    let names: [String]
    do throws(HostPatternError) { names = try pattern.expand() } catch { throw RuntimeError(error.message, at: range) }
    return try names.map { text in
      guard let name = HostName(text) else { throw RuntimeError("'\(text)' is not a valid host name", at: range) }
      return lookup.host(named: name)
    }
  }

  /// The hosts that pattern items name, in order, without duplicates.
  private func hosts(_ items: [PatternItem], in frame: Frame, _ lookup: HostLookup) throws -> [Host] {
    try namedHosts(items, in: frame, lookup).hosts
  }

  /// The hosts that pattern items name, in order, without duplicates, and those of them an
  /// item names by one plain name (not through a group or a range).
  private func namedHosts(_ items: [PatternItem], in frame: Frame, _ lookup: HostLookup) throws
    -> (hosts: [Host], byName: Set<HostName>)
  {
    var result: [Host] = []
    var seen: Set<HostName> = []
    var byName: Set<HostName> = []
    for (pattern, range) in try patterns(items, in: frame) {
      let found: [Host]
      if let group = pattern.groupReference {
        found = try hosts(inGroup: group, lookup, at: range)
      } else {
        found = try hosts(expanding: pattern, lookup, at: range)
        if pattern.isSingleName { byName.formUnion(found.map(\.name)) }
      }
      for host in found where seen.insert(host.name).inserted { result.append(host) }
    }
    return (result, byName)
  }

  /// Host names for a `group` statement.
  func hostNames(_ items: [PatternItem], in frame: Frame) throws -> [HostName] {
    try hosts(items, in: frame, lookup(in: frame)).map(\.name)
  }

  /// The hosts an `on` target names (those `--limit` allows), in natural order of their
  /// names, and the hosts it left out because they are this server (`options.server`): the
  /// server is part of `all`, a group or a pattern only when `on host NAME` names it by one
  /// plain name.
  func targetHosts(_ target: Target, in frame: Frame) throws -> (hosts: [Host], leftOut: [Host]) {
    let lookup = lookup(in: frame)
    var selected: [Host]
    var byName: Set<HostName> = []
    switch target.kind {
    case .all:
      selected = lookup.inventory.hosts + lookup.groups.keys.map { lookup.host(named: $0) }
    case .groups(let items):
      selected = []
      var seen: Set<HostName> = []
      for item in items {
        let names: [(String, SourceRange)]
        switch item {
        case .pattern(let name, let range): names = [(name, range)]
        case .expression(let expression):
          names = try evaluate(expression, in: frame).flattened.map {
            (try text($0, "a group name", at: expression.range), expression.range)
          }
        }
        for (name, range) in names {
          for host in try hosts(inGroup: name, lookup, at: range) where seen.insert(host.name).inserted {
            selected.append(host)
          }
        }
      }
    case .hosts(let items):
      (selected, byName) = try namedHosts(items, in: frame, lookup)
    }
    if !target.except.isEmpty {
      let excluded = Set(try hosts(target.except, in: frame, lookup).map(\.name))
      selected.removeAll { excluded.contains($0.name) }
    }
    if let limit = options.limit { selected.removeAll { !limit.allows($0.name) } }
    let server = options.server
    let leftOut = selected.filter { !byName.contains($0.name) && server.contains($0) }
    let leftOutNames = Set(leftOut.map(\.name))
    selected.removeAll { leftOutNames.contains($0.name) }
    let order = { (a: Host, b: Host) in HostFolding.naturalLess(a.name, b.name) }
    return (selected.sorted(by: order), leftOut.sorted(by: order))
  }

  /// Runs an `on` block: each host runs the body as its own thread, at most `parallel` at a
  /// time, in batches of `serial`; once more than `max_fail` hosts have failed, no new host
  /// starts and the run stops after this block.
  func runBlock(_ target: Target, _ body: Block, statement: Statement, in frame: inout Frame) async throws {
    guard frame.top != nil else {
      throw RuntimeError("'on' blocks cannot be nested", at: statement.range)
    }
    let (hosts, leftOut) = try targetHosts(target, in: frame)
    frame.top!.blockCount += 1
    let blockID = frame.top!.blockCount
    let settings = frame.settings
    let label = "on " + ScriptPrinter.target(target)
    let info = BlockInfo(id: blockID, label: label, location: location(statement.range), hosts: hosts, leftOut: leftOut)
    sink.emit(.blockStarted(info))
    // Nothing runs here: said, and counted for the exit status (a cron run with no hosts
    // must not look like a success).
    if hosts.isEmpty {
      frame.top!.unmatchedTargets += 1
      let target = options.limit.map { label + " with --limit " + $0.text } ?? label
      sink.emit(.noHosts(block: blockID, target: target, location: info.location))
    }

    let maxFail = settings.maxFail?.resolved(total: hosts.count)
    let batchSize = max(1, settings.serial?.resolved(total: hosts.count) ?? hosts.count)
    let failures = FailureCounter()
    // Inside a def, the block sees the def's parameters and locals as well as the globals.
    let globals = frame.globals.merging(frame.locals ?? [:]) { $1 }
    let functions = frame.functions
    var outcomes: [HostOutcome?] = []
    for batchStart in stride(from: 0, to: hosts.count, by: batchSize) {
      let batch = Array(hosts[batchStart..<min(hosts.count, batchStart + batchSize)])
      let canStart = { maxFail.map { failures.value <= $0 } ?? true }
      guard canStart(), !Task.isCancelled else {
        outcomes += batch.map { _ in nil }
        continue
      }
      // Fewer at once when the process's file descriptors would not last (said once, on stderr).
      let parallel = DescriptorLimit.fanOut(settings.parallel, hosts: batch.count)
      outcomes += await fanOut(batch, limit: parallel, shouldStart: canStart) { host in
        var hostFrame = Frame(
          globals: globals, locals: [:], functions: functions, host: host, top: nil, settings: settings, block: blockID)
        let outcome = await self.runHost(body, in: &hostFrame)
        if outcome.status == .failed || outcome.status == .unreachable { failures.increment() }
        self.sink.emit(.hostFinished(block: blockID, outcome))
        return outcome
      }
    }

    let stopped = maxFail.map { failures.value > $0 } ?? false
    let interrupted = Task.isCancelled
    let final = zip(hosts, outcomes).map { host, outcome in
      if let outcome { return outcome }
      let skipped = HostOutcome(
        host: host, status: interrupted ? .interrupted : .skipped,
        message: interrupted ? "interrupted before it started" : "not started: more than max_fail hosts failed")
      sink.emit(.hostFinished(block: blockID, skipped))
      return skipped
    }
    sink.emit(.blockFinished(id: blockID, outcomes: final, stopped: stopped))
    for outcome in final {
      let name = outcome.host.name
      if let known = frame.top!.outcomes[name] {
        if outcome.status > known.status { frame.top!.outcomes[name] = outcome }
      } else {
        frame.top!.outcomes[name] = outcome
        frame.top!.hostOrder.append(name)
      }
    }
    if stopped { frame.top!.stoppedByMaxFail = true }
    if interrupted { throw CancellationError() }
  }

  /// Runs a block body on one host and says how it ended there.
  private func runHost(_ body: Block, in frame: inout Frame) async -> HostOutcome {
    let host = frame.host!
    do {
      try await execute(body.statements, in: &frame)
      return HostOutcome(host: host, status: frame.changed ? .changed : .ok)
    } catch HostStop.failed(let message) {
      return HostOutcome(host: host, status: .failed, message: message)
    } catch HostStop.unreachable(let unreachable) {
      return HostOutcome(host: host, status: .unreachable, message: unreachable.message, reason: unreachable.reason)
    } catch let error as RuntimeError {
      return HostOutcome(host: host, status: .failed, message: describe(error.diagnostic))
    } catch {
      return HostOutcome(host: host, status: .interrupted)
    }
  }
}
