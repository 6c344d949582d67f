// The parser: recursive descent over tokens from the lexer, with recovery at statement
// boundaries so that one pass reports every error it can find. It never prints, never
// throws and never recurses without bound.

/// Parses one source file into a `Program` plus diagnostics.
public struct Parser {
  /// How deep blocks and expressions may nest. Why a limit: the parser and the
  /// tree-walking interpreter recurse once per level, and an adversarial input
  /// (10,000 `<`) must produce an error, not a stack overflow. Real runbooks nest < 10.
  public static let maxNesting = 128

  /// Called for `include "PATH"`; returns the included program (having reported its own
  /// diagnostics) or nil. The range is the path literal's, for errors about it.
  public typealias IncludeHandler = (_ path: String, _ range: SourceRange) -> Program?

  private let source: SourceFile
  private var lexer: Lexer
  private var current: Token
  private var previousEnd = 0
  private var diagnostics: [Diagnostic] = []
  /// Set after an error until the parser re-synchronizes, to avoid cascades.
  private var panicking = false
  /// Set once an error at the end of input is reported: every later one (each enclosing
  /// block still open, say) is a consequence of it.
  private var reportedEndOfInput = false
  private var nesting = 0
  private var onDepth = 0
  private var defDepth = 0
  private var blockDepth = 0
  private let includeHandler: IncludeHandler?

  /// Parses `source`. `include` statements call `includeHandler` (without one, they are errors).
  public static func parse(_ source: SourceFile, include includeHandler: IncludeHandler? = nil) -> (Program, [Diagnostic]) {
    var parser = Parser(source: source, includeHandler: includeHandler)
    let statements = parser.parseStatements(untilBlockClose: false)
    return (Program(file: source.id, statements: statements), parser.diagnostics)
  }

  private init(source: SourceFile, includeHandler: IncludeHandler?) {
    self.source = source
    self.includeHandler = includeHandler
    lexer = Lexer(source)
    current = lexer.next()
  }

  // MARK: - Token helpers

  private mutating func advance() {
    previousEnd = current.range.end
    current = lexer.next()
  }

  private func at(_ kind: Token.Kind) -> Bool { current.kind == kind }
  private func at(_ keyword: Keyword) -> Bool { current.kind == .keyword(keyword) }
  private func atWord(_ word: String) -> Bool { current.kind == .identifier && text(current) == word }

  private func text(_ token: Token) -> String { source.text(token.range) }

  private func range(from start: Int) -> SourceRange {
    SourceRange(file: source.id, start: start, end: max(start, previousEnd))
  }

  /// Whether the current token ends a statement.
  private var atStatementEnd: Bool {
    switch current.kind {
    case .newline, .semicolon, .blockClose, .endOfInput: true
    default: false
    }
  }

  private mutating func consume(_ kind: Token.Kind) -> Bool {
    guard at(kind) else { return false }
    advance()
    return true
  }

  // MARK: - Diagnostics

  private mutating func report(_ id: DiagnosticID, _ message: String, at range: SourceRange, notes: [Diagnostic.Note] = []) {
    guard !panicking else { return }
    diagnostics.append(Diagnostic(id, message, at: range, notes: notes))
  }

  /// Reports that `what` was expected at the current token, and enters panic mode.
  private mutating func expected(_ what: String, notes: [Diagnostic.Note] = []) {
    reportUnexpected("expected \(what), found \(describeCurrent())", notes: notes)
  }

  private mutating func reportUnexpected(_ message: String, notes: [Diagnostic.Note] = []) {
    switch current.kind {
    case .error(let problem):
      report(problem.id, problem.message, at: current.range)
    case .endOfInput:
      if !reportedEndOfInput { report(.unexpectedEndOfInput, message, at: endOfText, notes: notes) }
      reportedEndOfInput = true
    default:
      report(.expected, message, at: current.range, notes: notes)
    }
    panicking = true
  }

  /// Where to point for "found end of input": just after the last non-blank byte, so the
  /// excerpt shows the line that is incomplete rather than an empty last line.
  private var endOfText: SourceRange {
    var end = source.bytes.count
    while end > 0, [UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"), UInt8(ascii: "\n")].contains(source.bytes[end - 1]) {
      end -= 1
    }
    return SourceRange(file: source.id, start: end, end: end)
  }

  private func describeCurrent() -> String {
    switch current.kind {
    case .identifier, .integer, .duration, .percent, .hostPattern: "'\(clipped(text(current)))'"
    case .string, .rawString: "string \(clipped(text(current)))"
    default: Token.describe(current.kind)
    }
  }

  private func clipped(_ text: String) -> String {
    text.count > 40 ? String(text.prefix(37)) + "..." : text
  }

