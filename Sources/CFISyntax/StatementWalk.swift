// The one walk over statements. The resolver, the entry rewriter, the session, the
// interpreter's pre-pass and the runbook runner's queries all go through it, so that what is
// "inside" a statement has one definition:
//
// - Statements are visited depth-first, in source order.
// - The children of `on`, `for`, `try` and `def` are their blocks; those of `if` are its
//   block, then its else block; those of `include` are the included file's statements (when
//   it could be loaded); those of a call are the body of the def it calls, only when the walk
//   was given the defs to follow (`following:`), and each def at most once per walk, so that
//   recursion ends.
// - The visitor decides, per statement, whether the walk enters its children, skips them, or
//   stops altogether.

/// What the walk does after a visitor has seen a statement.
public enum WalkDecision: Sendable {
  /// Visit the statement's children next.
  case enter
  /// Go on with the next statement after this one.
  case skipChildren
  /// End the walk.
  case stop
}

/// Sees the statements of a walk.
public protocol StatementVisitor {
  /// Called on a statement before its children.
  mutating func visit(_ statement: Statement) -> WalkDecision
  /// Called on a statement after its children (when they were entered and the walk was not
  /// stopped among them).
  mutating func leave(_ statement: Statement)
}

extension StatementVisitor {
  public mutating func leave(_ statement: Statement) {}
}

/// A walk over statements; see the file comment for its rules.
public struct StatementWalk {
  /// Def bodies by name, for following calls.
  public var callees: [String: Block]

  /// A walk that follows calls into the bodies of `callees` (none: calls have no children).
  public init(following callees: [String: Block] = [:]) {
    self.callees = callees
  }

  /// Walks `statements` with `visitor`; false when the visitor stopped the walk.
  @discardableResult
  public func walk<Visitor: StatementVisitor>(_ statements: [Statement], _ visitor: inout Visitor) -> Bool {
    var entered: Set<String> = []
    return walk(statements, &visitor, &entered)
  }

  private func walk<Visitor: StatementVisitor>(
    _ statements: [Statement], _ visitor: inout Visitor, _ entered: inout Set<String>
  ) -> Bool {
    for statement in statements {
      switch visitor.visit(statement) {
      case .stop: return false
      case .skipChildren: continue
      case .enter:
        for children in self.children(of: statement, &entered) {
          guard walk(children, &visitor, &entered) else { return false }
        }
        visitor.leave(statement)
      }
    }
    return true
  }

  /// The statement lists a statement holds, in order.
  private func children(of statement: Statement, _ entered: inout Set<String>) -> [[Statement]] {
    switch statement.kind {
    case .on(_, let body), .for(_, _, let body), .try(let body), .def(_, _, let body): [body.statements]
    case .if(_, let then, let otherwise): [then.statements] + (otherwise.map { [$0.statements] } ?? [])
    case .include(_, _, let program?): [program.statements]
    case .call(let name, _):
      if let body = callees[name.name], entered.insert(name.name).inserted { [body.statements] } else { [] }
    default: []
    }
  }

  /// Whether the walk reaches a statement for which `match` is true; `enter` says which
  /// statements' children to look into (default: all).
  public func contains(
    _ statements: [Statement], entering enter: (Statement) -> Bool = { _ in true }, where match: (Statement) -> Bool
  ) -> Bool {
    withoutActuallyEscaping(match) { match in
      withoutActuallyEscaping(enter) { enter in
        var visitor = Search(match: match, enter: enter)
        return !walk(statements, &visitor)
      }
    }
  }

  /// The defs among `statements` and in the files they include (not inside blocks, where the
  /// parser refuses them), by name; a later def of a name wins.
  public static func defs(in statements: [Statement]) -> [String: (parameters: [Identifier], body: Block)] {
    var visitor = Defs()
    StatementWalk().walk(statements, &visitor)
    return visitor.found
  }
}

/// Stops at the first statement that matches.
private struct Search: StatementVisitor {
  let match: (Statement) -> Bool
  let enter: (Statement) -> Bool
  mutating func visit(_ statement: Statement) -> WalkDecision {
    match(statement) ? .stop : enter(statement) ? .enter : .skipChildren
  }
}

/// Collects top-level defs, through includes.
private struct Defs: StatementVisitor {
  var found: [String: (parameters: [Identifier], body: Block)] = [:]
  mutating func visit(_ statement: Statement) -> WalkDecision {
    switch statement.kind {
    case .def(let name, let parameters, let body):
      found[name.name] = (parameters, body)
      return .skipChildren
    case .include: return .enter
    default: return .skipChildren
    }
  }
}
