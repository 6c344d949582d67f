// The resolver: static checks that need names and the fleet's vocabulary, run before
// anything executes (and by `cfi-sh -n`): unknown variables, functions, groups and settings,
// bad host patterns, arity of calls, store files named by literal paths, defs that run
// actions being called outside `on`. It reports; it never runs anything.

import CFISyntax
import Foundation
import Runtime

/// What the resolver knows beyond the program: the fleet's groups and the store.
public struct ResolverContext: Sendable {
  /// Groups that exist without the runbook defining them (inventory, store, `unknown`).
  public var knownGroups: Set<String>
  /// The store, for checking literal store paths; nil to skip those checks.
  public var store: Store?
  /// Variables already defined (by earlier REPL lines).
  public var globals: Set<String>
  /// Functions already defined (by earlier REPL lines): name → parameter count, and whether
  /// they must run inside `on`.
  public var functions: [String: (arity: Int, needsHost: Bool)]
  /// The inventory the sources give, for `cfi-sh -n`'s warnings: literal host names none of
  /// them knows, store files that only some of a block's groups have; nil: not checked.
  public var inventory: Inventory?
  /// Whether a run may record deliveries (`set deliver = until_done`); the shell's entries may not.
  public var deliveries: Bool

  public init(
    knownGroups: Set<String> = [GroupName.unknown.rawValue], store: Store? = nil, globals: Set<String> = [],
    functions: [String: (arity: Int, needsHost: Bool)] = [:], inventory: Inventory? = nil, deliveries: Bool = true
  ) {
    self.deliveries = deliveries
    self.knownGroups = knownGroups.union([GroupName.unknown.rawValue])
    self.store = store
    self.globals = globals
    self.functions = functions
    self.inventory = inventory
  }
}

/// Checks a loaded runbook; see the file comment.
public struct Resolver {
  private var context: ResolverContext
  private var diagnostics: [Diagnostic] = []
  /// Names visible now: the global scope, then (inside `on` or `def`) one local scope.
  private var globals: Set<String>
  private var locals: Set<String>?
  /// All names bound anywhere at the top level (def bodies may use globals defined later).
  private var allGlobals: Set<String> = []
  private var groups: Set<String>
  private var insideOn = false
  private var insideDef = false
  /// Groups an `on` block targets, when they are known statically (for store checks).
  private var staticGroups: [String]? = nil
  /// For `on all` and `on host` blocks with literal targets, when the inventory is given: the
  /// store groups (with a tree) of the hosts they would run on, for `-n`'s warnings.
  private var hostGroups: [String]? = nil
  private var functions: [String: (arity: Int, needsHost: Bool)]
  /// Defs that run an `on` block.
  private var defsWithOn: Set<String> = []
  /// The runbook's files, for line numbers in messages.
  private let files: [SourceFile]
  /// Top-level variables bound to a literal string (`let hash = '$y$…'`), so actions that
  /// use them can be checked before anything runs.
  private var constants: [String: Expression] = [:]
  /// Names that may hold the result of an action, so that fields are read from them: those
  /// bound by `let NAME = ACTION` (`.result`: their fields are checked), and def parameters
  /// and loop variables inside `on` or a def, which may be given one (`.unknown`: not checked).
  private enum FieldKind { case result, unknown }
  private var fieldKinds: [String: FieldKind] = [:]
  /// What an `on` or `def` block being checked changed, to restore when it ends.
  private struct Scope {
    var locals: Set<String>?
    var insideOn: Bool
    var insideDef: Bool
    var globals: Set<String>
    var staticGroups: [String]?
    var hostGroups: [String]?
    var fieldKinds: [String: FieldKind]
  }
  private var scopes: [Scope] = []

  /// Runs the checks and returns the diagnostics (errors and warnings), in source order.
  public static func check(_ runbook: LoadedRunbook, context: ResolverContext) -> [Diagnostic] {
    var context = context
    return check(runbook, context: &context)
  }

  /// Checks like `check(_:context:)` and adds to `context` what the runbook defines at its
  /// top level (variables, defs, groups), for the next entry of a session.
  public static func check(_ runbook: LoadedRunbook, context: inout ResolverContext) -> [Diagnostic] {
    var resolver = Resolver(context: context, files: runbook.files)
    resolver.prepare(runbook.program.statements)
    var walker = Walker(resolver: resolver)
    StatementWalk().walk(runbook.program.statements, &walker)
    resolver = walker.resolver
    context.globals.formUnion(resolver.globals)
    context.functions.merge(resolver.functions) { $1 }
    context.knownGroups.formUnion(resolver.groups)
    return resolver.diagnostics.sorted { $0.range < $1.range }
  }