  /// Skips to the start of the next statement: past a newline or ';', or up to a '>' that
  /// closes the enclosing block. Nested blocks inside the bad statement are skipped whole.
  private mutating func synchronize() {
    var depth = 0
    while true {
      switch current.kind {
      case .endOfInput:
        panicking = false
        return
      case .newline where depth == 0, .semicolon where depth == 0:
        advance()
        panicking = false
        return
      case .blockClose where depth == 0 && blockDepth > 0:
        panicking = false
        return
      case .blockClose where depth == 0:
        break  // a stray '>' at the top level is part of the bad statement
      case .blockOpen: depth += 1
      case .blockClose: depth -= 1
      default: break
      }
      advance()
    }
  }

  // MARK: - Statements

  /// statements -> (statement (NEWLINE | ';'))*  — up to '>' (in a block) or the end.
  private mutating func parseStatements(untilBlockClose: Bool) -> [Statement] {
    var statements: [Statement] = []
    while true {
      switch current.kind {
      case .newline, .semicolon:
        advance()
        continue
      case .endOfInput:
        return statements
      case .blockClose:
        if untilBlockClose { return statements }
        report(.unexpectedToken, "unexpected '>' with no open block", at: current.range)
        advance()
        continue
      default:
        break
      }
      let statement = parseStatement()
      statements.append(statement)
      if panicking {
        synchronize()
      } else if !atStatementEnd {
        expected("newline or ';' after the statement")
        synchronize()
      }
    }
  }

  /// statement -> let | group | on | action | if | for | def | call | include | try | set | print | fail
  private mutating func parseStatement() -> Statement {
    let start = current.range.start
    let kind: Statement.Kind
    switch current.kind {
    case .keyword(.let): kind = parseLet()
    case .keyword(.group): kind = parseGroup()
    case .keyword(.on): kind = parseOn()
    case .keyword(.if): kind = parseIf()
    case .keyword(.for): kind = parseFor()
    case .keyword(.def): kind = parseDef()
    case .keyword(.include): kind = parseInclude()
    case .keyword(.try):
      advance()
      kind = parseBlock(opener: "try").map { .try($0) } ?? .invalid
    case .keyword(.set): kind = parseSet()
    case .keyword(.print):
      advance()
      kind = .print(parseArguments())
    case .keyword(.fail):
      advance()
      kind = .fail(atStatementEnd ? nil : parseExpression())
    case .keyword(let keyword) where keyword.isAction:
      kind = parseAction().map { .action($0) } ?? .invalid
    case .identifier:
      kind = parseCallOrUnknown()
    case .keyword(.else):
      reportUnexpected("unexpected 'else'; it must follow the '>' of an 'if' block (on the same line or the next)")
      kind = .invalid
    default:
      expected("a statement")
      kind = .invalid
    }
    return Statement(kind, range(from: start))
  }

  /// let -> "let" NAME "=" (expression | ["try"] action)
  private mutating func parseLet() -> Statement.Kind {
    advance()
    guard let name = parseIdentifier("a variable name after 'let'") else { return .invalid }
    // Past the name, a bad statement still binds it (to an invalid value), so that uses of
    // the name further on are not reported as unknown too.
    guard consume(.assign) else {
      expected("'=' after 'let \(name.name)'")
      return .let(name, Expression(.invalid, name.range))
    }
    let tolerated = at(.try)
    if tolerated {
      advance()
      guard case .keyword(let keyword) = current.kind, keyword.isAction else {
        expected("an action after 'let \(name.name) = try' (to tolerate a block, write 'try < … >' as a statement)")
        return .let(name, Expression(.invalid, name.range))
      }
    }
    if case .keyword(let keyword) = current.kind, keyword.isAction {
      let start = current.range
      guard var action = parseAction() else { return .let(name, Expression(.invalid, start)) }
      action.tolerated = tolerated
      return .letAction(name, action)
    }
    return .let(name, parseExpression())
  }

  /// group -> "group" NAME "=" patternItems
  private mutating func parseGroup() -> Statement.Kind {
    let keyword = current.range
    advance()
    if onDepth > 0 {
      report(.misplaced, "'group' cannot be used inside an 'on' block", at: keyword)
    }
    let nameToken = nextPatternToken()
    guard nameToken.kind == .hostPattern else {
      expected("a group name after 'group'")
      return .invalid
    }
    let name = Identifier(text(nameToken), nameToken.range)
    advance()
    // Past the name, a bad statement still defines the group (empty), so that uses of it
    // further on are not reported as unknown too.
    guard consume(.assign) else {
      expected("'=' after 'group \(name.name)'")
      return .group(name, [])
    }
    guard let items = parsePatternItems(what: "a host pattern") else { return .group(name, []) }
    return .group(name, items)
  }

