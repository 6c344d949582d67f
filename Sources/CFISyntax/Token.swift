// Tokens of CFIScript.

/// The reserved words. Words that matter only in one place (`all`, `host`, `to`,
/// `except`) are not reserved: the parser recognises them where they can appear.
public enum Keyword: String, Hashable, Sendable, CaseIterable {
  case `let`, group, on, `if`, `else`, `for`, `in`, def, include, `try`, set, print, fail
  case `true`, `false`, and, or, not
  // Actions.
  case copy, sync, run, script, password, install, remove, upgrade, pkgsync, service, fetch
  case reboot

  /// The keywords that are actions (valid only inside `on`).
  public static let actions: [Keyword] = [
    .copy, .sync, .run, .script, .password, .install, .remove, .upgrade, .pkgsync, .service, .fetch, .reboot,
  ]

  /// Whether this keyword is an action.
  public var isAction: Bool { Keyword.actions.contains(self) }

  /// The keywords that can begin a statement, for "did you mean" suggestions.
  static let statementStarters: [String] =
    [Keyword.let, .group, .on, .if, .for, .def, .include, .try, .set, .print, .fail].map(\.rawValue)
    + actions.map(\.rawValue)
}

/// One token: its kind and where it is. Its text is read from the source when needed.
public struct Token: Hashable, Sendable {
  public enum Kind: Hashable, Sendable {
    case endOfInput
    case newline
    case semicolon  // ;
    case blockOpen  // <
    case blockClose  // >
    case bracketOpen  // [
    case bracketClose  // ]
    case parenOpen  // (
    case parenClose  // )
    case comma  // ,
    case dot  // .
    case assign  // =
    case equal  // ==
    case notEqual  // !=
    case identifier
    case keyword(Keyword)
    case string  // "…", with interpolation and escapes (decoded by the parser)
    case rawString  // '…', with only \' as an escape
    case integer
    case duration  // 30s, 5m, 1h, 250ms
    case percent  // 10%
    case hostPattern  // pc[01-20], @lab (only in pattern mode)
    case error(LexError)  // bad input; the problem says what
  }

  /// Bad input as one token: the kind of problem (the parser reports this ID, so nothing
  /// downstream decides on message text) and what to tell the operator.
  public struct LexError: Hashable, Sendable {
    public var id: DiagnosticID
    public var message: String
  }

  public var kind: Kind
  public var range: SourceRange

  public init(_ kind: Kind, _ range: SourceRange) {
    self.kind = kind
    self.range = range
  }

  /// How to name a kind in "expected X, found Y" messages.
  static func describe(_ kind: Kind) -> String {
    switch kind {
    case .endOfInput: "end of input"
    case .newline: "end of line"
    case .semicolon: "';'"
    case .blockOpen: "'<'"
    case .blockClose: "'>'"
    case .bracketOpen: "'['"
    case .bracketClose: "']'"
    case .parenOpen: "'('"
    case .parenClose: "')'"
    case .comma: "','"
    case .dot: "'.'"
    case .assign: "'='"
    case .equal: "'=='"
    case .notEqual: "'!='"
    case .identifier: "a name"
    case .keyword(let keyword): "'\(keyword.rawValue)'"
    case .string, .rawString: "a string"
    case .integer: "a number"
    case .duration: "a duration"
    case .percent: "a percentage"
    case .hostPattern: "a host pattern"
    case .error: "invalid input"
    }
  }
}

extension Token.Kind {
  /// An error token's kind.
  static func error(_ id: DiagnosticID, _ message: String) -> Token.Kind { .error(Token.LexError(id: id, message: message)) }
}