  private init(context: ResolverContext, files: [SourceFile]) {
    self.context = context
    self.files = files
    globals = context.globals.union(["args"])
    groups = context.knownGroups
    functions = context.functions
  }

  private func lineOf(_ range: SourceRange) -> Int {
    files[range.file.rawValue].lineColumn(of: range.start).line
  }

  private mutating func error(_ id: DiagnosticID, _ message: String, at range: SourceRange) {
    diagnostics.append(Diagnostic(id, message, at: range))
  }

  // MARK: - Pre-pass: defs and top-level names

  /// Collects defs (with arity and whether they need a host) and every top-level binding.
  private mutating func prepare(_ statements: [Statement]) {
    var collector = TopLevelNames()
    StatementWalk().walk(statements, &collector)
    for (name, parameters, _) in collector.defs {
      if let first = collector.defs.first(where: { $0.name.name == name.name }), first.name.range != name.range {
        error(
          .misplaced, "'\(name.name)' is already defined (at line \(lineOf(first.name.range))); give this one another name",
          at: name.range)
        continue
      }
      functions[name.name] = (parameters.count, false)
    }
    let bodies = Dictionary(collector.defs.map { ($0.name.name, $0.body) }) { first, _ in first }
    allGlobals = collector.names.union(globals)
    // Calls are followed into these bodies (and a def known from an earlier entry, whose
    // body is not here, counts as it was found then).
    let walk = StatementWalk(following: bodies)
    let outerFunctions = functions
    for (name, body) in bodies {
      // A def needs a host if it runs an action or uses `host`, itself or through the defs it calls.
      functions[name]?.needsHost = walk.contains(body.statements, entering: { inner in
        if case .on = inner.kind { false } else { true }
      }, where: { inner in
        if case .call(let callee, _) = inner.kind { bodies[callee.name] == nil && outerFunctions[callee.name]?.needsHost == true }
        else { Resolver.needsHost(inner) }
      })
      // A def that runs an `on` block (itself or through another def) cannot run inside one.
      if walk.contains(body.statements, where: { if case .on = $0.kind { true } else { false } }) {
        defsWithOn.insert(name)
      }
    }
  }

  /// Whether a statement itself (not its children) needs a host: an action, or `host` in
  /// one of its expressions.
  private static func needsHost(_ statement: Statement) -> Bool {
    switch statement.kind {
    case .action, .letAction: true
    case .if(let condition, _, _): usesHost(condition)
    case .for(_, let sequence, _): usesHost(sequence)
    case .let(_, let value): usesHost(value)
    case .print(let values): values.contains(where: usesHost)
    default: false
    }
  }

  /// The defs and the names bound at the top level (also inside `if`, `for`, `try` and
  /// included files there): def bodies may use globals that are bound further on.
  private struct TopLevelNames: StatementVisitor {
    var defs: [(name: Identifier, parameters: [Identifier], body: Block)] = []
    var names: Set<String> = []
    mutating func visit(_ statement: Statement) -> WalkDecision {
      switch statement.kind {
      case .def(let name, let parameters, let body):
        defs.append((name, parameters, body))
        return .skipChildren
      case .let(let name, _), .letAction(let name, _):
        names.insert(name.name)
        return .skipChildren
      case .for(let name, _, _):
        names.insert(name.name)
        return .enter
      case .if, .try, .include: return .enter
      default: return .skipChildren
      }
    }
  }

  private static func usesHost(_ expression: Expression) -> Bool {
    switch expression.kind {
    case .variable(let name): name == "host"
    case .string(let parts, _): parts.contains { if case .variable(let path) = $0 { path.first?.name == "host" } else { false } }
    case .list(let elements): elements.contains(where: usesHost)
    case .member(let base, _): usesHost(base)
    case .call(let name, let arguments): (name.name == "lines" && arguments.count == 1) || arguments.contains(where: usesHost)
    case .not(let operand): usesHost(operand)
    case .binary(_, let left, let right): usesHost(left) || usesHost(right)
    default: false
    }
  }

  // MARK: - Statements