  /// on -> "on" ("all" | "group" items | "host" items) ("except" items)? block
  private mutating func parseOn() -> Statement.Kind {
    let keyword = current.range
    let start = keyword.start
    advance()
    if onDepth > 0 {
      report(.misplaced, "'on' blocks cannot be nested; an 'on' block already runs on each host", at: keyword)
    }
    let kind: Target.Kind
    if atWord("all") {
      advance()
      kind = .all
    } else if at(.group) {
      advance()
      guard let items = parsePatternItems(what: "a group name") else { return .invalid }
      kind = .groups(items)
    } else if atWord("host") || atWord("hosts") {
      advance()
      guard let items = parsePatternItems(what: "a host pattern") else { return .invalid }
      kind = .hosts(items)
    } else {
      if current.kind == .identifier, let guess = closestMatch(to: text(current), in: ["all", "group", "host"]) {
        reportUnexpected("expected 'all', 'group' or 'host' after 'on', found '\(text(current))'; did you mean '\(guess)'?")
      } else {
        expected("'all', 'group' or 'host' after 'on'")
      }
      return .invalid
    }
    var except: [PatternItem] = []
    if atWord("except") {
      advance()
      guard let items = parsePatternItems(what: "a host pattern after 'except'") else { return .invalid }
      except = items
    }
    let targetsAll = if case .all = kind { true } else { false }
    if !targetsAll && current.kind == .identifier && !atWord("except") {
      // `on host pc01 web1`: most likely a missing comma.
      expected("'<' to open the body of 'on' (separate several targets with ',')")
      return .invalid
    }
    let target = Target(kind: kind, except: except, range: range(from: start))
    onDepth += 1
    defer { onDepth -= 1 }
    guard let body = parseBlock(opener: "on") else { return .invalid }
    return .on(target, body)
  }

  /// if -> "if" expression block ("else" (block | if))?   — `else` may be on the next line.
  private mutating func parseIf() -> Statement.Kind {
    advance()
    let condition = parseExpression()
    guard let then = parseBlock(opener: "if") else { return .invalid }
    let saved = (lexer, current, previousEnd)
    while at(.newline) { advance() }
    guard at(.else) else {
      (lexer, current, previousEnd) = saved
      return .if(condition, then, nil)
    }
    advance()
    if at(.if) {
      let start = current.range.start
      guard enterNesting() else { return .invalid }
      defer { nesting -= 1 }
      let nested = Statement(parseIf(), range(from: start))
      return .if(condition, then, Block(statements: [nested], range: nested.range))
    }
    guard let otherwise = parseBlock(opener: "else") else { return .invalid }
    return .if(condition, then, otherwise)
  }

  /// for -> "for" NAME "in" expression block
  private mutating func parseFor() -> Statement.Kind {
    advance()
    guard let name = parseIdentifier("a loop variable after 'for'") else { return .invalid }
    guard consume(.keyword(.in)) else {
      expected("'in' after 'for \(name.name)'")
      return .invalid
    }
    let sequence = parseExpression()
    guard let body = parseBlock(opener: "for") else { return .invalid }
    return .for(name, sequence, body)
  }

  /// def -> "def" NAME "(" (NAME ("," NAME)*)? ")" block
  private mutating func parseDef() -> Statement.Kind {
    let keyword = current.range
    advance()
    if blockDepth > 0 {
      report(.misplaced, "'def' is only allowed at the top level of a runbook", at: keyword)
    }
    guard let name = parseIdentifier("a function name after 'def'") else { return .invalid }
    guard consume(.parenOpen) else {
      expected("'(' after 'def \(name.name)'")
      return .invalid
    }
    var parameters: [Identifier] = []
    while !at(.parenClose) {
      guard let parameter = parseIdentifier("a parameter name") else { return .invalid }
      if parameters.contains(where: { $0.name == parameter.name }) {
        report(.misplaced, "duplicate parameter '\(parameter.name)'", at: parameter.range)
      }
      parameters.append(parameter)
      if !consume(.comma) { break }
    }
    guard consume(.parenClose) else {
      expected("')' to close the parameter list")
      return .invalid
    }
    defDepth += 1
    defer { defDepth -= 1 }
    // A bad body still defines the function (empty), so that calls are not reported too.
    guard let body = parseBlock(opener: "def") else {
      return .def(name, parameters, Block(statements: [], range: range(from: keyword.start)))
    }
    return .def(name, parameters, body)
  }

