// The syntax tree of a runbook. Plain values: indirect enums, no visitors.

/// A name as written, with its place.
public struct Identifier: Hashable, Sendable {
  public var name: String
  public var range: SourceRange
  public init(_ name: String, _ range: SourceRange) {
    self.name = name
    self.range = range
  }
}

/// A parsed source file.
public struct Program: Sendable {
  public var file: FileID
  public var statements: [Statement]
  public init(file: FileID, statements: [Statement]) {
    self.file = file
    self.statements = statements
  }
}

/// A `< … >` block.
public struct Block: Sendable {
  public var statements: [Statement]
  public var range: SourceRange
  public init(statements: [Statement], range: SourceRange) {
    self.statements = statements
    self.range = range
  }
}

/// One statement, with the range it covers.
public struct Statement: Sendable {
  public indirect enum Kind: Sendable {
    /// `let NAME = EXPR`
    case `let`(Identifier, Expression)
    /// `let NAME = ACTION` (`let NAME = try ACTION` when the action is `tolerated`): binds
    /// the step's result.
    case letAction(Identifier, ActionStatement)
    /// `group NAME = PATTERN, …`
    case group(Identifier, [PatternItem])
    /// `on TARGET BLOCK`
    case on(Target, Block)
    /// An action: `run "…"`, `copy "…" to "…"`, …
    case action(ActionStatement)
    /// `if EXPR BLOCK else BLOCK` (an `else if` is an else block holding one `if`).
    case `if`(Expression, Block, Block?)
    /// `for NAME in EXPR BLOCK`
    case `for`(Identifier, Expression, Block)
    /// `def NAME(PARAM, …) BLOCK`
    case def(Identifier, [Identifier], Block)
    /// `NAME(ARG, …)`
    case call(Identifier, [Expression])
    /// `include "FILE"`; `program` is the loaded file (nil when it could not be loaded).
    case include(path: String, pathRange: SourceRange, program: Program?)
    /// `try BLOCK`
    case `try`(Block)
    /// `set NAME = EXPR`
    case set(Identifier, Expression)
    /// `print EXPR …`
    case print([Expression])
    /// `fail [EXPR]`
    case fail(Expression?)
    /// A statement that did not parse (already diagnosed).
    case invalid
  }

  public var kind: Kind
  public var range: SourceRange
  public init(_ kind: Kind, _ range: SourceRange) {
    self.kind = kind
    self.range = range
  }
}

/// The action keywords, as the syntax knows them.
public enum ActionKind: String, Hashable, Sendable, CaseIterable {
  case copy, sync, run, script, password, install, remove, upgrade, pkgsync, service, fetch
  case reboot

  /// The number of arguments the action takes, before list spreading: `min...max` (a bare
  /// word of `words` is not an argument).
  public var arity: ClosedRange<Int> {
    switch self {
    case .copy, .run, .service, .fetch: 1...1
    case .sync, .upgrade, .pkgsync: 0...0
    case .reboot: 0...0
    case .script, .install, .remove: 1...Int.max
    case .password: 2...2
    }
  }

  /// What the arguments are, for arity messages.
  var argumentsDescription: String {
    switch self {
    case .copy: "a path (and optionally 'to' a destination)"
    case .run: "a command"
    case .sync, .pkgsync: "no arguments"
    case .upgrade: "no arguments, or the word 'full'"
    case .reboot: "no arguments (only 'if needed')"
    case .script: "a script file and its arguments"
    case .install, .remove: "one or more package names"
    case .password: "a user and a crypt hash"
    case .service: "a unit name and a state (\(ActionKind.service.words.joined(separator: ", ")))"
    case .fetch: "an absolute path on the host"
    }
  }

  /// The bare words that may follow the action's arguments (`upgrade full`, `service cups
  /// started`): fixed syntax, not expressions. `service` needs one; `upgrade` may have one.
  public var words: [String] {
    switch self {
    case .upgrade: ["full"]
    case .service: ["started", "stopped", "restarted", "reloaded", "enabled", "disabled"]
    default: []
    }
  }
}

/// An action as written.
public struct ActionStatement: Sendable {
  public var kind: ActionKind
  /// The keyword's range.
  public var keyword: SourceRange
  public var arguments: [Expression]
  /// `copy PATH to DEST`: the destination.
  public var destination: Expression?
  /// The bare word after the arguments, one of `kind.words`: `full` of `upgrade full`, the
  /// state of `service NAME started`.
  public var word: Identifier?
  /// `let NAME = try ACTION`: a failure binds a failed result instead of ending the host's block.
  public var tolerated: Bool
  public var range: SourceRange
  /// `reboot if needed`: the range of `if needed`.
  public var ifNeeded: SourceRange?
  public init(
    kind: ActionKind, keyword: SourceRange, arguments: [Expression], destination: Expression?, word: Identifier? = nil,
    tolerated: Bool = false, range: SourceRange, ifNeeded: SourceRange? = nil
  ) {
    self.kind = kind
    self.keyword = keyword
    self.arguments = arguments
    self.destination = destination
    self.word = word
    self.tolerated = tolerated
    self.range = range
    self.ifNeeded = ifNeeded
  }
}

/// An item of a host list: a pattern written bare (`pc[01-05]`, `@lab`) or a string whose
/// value is parsed as a pattern list when the statement runs.
public enum PatternItem: Sendable {
  case pattern(String, SourceRange)
  case expression(Expression)

  public var range: SourceRange {
    switch self {
    case .pattern(_, let range): range
    case .expression(let expression): expression.range
    }
  }
}

/// Whom an `on` block targets.
public struct Target: Sendable {
  public enum Kind: Sendable {
    case all
    case groups([PatternItem])
    case hosts([PatternItem])
  }
  public var kind: Kind
  public var except: [PatternItem]
  public var range: SourceRange
  public init(kind: Kind, except: [PatternItem], range: SourceRange) {
    self.kind = kind
    self.except = except
    self.range = range
  }
}

/// A piece of a `"…"` string: literal text or an interpolated `$name` / `${a.b}`.
public enum StringPart: Hashable, Sendable {
  case text(String)
  case variable([Identifier])
}

/// Binary operators, loosest first.
public enum BinaryOperator: String, Hashable, Sendable {
  case or, and
  case equal = "=="
  case notEqual = "!="
  case `in`
  case notIn = "not in"
}

/// An expression with its range.
public struct Expression: Sendable {
  public indirect enum Kind: Sendable {
    /// A string; `raw` when written in single quotes.
    case string([StringPart], raw: Bool)
    case integer(Int)
    /// A duration literal as written (`30s`); its value is the runtime's business.
    case duration(String)
    case percent(Int)
    case boolean(Bool)
    case list([Expression])
    case variable(String)
    case member(Expression, Identifier)
    case call(Identifier, [Expression])
    case not(Expression)
    case binary(BinaryOperator, Expression, Expression)
    /// An expression that did not parse (already diagnosed).
    case invalid
  }

  public var kind: Kind
  public var range: SourceRange
  public init(_ kind: Kind, _ range: SourceRange) {
    self.kind = kind
    self.range = range
  }

  /// The text if this is a string without interpolation.
  public var literalString: String? {
    guard case .string(let parts, _) = kind else { return nil }
    var text = ""
    for part in parts {
      guard case .text(let piece) = part else { return nil }
      text += piece
    }
    return text
  }
}