  private mutating func bind(_ name: Identifier) {
    if name.name == "host" || name.name == "args" {
      error(.misplaced, "'\(name.name)' is a built-in variable and cannot be rebound", at: name.range)
    }
    if locals != nil { locals!.insert(name.name) } else { globals.insert(name.name) }
  }

  /// Checks a statement before its children; the scopes a block opens (`on`, `def`) are
  /// closed again in `leave`.
  private mutating func visit(_ statement: Statement) -> WalkDecision {
    switch statement.kind {
    case .let(let name, let value):
      expression(value)
      if locals == nil {
        let isConstant: Bool
        switch value.kind {
        case .list: isConstant = true
        default: isConstant = value.literalString != nil
        }
        constants[name.name] = isConstant ? value : nil
      }
      bind(name)
      if case .variable(let other) = value.kind, let kind = fieldKinds[other] { fieldKinds[name.name] = kind }
    case .letAction(let name, let action):
      self.action(action)
      bind(name)
      fieldKinds[name.name] = .result
    case .group(let name, let items):
      if GroupName(name.name) == nil {
        error(.badHostPattern, GroupNameError(text: name.name).description, at: name.range)
      }
      patterns(items)
      groups.insert(name.name)
    case .on(let target, _):
      on(target)
      return .enter
    case .action(let action):
      self.action(action)
    case .if(let condition, _, _):
      expression(condition)
      return .enter
    case .for(let name, let sequence, _):
      expression(sequence)
      bind(name)
      if insideOn || insideDef { fieldKinds[name.name] = .unknown }
      return .enter
    case .def(_, let parameters, _):
      scopes.append(
        Scope(
          locals: locals, insideOn: insideOn, insideDef: insideDef, globals: globals, staticGroups: staticGroups,
          hostGroups: hostGroups, fieldKinds: fieldKinds))
      locals = Set(parameters.map(\.name))
      fieldKinds = Dictionary(parameters.map { ($0.name, .unknown) }) { first, _ in first }
      insideDef = true
      globals = allGlobals
      return .enter
    case .call(let name, let arguments):
      arguments.forEach { expression($0) }
      call(name, arguments: arguments, asStatement: true)
    case .include, .try:
      return .enter
    case .set(let name, let value):
      setting(name, value)
    case .print(let values):
      values.forEach { expression($0) }
    case .fail(let message):
      if let message { expression(message) }
    case .invalid:
      break
    }
    return .skipChildren
  }

  private mutating func leave(_ statement: Statement) {
    switch statement.kind {
    case .on, .def:
      let scope = scopes.removeLast()
      (locals, insideOn, insideDef, globals, staticGroups, hostGroups, fieldKinds) =
        (scope.locals, scope.insideOn, scope.insideDef, scope.globals, scope.staticGroups, scope.hostGroups, scope.fieldKinds)
    default:
      break
    }
  }

  /// The resolver as the walk's visitor.
  private struct Walker: StatementVisitor {
    var resolver: Resolver
    mutating func visit(_ statement: Statement) -> WalkDecision { resolver.visit(statement) }
    mutating func leave(_ statement: Statement) { resolver.leave(statement) }
  }

  /// Checks an `on` target and opens the block's scope.
  private mutating func on(_ target: Target) {
    var known: [String]? = nil
    switch target.kind {
    case .all:
      break
    case .groups(let items):
      known = []
      for item in items {
        switch item {
        case .pattern(let name, let range):
          if name.hasPrefix("@") {
            error(.badHostPattern, "write 'on group \(name.dropFirst())' (without '@'), or 'on host \(name)'", at: range)
          } else if GroupName(name) == nil {
            error(.badHostPattern, GroupNameError(text: name).description, at: range)
          } else if !groups.contains(name) {
            unknownGroup(name, at: range)
          } else if let store = context.store, !store.hasGroup(name), name != GroupName.unknown.rawValue {
            // A group that is no store tree (a `group` statement's, a dsh group's) names hosts
            // that each receive their own group's tree: which ones is known only at run time.
            known = nil
          } else {
            known?.append(name)
          }
        case .expression(let expression):
          self.expression(expression)
          known = nil
        }
      }
    case .hosts(let items):
      patterns(items)
    }
    patterns(target.except, checkHosts: false)
    scopes.append(
      Scope(
        locals: locals, insideOn: insideOn, insideDef: insideDef, globals: globals, staticGroups: staticGroups,
        hostGroups: hostGroups, fieldKinds: fieldKinds))
    locals = locals ?? []  // inside a def, its parameters and locals stay visible
    insideOn = true
    staticGroups = known
    hostGroups = known == nil ? groupsOfHosts(target) : nil
  }