  /// include -> "include" STRING   (a plain string, resolved relative to this file)
  private mutating func parseInclude() -> Statement.Kind {
    let keyword = current.range
    advance()
    if blockDepth > 0 {
      report(.misplaced, "'include' is only allowed at the top level of a runbook", at: keyword)
    }
    guard at(.string) || at(.rawString) else {
      expected("a file name in quotes after 'include'")
      return .invalid
    }
    let literal = parsePrimary()
    guard let path = literal.literalString else {
      report(.include, "the file name of 'include' must be a plain string, without interpolation", at: literal.range)
      return .invalid
    }
    guard !path.isEmpty else {
      report(.include, "the file name of 'include' is empty", at: literal.range)
      return .invalid
    }
    guard let includeHandler else {
      report(.include, "'include' is not available here", at: keyword)
      return .include(path: path, pathRange: literal.range, program: nil)
    }
    return .include(path: path, pathRange: literal.range, program: includeHandler(path, literal.range))
  }

  /// set -> "set" NAME "=" (expression | "on" | "off")
  private mutating func parseSet() -> Statement.Kind {
    let keyword = current.range
    advance()
    if onDepth > 0 {
      report(.misplaced, "'set' cannot be used inside an 'on' block; set it before the block", at: keyword)
    }
    guard let name = parseIdentifier("a setting name after 'set'") else { return .invalid }
    guard consume(.assign) else {
      expected("'=' after 'set \(name.name)'")
      return .invalid
    }
    // `on`/`off` read naturally for switches (`set discovery = off`).
    if at(.on) || atWord("off") {
      let value = Expression(.boolean(at(.on)), current.range)
      advance()
      return .set(name, value)
    }
    return .set(name, parseExpression())
  }

  /// action -> ACTION argument* ("to" argument)? | "reboot" ("if" "needed")?
  private mutating func parseAction() -> ActionStatement? {
    guard case .keyword(let keyword) = current.kind, let kind = ActionKind(rawValue: keyword.rawValue) else {
      return nil
    }
    let keywordRange = current.range
    let start = keywordRange.start
    advance()
    if onDepth == 0 && defDepth == 0 {
      report(
        .actionOutsideOn,
        "'\(kind.rawValue)' must be inside an 'on' block, which says on which hosts it runs",
        at: keywordRange)
    }
    // `reboot if needed`: `if` is a keyword, read here as part of the action.
    var ifNeeded: SourceRange?
    if kind == .reboot, at(.if) {
      let ifStart = current.range.start
      advance()
      guard atWord("needed") else {
        expected("'needed' after 'reboot if' ('reboot if needed' reboots only hosts where /run/reboot-required exists)")
        return nil
      }
      advance()
      ifNeeded = range(from: ifStart)
      if !atStatementEnd {
        reportUnexpected("'reboot if needed' takes nothing more; found \(describeCurrent())")
        return nil
      }
    }
    var arguments = parseArguments(stopAtTo: kind == .copy)
    // `password root hash`: the user is a name written bare, as in the seed's use case
    // (a user held in a variable is written "$user"); so is the unit of `service cups started`.
    if kind == .password || kind == .service, let user = arguments.first, case .variable(let name) = user.kind {
      arguments[0] = Expression(.string([.text(name)], raw: false), user.range)
    }
    var word: Identifier?
    if !kind.words.isEmpty, !panicking, !takeWord(kind, from: &arguments, into: &word, keyword: keywordRange) {
      return nil
    }
    var destination: Expression?
    if kind == .copy, atWord("to") {
      advance()
      if atStatementEnd {
        expected("a destination after 'to'")
        return nil
      }
      destination = parsePostfix()
      if !atStatementEnd && !panicking {
        reportUnexpected("'copy' takes one destination after 'to'; found more")
        return nil
      }
    }
    if panicking { return nil }
    let actionRange = range(from: start)
    if !kind.arity.contains(arguments.count) {
      let written = arguments.count + (word == nil ? 0 : 1)
      let found = written == 0 ? "none" : written == 1 ? "1 argument" : "\(written) arguments"
      report(
        .badArgumentCount,
        "'\(kind.rawValue)' takes \(kind.argumentsDescription), found \(found)",
        at: arguments.isEmpty ? keywordRange : arguments[0].range.union(arguments[arguments.count - 1].range))
      // Invalid, so that later checks do not also complain about the extra arguments.
      return nil
    }
    return ActionStatement(
      kind: kind, keyword: keywordRange, arguments: arguments, destination: destination, word: word, range: actionRange,
      ifNeeded: ifNeeded)
  }

