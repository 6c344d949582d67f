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

/// One `on` block as it runs: what it says when it starts, when hosts join, and for a host
/// that never started.
private final class BlockRun: Sendable {
  let id: Int
  let label: String
  let location: String
  let settings: RunSettings
  /// The runbook sends nothing more to a host once done with this block (`Interpreter.finalBlock(in:)`).
  let isFinal: Bool
  let failures = FailureCounter()
  private let begun = Mutex(false)

  init(id: Int, label: String, location: String, settings: RunSettings, isFinal: Bool) {
    self.id = id
    self.label = label
    self.location = location
    self.settings = settings
    self.isFinal = isFinal
  }

  var hasStarted: Bool { begun.withLock { $0 } }

  /// Says the block began with `hosts` (none: `Interpreter.finish` says it matched no host).
  func started(_ hosts: [Host], leftOut: [Host], sink: any EventSink) {
    begun.withLock { $0 = true }
    sink.emit(.blockStarted(BlockInfo(id: id, label: label, location: location, hosts: hosts, leftOut: leftOut)))
  }

  func joined(_ hosts: [Host], sink: any EventSink) {
    sink.emit(.hostsJoined(block: id, hosts: hosts))
  }

  /// The outcome of a host of the block that never started, told to `sink`.
  func notStarted(_ host: Host, sink: any EventSink) -> HostOutcome {
    let interrupted = Task.isCancelled
    let outcome = HostOutcome(
      host: host, status: interrupted ? .interrupted : .skipped,
      message: interrupted ? "interrupted before it started" : "not started: more than max_fail hosts failed")
    sink.emit(.hostFinished(block: id, outcome))
    return outcome
  }
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
  ///
  /// While avahi is still browsed (`RunOptions.discovery`), the hosts of the target that the
  /// browse can no longer change start at once, and the others as soon as it has spoken for
  /// them; hosts it finds while the block runs join it. The block waits for the browse only
  /// while it can still gain hosts that way: until avahi's cache is read, and for a host the
  /// cache did not settle, until the browse ends (within the discovery bound). A block with
  /// `serial`, or `max_fail` as a share, needs its whole host list first: it waits as long,
  /// then runs on the hosts known then.
  func runBlock(_ target: Target, _ body: Block, statement: Statement, in frame: inout Frame) async throws {
    guard frame.top != nil else {
      throw RuntimeError("'on' blocks cannot be nested", at: statement.range)
    }
    var view = options.discovery?.view
    if let view { adopt(view, in: &frame) }
    var targets = try targetHosts(target, in: frame)
    frame.top!.blockCount += 1
    let settings = frame.settings
    let block = BlockRun(
      id: frame.top!.blockCount, label: "on " + ScriptPrinter.target(target), location: location(statement.range),
      settings: settings, isFinal: frame.top!.finalBlock == statement.range)
    var wholeList = settings.serial != nil
    if case .percent = settings.maxFail { wholeList = true }
    if wholeList, let discovery = options.discovery {
      while let current = view, Self.mustWait(current, for: targets.hosts), !Task.isCancelled {
        view = await discovery.view(after: current.version)
        adopt(view!, in: &frame)
        targets = try targetHosts(target, in: frame)
      }
    }
    let outcomes: [HostOutcome]
    if let view, view.stage != .complete, !wholeList, let discovery = options.discovery {
      outcomes = await runJoining(block, target: target, targets, view: view, discovery: discovery, body, in: &frame)
    } else {
      outcomes = await runListed(block, targets, body, in: frame)
    }
    try finish(block, outcomes, in: &frame)
  }

  /// Whether a block must go on waiting for the browse, with `hosts` in its target: avahi's
  /// cache is not read yet (or named no host), the target has no host yet (a cron run must
  /// not end "matched no host" for a host the network is about to name), or some of them
  /// the browse may still change.
  private static func mustWait(_ view: LiveInventory.View, for hosts: [Host]) -> Bool {
    view.stage != .complete
      && (view.stage < .cacheRead || hosts.isEmpty || !hosts.allSatisfy { view.isSettled($0.name) })
  }