  /// The store groups of the hosts a target of literal patterns names in the inventory
  /// (nil when it is not given, or the target is computed or names groups).
  private func groupsOfHosts(_ target: Target) -> [String]? {
    guard let inventory = context.inventory, let store = context.store else { return nil }
    func hosts(_ items: [PatternItem]) -> [Runtime.Host]? {
      var result: [Runtime.Host] = []
      for item in items {
        guard case .pattern(let text, _) = item, let pattern = try? HostPattern(parsing: text) else { return nil }
        if let group = pattern.groupReference {
          result += inventory.hosts(inGroup: group)
        } else {
          guard let names = try? pattern.expand() else { return nil }
          result += names.compactMap { HostName($0).flatMap(inventory.named) }
        }
      }
      return result
    }
    var selected: [Runtime.Host]
    switch target.kind {
    case .all: selected = inventory.hosts
    case .hosts(let items):
      guard let named = hosts(items) else { return nil }
      selected = named
    case .groups: return nil
    }
    guard let excluded = hosts(target.except) else { return nil }
    let names = Set(excluded.map(\.name))
    selected.removeAll { names.contains($0.name) }
    return Set(selected.map(\.group.rawValue)).filter { store.hasGroup($0) }.sorted()
  }

  private mutating func unknownGroup(_ name: String, at range: SourceRange) {
    var message = "unknown group '\(name)'"
    var isDirectory: ObjCBool = false
    if let store = context.store,
      !FileManager.default.fileExists(atPath: store.root, isDirectory: &isDirectory) || !isDirectory.boolValue
    {
      // The likelier mistake: the whole store is not where it was looked for.
      message += "; the store directory \(store.root) does not exist (--store, CFI_STORE)"
    } else if let guess = closestMatch(to: name, in: groups) {
      message += "; did you mean '\(guess)'?"
    } else {
      message += "; groups come from the store's directories, the client list and 'group' statements"
    }
    error(.unknownGroup, message, at: range)
  }

  /// Warns when no source of the inventory knows some of `names` (a typo, or a host that
  /// would be reached by its DNS name alone, in the group `unknown`).
  private mutating func unknownHosts(_ names: [String], at range: SourceRange) {
    guard let inventory = context.inventory else { return }
    let unknown = names.filter { HostName($0).map { inventory.named($0) == nil } ?? false }
    guard !unknown.isEmpty else { return }
    diagnostics.append(
      Diagnostic(
        .unknownHost,
        "no source of the inventory knows \(HostFolding.foldedString(unknown)); it would be reached by its name alone "
          + "(the client list, dsh groups, known clients and discovery do not name it)",
        at: range, severity: .warning))
  }

  /// `checkHosts`: warn about literal host names no source knows (not for `except`, where
  /// naming a host that is not there is fine).
  private mutating func patterns(_ items: [PatternItem], checkHosts: Bool = true) {
    for item in items {
      switch item {
      case .pattern(let text, let range):
        if text.hasPrefix("$") {
          error(
            .badHostPattern, "'\(text)' is not a host pattern; to use a variable's value, write it in quotes: \"\(text)\"",
            at: range)
          continue
        }
        do throws(HostPatternError) {
          let pattern = try HostPattern(parsing: text)
          if let group = pattern.groupReference {
            if !groups.contains(group.rawValue) { unknownGroup(group.rawValue, at: range) }
          } else {
            let names = try pattern.expand()
            if checkHosts { unknownHosts(names, at: range) }
          }
        } catch {
          let start = range.start + min(error.offset, text.utf8.count)
          self.error(
            .badHostPattern, error.message,
            at: SourceRange(file: range.file, start: start, end: min(start + error.length, range.end)))
        }
      case .expression(let expression):
        self.expression(expression)
      }
    }
  }

  /// The text of an expression known before the run: a plain string, or a top-level variable
  /// bound to one (and not shadowed here).
  private func literalText(_ expression: Expression) -> String? {
    if let text = expression.literalString { return text }
    return constant(expression)?.literalString
  }