  /// Takes the bare word that ends `upgrade full` or `service NAME STATE` out of `arguments`
  /// into `word`. False (diagnosed) when `service` has no state or not one of its states, or
  /// when `upgrade`'s one argument is a misspelt `full`; any other argument of `upgrade` is
  /// left to its arity check.
  private mutating func takeWord(
    _ kind: ActionKind, from arguments: inout [Expression], into word: inout Identifier?, keyword: SourceRange
  ) -> Bool {
    guard let last = arguments.last else {
      if kind == .upgrade { return true }
      report(.badArgumentCount, "'\(kind.rawValue)' takes \(kind.argumentsDescription), found none", at: keyword)
      return false
    }
    let name: String? = if case .variable(let name) = last.kind { name } else { nil }
    if let name, kind.words.contains(name), kind == .service ? arguments.count > 1 : arguments.count == 1 {
      word = Identifier(name, arguments.removeLast().range)
      return true
    }
    if kind == .upgrade {
      guard arguments.count == 1, let name, closestMatch(to: name, in: kind.words) != nil else { return true }
      report(.badValue, "'upgrade' takes no arguments or the word 'full'; did you mean 'upgrade full'?", at: last.range)
      return false
    }
    guard arguments.count > 1 else {
      report(.badArgumentCount, "'\(kind.rawValue)' takes \(kind.argumentsDescription), found no state", at: last.range)
      return false
    }
    var message = name.map { "'\($0)' is not a state of 'service'" } ?? "the state of 'service' is written as a bare word"
    if let guess = name.flatMap({ closestMatch(to: $0, in: kind.words) }) { message += "; did you mean '\(guess)'?" }
    report(.badValue, message + " (states: \(kind.words.joined(separator: ", ")))", at: last.range)
    return false
  }

  /// arguments -> postfix*  — juxtaposed, up to the end of the statement (or `to`).
  private mutating func parseArguments(stopAtTo: Bool = false) -> [Expression] {
    var arguments: [Expression] = []
    while !atStatementEnd && !panicking {
      if stopAtTo && atWord("to") { break }
      switch current.kind {
      case .comma:
        // `install "a", "b"`: say so, and read on (across a line break after the comma).
        report(.expected, "arguments are separated by spaces, not ','", at: current.range)
        advance()
        while at(.newline) { advance() }
        continue
      case .equal, .notEqual, .keyword(.and), .keyword(.or), .keyword(.in), .keyword(.not):
        let example = at(.not) ? "(not a)" : "(a \(text(current)) b)"
        reportUnexpected("unexpected '\(text(current))' in the arguments; put an expression with operators in parentheses, as in \(example)")
      case _ where canStartExpression:
        arguments.append(parsePostfix())
      default:
        expected("an argument or the end of the statement")
      }
    }
    return arguments
  }

  /// call -> NAME "(" arguments ")"   — or an unknown statement, diagnosed helpfully.
  private mutating func parseCallOrUnknown() -> Statement.Kind {
    let nameToken = current
    let name = Identifier(text(nameToken), nameToken.range)
    advance()
    if at(.parenOpen) {
      guard let arguments = parseCallArguments() else { return .invalid }
      return .call(name, arguments)
    }
    if at(.assign) {
      report(.unknownStatement, "unknown statement '\(name.name)'; to bind a variable write 'let \(name.name) = …'", at: name.range)
    } else if let guess = closestMatch(to: name.name, in: Keyword.statementStarters) {
      report(.unknownStatement, "unknown statement '\(name.name)'; did you mean '\(guess)'?", at: name.range)
    } else {
      report(.unknownStatement, "unknown statement '\(name.name)'", at: name.range)
    }
    panicking = true
    return .invalid
  }

  /// identifier -> NAME, diagnosing anything else (a keyword gets a specific message).
  private mutating func parseIdentifier(_ what: String) -> Identifier? {
    if at(.identifier) {
      let identifier = Identifier(text(current), current.range)
      advance()
      return identifier
    }
    if case .keyword(let keyword) = current.kind {
      reportUnexpected("expected \(what), found '\(keyword.rawValue)', which is a reserved word")
    } else {
      expected(what)
    }
    return nil
  }

  // MARK: - Blocks and patterns

  /// Counts one more level of nesting; past the limit, reports it and returns false
  /// (without counting), so callers `guard enterNesting() else {…}; defer { nesting -= 1 }`.
  private mutating func enterNesting() -> Bool {
    guard nesting < Parser.maxNesting else {
      report(.nestingTooDeep, "nesting is too deep (more than \(Parser.maxNesting) levels)", at: current.range)
      panicking = true
      return false
    }
    nesting += 1
    return true
  }

  /// block -> "<" statements ">"   — the '<' may be on the next line.
  private mutating func parseBlock(opener: String) -> Block? {
    if at(.newline) {
      let saved = (lexer, current, previousEnd)
      while at(.newline) { advance() }
      if !at(.blockOpen) { (lexer, current, previousEnd) = saved }
    }
    guard at(.blockOpen) else {
      expected("'<' to open the body of '\(opener)'")
      return nil
    }
    let open = current.range
    guard enterNesting() else {
      skipBalanced(open: .blockOpen, close: .blockClose)
      return nil
    }
    defer { nesting -= 1 }
    advance()
    blockDepth += 1
    let statements = parseStatements(untilBlockClose: true)
    blockDepth -= 1
    guard at(.blockClose) else {
      let line = source.lineColumn(of: open.start).line
      expected(
        "'>' to close the block of '\(opener)' opened at line \(line)",
        notes: [Diagnostic.Note("block opened here", at: open)])
      return nil
    }
    advance()
    return Block(statements: statements, range: open.union(range(from: open.start)))
  }