  /// Brings the frame's inventory up to the whole of the browse (waiting for its end) when a
  /// `group` statement names a group's hosts (`group labs = @lab`): its members are taken
  /// once, so they must all be known. Other `group` statements name hosts by name and wait
  /// for nothing.
  func completeInventory(before items: [PatternItem], in frame: inout Frame) async throws {
    guard let discovery = options.discovery, discovery.view.stage != .complete,
      try patterns(items, in: frame).contains(where: { $0.0.groupReference != nil })
    else { return }
    var view = discovery.view
    while view.stage != .complete, !Task.isCancelled { view = await discovery.view(after: view.version) }
    adopt(view, in: &frame)
  }

  /// Brings the frame's inventory up to `view`, with the runbook's own `group`s added again.
  private func adopt(_ view: LiveInventory.View, in frame: inout Frame) {
    guard frame.top!.inventoryVersion != view.version else { return }
    var inventory = view.inventory
    for (group, names) in frame.top!.declaredGroups { inventory.addToGroup(group, names: names) }
    frame.top!.inventory = inventory
    frame.top!.inventoryVersion = view.version
  }

  /// A block on a fixed list of hosts: all of them at once, in batches of `serial`.
  private func runListed(_ block: BlockRun, _ targets: (hosts: [Host], leftOut: [Host]), _ body: Block, in frame: Frame)
    async -> [HostOutcome]
  {
    let hosts = targets.hosts
    block.started(hosts, leftOut: targets.leftOut, sink: sink)
    let maxFail = block.settings.maxFail?.resolved(total: hosts.count)
    let batchSize = max(1, block.settings.serial?.resolved(total: hosts.count) ?? hosts.count)
    let run = hostRunner(block, body, frame: frame)
    var outcomes: [HostOutcome?] = []
    for batchStart in stride(from: 0, to: hosts.count, by: batchSize) {
      let batch = Array(hosts[batchStart..<min(hosts.count, batchStart + batchSize)])
      let canStart = { maxFail.map { block.failures.value <= $0 } ?? true }
      guard canStart(), !Task.isCancelled else {
        outcomes += batch.map { _ in nil }
        continue
      }
      // Fewer at once when the process's file descriptors would not last (said once, on stderr).
      let parallel = DescriptorLimit.fanOut(block.settings.parallel, hosts: batch.count)
      outcomes += await fanOut(batch, limit: parallel, shouldStart: canStart, body: run)
    }
    return zip(hosts, outcomes).map { host, outcome in outcome ?? block.notStarted(host, sink: sink) }
  }