  /// The literal a top-level variable is bound to, if it is one and is not shadowed here.
  private func constant(_ expression: Expression) -> Expression? {
    guard case .variable(let name) = expression.kind, locals?.contains(name) != true else { return nil }
    return constants[name]
  }

  private mutating func action(_ action: ActionStatement) {
    action.arguments.forEach { expression($0) }
    if let destination = action.destination { expression(destination) }
    let arguments = action.arguments
    switch action.kind {
    case .copy, .script:
      if let destination = action.destination, let text = literalText(destination), !text.hasPrefix("/") {
        error(.badValue, "the destination of 'copy' must be an absolute path, such as \"/\(text)\"", at: destination.range)
      }
      guard let first = arguments.first, let path = literalText(first) else { break }
      do throws(StoreError) { _ = try Store.normalizedRelativePath(path) } catch {
        self.error(.store, error.message, at: first.range)
        break
      }
      guard let store = context.store else { break }
      if let groups = staticGroups {
        storePath(path, groups: groups, store: store, at: first.range)
      } else {
        // Targets known only at run time: still refuse a path that leads out of any group's
        // tree where it exists (a missing file is the run's business, per host).
        let existing = store.groups().filter { FileManager.default.fileExists(atPath: store.directory(of: $0) + "/" + path) }
        storePath(path, groups: existing, store: store, at: first.range)
        if let groups = hostGroups, !groups.isEmpty {
          let having = groups.filter(existing.contains)
          let missing = groups.filter { !existing.contains($0) }
          let message =
            having.isEmpty
            ? "'\(path)' is in the store of none of this block's groups (\(groups.joined(separator: ", "))): its hosts would fail"
            : "'\(path)' is in the store of \(having.joined(separator: ", ")) but not of \(missing.joined(separator: ", ")): "
              + "this block's hosts of \(missing.joined(separator: ", ")) would fail"
          if !missing.isEmpty { diagnostics.append(Diagnostic(.store, message, at: first.range, severity: .warning)) }
        }
      }
    case .password:
      if arguments.count == 2, let hash = literalText(arguments[1]), !CryptHash.isValid(hash) {
        error(.badValue, "the hash given to 'password' is " + CryptHash.invalidMessage, at: arguments[1].range)
      }
    case .install, .remove:
      for argument in arguments { packageNames(argument) }
    case .service:
      if let first = arguments.first, let unit = literalText(first), !UnitName.isValid(unit) {
        error(.badValue, "'\(unit)' is " + UnitName.invalidMessage, at: first.range)
      }
    case .fetch:
      guard let first = arguments.first, let path = literalText(first) else { break }
      do throws(StoreError) { _ = try Store.hostPath(path) } catch { self.error(.badValue, error.message, at: first.range) }
    case .pkgsync:
      guard let groups = staticGroups, let store = context.store else { break }
      for group in groups {
        do throws(StoreError) { _ = try Pkgsync.checkedLists(in: store, group: group) } catch {
          self.error(.store, error.message, at: action.keyword)
        }
      }
    default: break
    }
  }

  /// Checks package names known before the run: literals, lists of them, and the items of
  /// `lines(…)` files in the store of the groups the block targets.
  private mutating func packageNames(_ argument: Expression, at place: SourceRange? = nil) {
    switch argument.kind {
    case .list(let elements):
      elements.forEach { packageNames($0, at: place) }
    case .variable where constant(argument)?.literalString == nil:
      if let value = constant(argument) { packageNames(value, at: argument.range) }
    case .call(let name, let callArguments) where name.name == "lines":
      guard let store = context.store, let path = callArguments.first.flatMap(literalText) else { return }
      let groups = callArguments.count == 2 ? callArguments.last.flatMap(literalText).map { [$0] } : staticGroups
      for group in groups ?? [] {
        guard let items = try? store.lines(path, group: group) else { continue }
        if let bad = items.first(where: { !PackageName.isValid($0) }) {
          error(.badValue, "'\(bad)' in \(group)/\(path) is not a valid Debian package name", at: place ?? argument.range)
        }
      }
    default:
      if let name = literalText(argument), !PackageName.isValid(name) {
        error(.badValue, "'\(name)' is not a valid Debian package name", at: place ?? argument.range)
      }
    }
  }

  private mutating func storePath(_ path: String, groups: [String], store: Store, at range: SourceRange) {
    for group in groups {
      do throws(StoreError) { _ = try store.resolve(path, group: group) } catch {
        self.error(.store, error.message, at: range)
        return
      }
    }
  }