  /// Skips tokens from an opener to its matching closer (or the end) without recursing.
  private mutating func skipBalanced(open: Token.Kind, close: Token.Kind) {
    var depth = 0
    repeat {
      if at(open) { depth += 1 } else if at(close) { depth -= 1 }
      if at(.endOfInput) { return }
      advance()
    } while depth > 0
  }

  /// Reads the current position again in pattern mode.
  private mutating func nextPatternToken() -> Token {
    lexer.position = current.range.start
    current = lexer.nextPattern()
    return current
  }

  /// patternItems -> item ("," item)*   where item is a bare pattern or a string.
  private mutating func parsePatternItems(what: String) -> [PatternItem]? {
    var items: [PatternItem] = []
    repeat {
      let token = nextPatternToken()
      switch token.kind {
      case .hostPattern:
        items.append(.pattern(text(token), token.range))
        advance()
      case .string, .rawString:
        items.append(.expression(parsePrimary()))
      default:
        expected(what)
        return nil
      }
    } while consume(.comma)
    return items
  }

  // MARK: - Expressions

  private var canStartExpression: Bool {
    switch current.kind {
    case .string, .rawString, .integer, .duration, .percent, .identifier, .bracketOpen, .parenOpen,
      .keyword(.true), .keyword(.false), .keyword(.not):
      true
    default: false
    }
  }

  /// expression -> or
  private mutating func parseExpression() -> Expression {
    guard enterNesting() else {
      return Expression(.invalid, current.range)
    }
    defer { nesting -= 1 }
    return parseOr()
  }

  /// or -> and ("or" and)*
  private mutating func parseOr() -> Expression {
    let outer = nesting
    defer { nesting = outer }
    var left = parseAnd()
    while at(.or) {
      // Each operator in a chain makes the tree one level deeper.
      guard enterNesting() else { return Expression(.invalid, left.range) }
      advance()
      let right = parseAnd()
      left = Expression(.binary(.or, left, right), left.range.union(right.range))
    }
    return left
  }

  /// and -> not ("and" not)*
  private mutating func parseAnd() -> Expression {
    let outer = nesting
    defer { nesting = outer }
    var left = parseNot()
    while at(.and) {
      guard enterNesting() else { return Expression(.invalid, left.range) }
      advance()
      let right = parseNot()
      left = Expression(.binary(.and, left, right), left.range.union(right.range))
    }
    return left
  }

  /// not -> "not"* comparison   (iterative: a long run of `not` cannot overflow the stack,
  /// and counted as nesting, since the tree it makes is as deep as the run is long)
  private mutating func parseNot() -> Expression {
    let outer = nesting
    defer { nesting = outer }
    var negations: [SourceRange] = []
    while at(.not) {
      guard enterNesting() else { return Expression(.invalid, current.range) }
      negations.append(current.range)
      advance()
    }
    var expression = parseComparison()
    for negation in negations.reversed() {
      expression = Expression(.not(expression), negation.union(expression.range))
    }
    return expression
  }

  /// comparison -> postfix (("==" | "!=" | "in" | "not" "in") postfix)?
  private mutating func parseComparison() -> Expression {
    let left = parsePostfix()
    let op: BinaryOperator
    switch current.kind {
    case .equal: op = .equal
    case .notEqual: op = .notEqual
    case .keyword(.in): op = .in
    case .keyword(.not):
      let saved = (lexer, current, previousEnd)
      advance()
      guard at(.in) else {
        (lexer, current, previousEnd) = saved
        return left
      }
      op = .notIn
    default:
      return left
    }
    advance()
    let right = parsePostfix()
    return Expression(.binary(op, left, right), left.range.union(right.range))
  }

  /// postfix -> primary ("." NAME)*  |  NAME "(" arguments ")"
  private mutating func parsePostfix() -> Expression {
    let outer = nesting
    defer { nesting = outer }
    var expression = parsePrimary()
    while at(.dot) {
      guard enterNesting() else { return Expression(.invalid, expression.range) }
      advance()
      let nameToken = current
      let name: Identifier
      switch current.kind {
      case .identifier, .keyword:
        name = Identifier(text(current), current.range)
        advance()
      default:
        expected("a field name after '.'")
        return Expression(.invalid, expression.range.union(nameToken.range))
      }
      expression = Expression(.member(expression, name), expression.range.union(name.range))
    }
    return expression
  }