  /// A block whose target may still gain hosts from the browse (see `runBlock`).
  private func runJoining(
    _ block: BlockRun, target: Target, _ targets: (hosts: [Host], leftOut: [Host]), view first: LiveInventory.View,
    discovery: LiveInventory, _ body: Block, in frame: inout Frame
  ) async -> [HostOutcome] {
    enum Happening: Sendable {
      case finished(HostOutcome)
      case changed(LiveInventory.View)
    }
    let maxFail = block.settings.maxFail?.resolved(total: 0)
    let canStart = { maxFail.map { block.failures.value <= $0 } ?? true }
    let run = hostRunner(block, body, frame: frame)
    var outcomes: [HostOutcome] = []
    // The block's hosts in the order they came; those from `next` on have not started.
    var queue: [Host] = []
    var next = 0
    var queued: Set<HostName> = []
    var mustWait = true
    var latest = targets
    // Queues the hosts of the target that are settled in `view` (all of them with
    // `unsettled`) and not yet in the block, and says so: the block's start, or hosts joining it.
    func take(_ targets: (hosts: [Host], leftOut: [Host]), _ view: LiveInventory.View, unsettled: Bool = false) {
      latest = targets
      let new = targets.hosts.filter { (unsettled || view.isSettled($0.name)) && !queued.contains($0.name) }
      mustWait = Self.mustWait(view, for: targets.hosts)
      guard !new.isEmpty else { return }
      queued.formUnion(new.map(\.name))
      queue += new
      if block.hasStarted { block.joined(new, sink: sink) } else { block.started(new, leftOut: targets.leftOut, sink: sink) }
    }
    take(targets, first)
    await withTaskGroup(of: Happening.self) { group in
      var running = 0
      var watching = false
      var closing = false
      var stopped = false
      func watch(after version: Int) {
        watching = true
        group.addTask { .changed(await discovery.view(after: version)) }
      }
      func launch() {
        let parallel = DescriptorLimit.fanOut(block.settings.parallel, hosts: queue.count)
        while running < parallel, next < queue.count, !stopped {
          guard canStart(), !Task.isCancelled else {
            stopped = true
            return
          }
          let host = queue[next]
          next += 1
          running += 1
          group.addTask { .finished(await run(host)) }
        }
      }
      launch()
      watch(after: first.version)
      while let happening = await group.next() {
        switch happening {
        case .finished(let outcome):
          running -= 1
          outcomes.append(outcome)
        case .changed(let view):
          watching = false
          guard !closing, !Task.isCancelled else { break }
          adopt(view, in: &frame)
          if let targets = try? targetHosts(target, in: frame) { take(targets, view) }
          if view.stage != .complete { watch(after: view.version) }
        }
        launch()
        // Nothing runs and nothing is to come that the block must wait for: the browse is
        // not waited for any longer (what it finds now joins the next blocks).
        let idle = running == 0 && (next == queue.count || stopped)
        if watching, !closing, idle, !mustWait || stopped || Task.isCancelled {
          closing = true
          group.cancelAll()
        }
      }
    }
    // Interrupted: the hosts of the target that waited for the browse end as interrupted too.
    if Task.isCancelled { take(latest, first, unsettled: true) }
    if !block.hasStarted { block.started([], leftOut: latest.leftOut, sink: sink) }
    let order = { (a: HostOutcome, b: HostOutcome) in HostFolding.naturalLess(a.host.name, b.host.name) }
    return (outcomes + queue[next...].map { block.notStarted($0, sink: sink) }).sorted(by: order)
  }

  /// Runs the body on one host for `block`, counting its failure and telling its end.
  private func hostRunner(_ block: BlockRun, _ body: Block, frame: Frame) -> @Sendable (Host) async -> HostOutcome {
    // Inside a def, the block sees the def's parameters and locals as well as the globals.
    let globals = frame.globals.merging(frame.locals ?? [:]) { $1 }
    let functions = frame.functions
    let settings = block.settings
    return { host in
      var hostFrame = Frame(
        globals: globals, locals: [:], functions: functions, host: host, top: nil, settings: settings, block: block.id)
      let outcome = await self.runHost(body, in: &hostFrame)
      if block.isFinal { await self.executor.release(host) }
      if outcome.status == .failed || outcome.status == .unreachable { block.failures.increment() }
      self.sink.emit(.hostFinished(block: block.id, outcome))
      return outcome
    }
  }

  /// Ends a block: says it ended, and folds its outcomes into the run's.
  private func finish(_ block: BlockRun, _ outcomes: [HostOutcome], in frame: inout Frame) throws {
    let maxFail = block.settings.maxFail?.resolved(total: outcomes.count)
    let stopped = maxFail.map { block.failures.value > $0 } ?? false
    let interrupted = Task.isCancelled
    // Nothing ran here: said, and counted for the exit status (a cron run with no hosts must
    // not look like a success). An interrupted run says why it stopped instead.
    if outcomes.isEmpty, !interrupted {
      frame.top!.unmatchedTargets += 1
      let target = options.limit.map { block.label + " with --limit " + $0.text } ?? block.label
      sink.emit(.noHosts(block: block.id, target: target, location: block.location))
    }
    sink.emit(.blockFinished(id: block.id, outcomes: outcomes, stopped: stopped))
    for outcome in outcomes {
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