  private mutating func setting(_ name: Identifier, _ value: Expression) {
    if name.name == Setting.deliver.rawValue {
      deliverSetting(value)
      return
    }
    if name.name == Setting.discovery.rawValue, case .variable(let word) = value.kind,
      locals?.contains(word) != true, !globals.contains(word)
    {
      var message = "'discovery' must be on or off, not '\(word)'"
      if let guess = closestMatch(to: word, in: ["on", "off"]) { message += "; did you mean '\(guess)'?" }
      error(.badSetting, message, at: value.range)
      return
    }
    if !value.isNoneWord { expression(value) }
    guard let setting = Setting(rawValue: name.name) else {
      var message = "unknown setting '\(name.name)'"
      if let guess = closestMatch(to: name.name, in: Setting.allCases.map(\.rawValue)) {
        message += "; did you mean '\(guess)'?"
      } else {
        message += "; settings are " + Setting.allCases.map(\.rawValue).joined(separator: ", ")
      }
      error(.badSetting, message, at: name.range)
      return
    }
    if value.isNoneWord {
      var scratch = RunSettings()
      if let problem = scratch.applyNone(setting) { error(.badSetting, problem, at: value.range) }
    } else if let constant = Resolver.constant(value) {
      var scratch = RunSettings()
      if let problem = scratch.apply(setting, constant) { error(.badSetting, problem, at: value.range) }
    }
  }

  /// `set deliver = until_done | off`: only those words (a variable does not stand for them),
  /// and `until_done` only where a run can record deliveries.
  private mutating func deliverSetting(_ value: Expression) {
    guard let deliver = Setting.deliverMode(value) else {
      var message = "'deliver' must be \(Setting.deliver.expectation), not "
      switch value.kind {
      case .variable(let word) where globals.contains(word) || locals?.contains(word) == true:
        message += "the variable '\(word)': it takes only those words"
      case .variable(let word):
        message += "'\(word)'"
        if let guess = closestMatch(to: word, in: ["until_done", "off"]) { message += "; did you mean '\(guess)'?" }
      case .boolean: message += "on; did you mean 'until_done'?"
      default: message += Resolver.constant(value).map(\.typeName) ?? "an expression (write until_done or off)"
      }
      error(.badSetting, message, at: value.range)
      return
    }
    if deliver && !context.deliveries {
      error(
        .badSetting,
        "the interactive shell records no deliveries: 'set deliver = until_done' is for runbooks "
          + "(run one with 'cfi-sh deliver RUNBOOK')", at: value.range)
    }
  }

  /// The value of a literal expression, if it is one.
  static func constant(_ expression: Expression) -> Value? {
    switch expression.kind {
    case .integer(let value): .integer(value)
    case .percent(let value): .percent(value)
    case .boolean(let value): .boolean(value)
    case .duration(let text): (try? Duration(cfiText: text)).map(Value.duration)
    default: expression.literalString.map(Value.string)
    }
  }

  // MARK: - Expressions

  private mutating func variable(_ name: String, at range: SourceRange) {
    if name == "host" {
      if locals?.contains(name) == true || globals.contains(name) { return }  // rebinding already reported
      if !insideOn && !insideDef {
        error(.unknownVariable, "'host' is only defined inside an 'on' block", at: range)
      }
      return
    }
    if locals?.contains(name) == true || globals.contains(name) { return }
    var message = "unknown variable '\(name)'"
    let candidates = globals.union(locals ?? []).union(insideOn || insideDef ? ["host"] : [])
    if let guess = closestMatch(to: name, in: candidates) { message += "; did you mean '\(guess)'?" }
    error(.unknownVariable, message, at: range)
  }

