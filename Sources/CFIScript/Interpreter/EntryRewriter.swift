// How a session entry changes before it runs when the REPL has a default target: statements
// that need a host are wrapped in `on TARGET < … >`, and for `:rerun` the entry's own `on`
// blocks are pointed at TARGET. The same edits made to the entry's text give the runbook
// text that `:save` writes, comments and layout kept.

import CFISyntax
import Foundation

/// Rewrites one entry; see the file comment.
struct EntryRewriter {
  let target: Session.DefaultTarget?
  let retarget: Bool
  /// Defs known so far and in this entry: arity and whether they run actions.
  let functions: [String: (arity: Int, needsHost: Bool)]
  /// Their bodies, to see whether a call runs an `on` block.
  let bodies: [String: Block]
  /// The statements now inside an `on` block of the target.
  private(set) var wrapped: [SourceRange] = []
  /// Why the entry cannot run on the target as asked.
  private(set) var problems: [Diagnostic] = []
  /// Edits of the entry's text: byte range → replacement.
  private var edits: [(range: Range<Int>, text: String)] = []

  init(
    target: Session.DefaultTarget?, retarget: Bool, functions: [String: (arity: Int, needsHost: Bool)],
    bodies: [String: Block]
  ) {
    self.target = target
    self.retarget = retarget
    self.functions = functions
    self.bodies = bodies
  }

  /// A top-level statement of the entry, as it runs.
  mutating func topLevel(_ statement: Statement) -> Statement {
    guard let target else { return statement }
    if needsHost(statement) {
      wrapped.append(statement.range)
      edits.append((statement.range.start..<statement.range.start, "on \(ScriptPrinter.target(target.target)) < "))
      edits.append((statement.range.end..<statement.range.end, " >"))
      return Statement(.on(target.target, Block(statements: [statement], range: statement.range)), statement.range)
    }
    return retarget ? retargeted(statement, to: target) : statement
  }

  /// The entry's text with the edits made.
  func apply(to source: SourceFile) -> String {
    var bytes = source.bytes
    for edit in edits.sorted(by: { $0.range.lowerBound > $1.range.lowerBound }) {
      bytes.replaceSubrange(edit.range, with: Array(edit.text.utf8))
    }
    return String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .newlines)
  }

  /// Whether a top-level statement must run on hosts: an action, or a call of a def that
  /// needs one, itself or inside its `if`, `for` and `try` blocks.
  private func needsHost(_ statement: Statement) -> Bool {
    StatementWalk().contains([statement], entering: { inner in
      switch inner.kind {
      case .if, .for, .try: true
      default: false
      }
    }, where: { inner in
      switch inner.kind {
      case .action: true
      case .call(let name, _): functions[name.name]?.needsHost ?? false
      default: false
      }
    })
  }

  /// `statement` with its `on` blocks (also inside `if`, `for`, `try`) pointed at `target`.
  private mutating func retargeted(_ statement: Statement, to target: Session.DefaultTarget) -> Statement {
    var result = statement
    switch statement.kind {
    case .on(let old, let body):
      edits.append((old.range.start..<old.range.end, "on \(ScriptPrinter.target(target.target))"))
      result.kind = .on(target.target, body)
    case .if(let condition, let then, let otherwise):
      result.kind = .if(condition, retargeted(then, to: target), otherwise.map { retargeted($0, to: target) })
    case .for(let name, let sequence, let body):
      result.kind = .for(name, sequence, retargeted(body, to: target))
    case .try(let body):
      result.kind = .try(retargeted(body, to: target))
    case .include(_, _, let program?) where containsOn(program.statements):
      problems.append(
        Diagnostic(.misplaced, "cannot run this on another target: the included file chooses its own hosts", at: statement.range))
    case .call(let name, _) where containsOn([statement]):
      problems.append(
        Diagnostic(.misplaced, "cannot run this on another target: '\(name.name)' chooses its own hosts", at: statement.range))
    default:
      break
    }
    return result
  }

  private mutating func retargeted(_ block: Block, to target: Session.DefaultTarget) -> Block {
    Block(statements: block.statements.map { retargeted($0, to: target) }, range: block.range)
  }

  /// Whether statements run an `on` block, directly or through includes and calls (a def's
  /// body counts where it is called, not where it is written).
  private func containsOn(_ statements: [Statement]) -> Bool {
    StatementWalk(following: bodies).contains(statements, entering: { inner in
      if case .def = inner.kind { false } else { true }
    }, where: { inner in
      if case .on = inner.kind { true } else { false }
    })
  }
}