  /// callArguments -> "(" (expression ("," expression)*)? ")"   — the '(' is current.
  private mutating func parseCallArguments() -> [Expression]? {
    let open = current.range
    advance()
    var arguments: [Expression] = []
    while at(.newline) { advance() }
    while !at(.parenClose) {
      arguments.append(parseExpression())
      if panicking { return nil }
      while at(.newline) { advance() }
      if !consume(.comma) { break }
      while at(.newline) { advance() }
    }
    guard consume(.parenClose) else {
      expected("')' to close the argument list", notes: [Diagnostic.Note("'(' is here", at: open)])
      return nil
    }
    return arguments
  }

  /// primary -> STRING | RAW | INT | DURATION | PERCENT | "true" | "false" | NAME | call | list | "(" expression ")"
  private mutating func parsePrimary() -> Expression {
    let token = current
    switch token.kind {
    case .string, .rawString:
      advance()
      return decodeString(token)
    case .integer:
      advance()
      guard let value = Int(text(token)) else {
        report(.badNumber, "number '\(text(token))' is too large", at: token.range)
        return Expression(.invalid, token.range)
      }
      return Expression(.integer(value), token.range)
    case .percent:
      advance()
      return Expression(.percent(Int(text(token).dropLast()) ?? 0), token.range)
    case .duration:
      // Only the shape is the grammar's (digits and a unit, checked by the lexer); the value,
      // and whether it fits, is read by the runtime's duration codec.
      advance()
      return Expression(.duration(text(token)), token.range)
    case .keyword(.true), .keyword(.false):
      advance()
      return Expression(.boolean(token.kind == .keyword(.true)), token.range)
    case .identifier:
      advance()
      let name = Identifier(text(token), token.range)
      // A call needs its '(' right after the name: `install pkg (x)` is two arguments.
      if at(.parenOpen) && current.range.start == token.range.end {
        guard let arguments = parseCallArguments() else { return Expression(.invalid, token.range) }
        return Expression(.call(name, arguments), range(from: token.range.start))
      }
      return Expression(.variable(name.name), token.range)
    case .bracketOpen:
      return parseList()
    case .parenOpen:
      advance()
      let inner = parseExpression()
      guard consume(.parenClose) else {
        expected("')' to close '('", notes: [Diagnostic.Note("'(' is here", at: token.range)])
        return Expression(.invalid, token.range)
      }
      return Expression(inner.kind, range(from: token.range.start))
    default:
      if case .keyword(let keyword) = token.kind, keyword.isAction {
        reportUnexpected("'\(keyword.rawValue)' is an action, not a value; bind its result with 'let NAME = \(keyword.rawValue) …'")
      } else {
        expected("a value")
      }
      return Expression(.invalid, token.range)
    }
  }

  /// list -> "[" (expression ("," expression)* ","?)? "]"   — newlines allowed inside.
  private mutating func parseList() -> Expression {
    let open = current.range
    guard enterNesting() else {
      skipBalanced(open: .bracketOpen, close: .bracketClose)
      return Expression(.invalid, open)
    }
    defer { nesting -= 1 }
    advance()
    var elements: [Expression] = []
    while true {
      while at(.newline) { advance() }
      if at(.bracketClose) { break }
      elements.append(parseExpression())
      if panicking { return Expression(.invalid, range(from: open.start)) }
      while at(.newline) { advance() }
      if !consume(.comma) { break }
    }
    guard consume(.bracketClose) else {
      expected("',' or ']' in the list", notes: [Diagnostic.Note("'[' is here", at: open)])
      return Expression(.invalid, range(from: open.start))
    }
    return Expression(.list(elements), range(from: open.start))
  }

  // MARK: - Literals