  private mutating func expression(_ expression: Expression) {
    switch expression.kind {
    case .string(let parts, _):
      for case .variable(let path) in parts {
        variable(path[0].name, at: path[0].range)
        guard path.count > 1 else { continue }
        if !field(path[1], of: path[0].name) {
          error(
            .badInterpolation,
            "'\(path[0].name)' has no fields; only 'host' and results of actions do ('${host.name}', '${r.output}')",
            at: path[1].range)
        } else if path.count > 2 {
          error(.unknownVariable, "'\(path[0].name).\(path[1].name)' has no fields", at: path[2].range)
        }
      }
    case .list(let elements):
      elements.forEach { self.expression($0) }
    case .variable(let name):
      variable(name, at: expression.range)
    case .member(let base, let field):
      self.expression(base)
      if case .member(let innerBase, let inner) = base.kind {
        let owner = if case .variable(let name) = innerBase.kind { "\(name).\(inner.name)" } else { inner.name }
        error(.unknownVariable, "'\(owner)' has no fields", at: field.range)
      } else if case .variable(let name) = base.kind, !self.field(field, of: name) {
        error(
          .unknownVariable,
          "'\(name)' has no fields; only 'host' ('host.name') and results of actions ('let r = copy …', 'r.changed') do",
          at: field.range)
      }
    case .call(let name, let arguments):
      arguments.forEach { self.expression($0) }
      call(name, arguments: arguments, asStatement: false)
    case .not(let operand):
      self.expression(operand)
    case .binary(_, let left, let right):
      self.expression(left)
      self.expression(right)
    case .duration(let text):
      do throws(DurationTextError) { _ = try Duration(cfiText: text) } catch {
        self.error(.badNumber, error.message, at: expression.range)
      }
    case .integer, .percent, .boolean, .invalid:
      break
    }
  }

  /// Checks `NAME.FIELD`; false when `NAME` has no fields at all.
  private mutating func field(_ field: Identifier, of name: String) -> Bool {
    let (owner, fields, listed): (String, [String], String)
    if name == "host" {
      (owner, fields, listed) = ("'host'", HostField.allCases.map(\.rawValue), "name, group and address")
    } else {
      switch fieldKinds[name] {
      case nil: return false
      case .unknown: return true
      case .result:
        (owner, fields, listed) = ("'\(name)', the result of an action,", ResultField.allCases.map(\.rawValue), ResultField.listed)
      }
    }
    guard !fields.contains(field.name) else { return true }
    var message = "\(owner) has no field '\(field.name)'"
    if let guess = closestMatch(to: field.name, in: fields) {
      message += "; did you mean '\(guess)'?"
    } else {
      message += "; its fields are \(listed)"
    }
    error(.unknownVariable, message, at: field.range)
    return true
  }

  private mutating func call(_ name: Identifier, arguments expressions: [Expression], asStatement: Bool) {
    let arguments = expressions.count
    if let builtin = Builtin(rawValue: name.name) {
      if builtin == .lines, builtin.arity.contains(arguments), let store = context.store,
        let path = literalText(expressions[0])
      {
        // A list file named literally must exist for every group it will be read from.
        let groups = arguments == 2 ? literalText(expressions[1]).map { [$0] } : (insideOn ? staticGroups : nil)
        for group in groups ?? [] {
          do throws(StoreError) { _ = try store.resolve(path, group: group) } catch {
            self.error(.store, error.message, at: name.range.union(expressions[arguments - 1].range))
            break
          }
        }
      }
      if asStatement {
        error(.misplaced, "'\(name.name)' gives a value and does nothing else; use it in an expression", at: name.range)
      } else if !builtin.arity.contains(arguments) {
        error(.badArgumentCount, "wrong number of arguments: \(builtin.signature)", at: name.range)
      } else if builtin == .lines && arguments == 1 && !insideOn && !insideDef {
        error(.misplaced, "outside an 'on' block, 'lines' needs the group: lines(\"packages.list\", \"lab\")", at: name.range)
      }
      return
    }
    guard let function = functions[name.name] else {
      var message = "unknown function '\(name.name)'"
      if let guess = closestMatch(to: name.name, in: Array(functions.keys) + Builtin.allCases.map(\.rawValue)) {
        message += "; did you mean '\(guess)'?"
      }
      error(.unknownFunction, message, at: name.range)
      return
    }
    if !asStatement {
      error(.misplaced, "'\(name.name)' is a def and gives no value; call it as a statement", at: name.range)
    } else if function.arity != arguments {
      error(
        .badArgumentCount,
        "'\(name.name)' takes \(function.arity) argument\(function.arity == 1 ? "" : "s"), found \(arguments)",
        at: name.range)
    } else if insideOn && defsWithOn.contains(name.name) {
      error(.misplaced, "'\(name.name)' runs an 'on' block, so it cannot be called inside one", at: name.range)
    } else if function.needsHost && !insideOn && !insideDef {
      error(.actionOutsideOn, "'\(name.name)' runs actions or uses 'host', so it must be called inside an 'on' block", at: name.range)
    }
  }
}