  /// Decodes a string token: escapes and, in `"…"`, `$name` / `${a.b}` interpolation.
  private mutating func decodeString(_ token: Token) -> Expression {
    let raw = token.kind == .rawString
    let bytes = source.bytes
    let end = token.range.end - 1
    var index = token.range.start + 1
    var parts: [StringPart] = []
    var buffer: [UInt8] = []
    // A crypt hash in double quotes would read as several variables, each an error of its
    // own: said once, with the fix, and the text taken as written.
    if !raw, Self.looksLikeCryptHash(bytes[index..<end]) {
      report(
        .badInterpolation,
        "this looks like a crypt hash: in double quotes '$' starts a variable; write the hash in single quotes ('$…')",
        at: token.range)
      return Expression(.string([.text(String(decoding: bytes[index..<end], as: UTF8.self))], raw: false), token.range)
    }
    func flush() {
      if !buffer.isEmpty {
        parts.append(.text(String(decoding: buffer, as: UTF8.self)))
        buffer.removeAll()
      }
    }
    func at(_ offset: Int, _ length: Int = 1) -> SourceRange {
      SourceRange(file: source.id, start: offset, end: min(offset + length, token.range.end))
    }
    func isName(_ byte: UInt8) -> Bool {
      (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z") || byte == UInt8(ascii: "_")
        || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
    }
    while index < end {
      let byte = bytes[index]
      if raw {
        if byte == UInt8(ascii: "\\") && bytes[index + 1] == UInt8(ascii: "'") {
          buffer.append(UInt8(ascii: "'"))
          index += 2
        } else {
          buffer.append(byte)
          index += 1
        }
        continue
      }
      switch byte {
      case UInt8(ascii: "\\"):
        let escaped = bytes[index + 1]
        switch escaped {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "$"): buffer.append(escaped)
        case UInt8(ascii: "n"): buffer.append(UInt8(ascii: "\n"))
        case UInt8(ascii: "t"): buffer.append(UInt8(ascii: "\t"))
        default:
          let shown = String(decoding: [escaped], as: UTF8.self)
          report(.badEscape, "unknown escape '\\\(shown)'; known: \\\" \\\\ \\$ \\n \\t", at: at(index, 2))
        }
        index += 2
      case UInt8(ascii: "$"):
        let dollar = index
        index += 1
        if index < end && bytes[index] == UInt8(ascii: "{") {
          index += 1
          var path: [Identifier] = []
          var segmentStart = index
          var valid = true
          while index < end && bytes[index] != UInt8(ascii: "}") {
            if bytes[index] == UInt8(ascii: ".") {
              if segmentStart == index { valid = false }
              path.append(Identifier(String(decoding: bytes[segmentStart..<index], as: UTF8.self), at(segmentStart, index - segmentStart)))
              segmentStart = index + 1
            } else if !isName(bytes[index]) {
              valid = false
            }
            index += 1
          }
          guard index < end else {
            report(.badInterpolation, "unterminated '${' in string; close it with '}'", at: at(dollar, 2))
            break
          }
          if segmentStart == index { valid = false }
          path.append(Identifier(String(decoding: bytes[segmentStart..<index], as: UTF8.self), at(segmentStart, index - segmentStart)))
          index += 1
          if valid, let first = path.first?.name.utf8.first, !(first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9")) {
            flush()
            parts.append(.variable(path))
          } else {
            report(
              .badInterpolation, "'\(String(decoding: bytes[dollar..<index], as: UTF8.self))' is not a variable reference; write '${name}' or '${host.name}'",
              at: at(dollar, index - dollar))
          }
        } else if index < end && isName(bytes[index]) && !(bytes[index] >= UInt8(ascii: "0") && bytes[index] <= UInt8(ascii: "9")) {
          let nameStart = index
          while index < end && isName(bytes[index]) { index += 1 }
          flush()
          parts.append(.variable([Identifier(String(decoding: bytes[nameStart..<index], as: UTF8.self), at(dollar, index - dollar))]))
        } else {
          report(
            .badInterpolation,
            "'$' must be followed by a variable name or '{'; write '\\$' for a literal dollar sign, or use single quotes",
            at: at(dollar))
        }
      default:
        buffer.append(byte)
        index += 1
      }
    }
    if let bad = firstInvalidUTF8(in: token.range) {
      report(.invalidUTF8, "invalid UTF-8 byte 0x\(hex(bytes[bad])) in string", at: at(bad))
    }
    flush()
    return Expression(.string(parts, raw: raw), token.range)
  }

  /// Whether a string's text has the shape of a crypt(3) hash: `$ID$` with a known scheme
  /// (1, 2a/2b/2y, 5, 6, 7, y, gy, sha1), then only the hash alphabet, and two more `$`.
  static func looksLikeCryptHash(_ text: ArraySlice<UInt8>) -> Bool {
    let fields = text.split(separator: UInt8(ascii: "$"), omittingEmptySubsequences: false)
    guard text.first == UInt8(ascii: "$"), fields.count >= 4, text.count >= 20,
      ["1", "2a", "2b", "2y", "5", "6", "7", "y", "gy", "sha1"].contains(String(decoding: fields[1], as: UTF8.self))
    else { return false }
    return text.allSatisfy { byte in
      switch byte {
      case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
        UInt8(ascii: "."), UInt8(ascii: "/"), UInt8(ascii: "$"), UInt8(ascii: "="), UInt8(ascii: ","), UInt8(ascii: "-"):
        true
      default: false
      }
    }
  }

  /// The offset of the first byte of an invalid UTF-8 sequence within `range`, if any.
  private func firstInvalidUTF8(in range: SourceRange) -> Int? {
    var index = range.start
    while index < range.end {
      var iterator = source.bytes[index..<range.end].makeIterator()
      var decoder = UTF8()
      guard case .scalarValue(let scalar) = decoder.decode(&iterator) else { return index }
      index += UTF8.width(scalar)
    }
    return nil
  }
}
