// The canonical text of CFIScript: the one place that knows how to write the language, down
// to a string literal's escapes. Step and block labels (terminal and JSON output) and the
// target that `:save` and `:rerun` write around an entry print through it,
// so that nothing outside the syntax layer escapes CFIScript. Whole programs print through
// it too (`program`): the round-trip tests hold it to "parsing what it prints gives the same
// tree" for every golden case.
//
// Printing is faithful, not pretty: parsing what it prints gives the same tree (ranges
// aside). Expressions that are not primaries are parenthesized wherever the grammar could
// read them otherwise; a parenthesis makes no node, so the tree is unchanged.

/// Writes syntax trees as CFIScript text.
public enum ScriptPrinter {
  // MARK: - Strings

  /// `text` as the inside of a `"…"` string: `\`, `"` and `$` escaped, newlines and tabs
  /// written `\n` and `\t`.
  public static func escaped(_ text: some StringProtocol) -> String {
    var out = ""
    out.reserveCapacity(text.utf8.count)
    for scalar in text.unicodeScalars {
      switch scalar {
      case "\\": out += "\\\\"
      case "\"": out += "\\\""
      case "$": out += "\\$"
      case "\n": out += "\\n"
      case "\t": out += "\\t"
      default: out.unicodeScalars.append(scalar)
      }
    }
    return out
  }

  /// `text` as a `"…"` string literal whose value is exactly `text`.
  public static func quoted(_ text: some StringProtocol) -> String {
    "\"" + escaped(text) + "\""
  }

  /// `text` as a `'…'` raw string, if one can hold it: it has no line break (strings end on
  /// their line) and does not end in `\` (which would escape the closing quote).
  public static func rawQuoted(_ text: String) -> String? {
    guard !text.unicodeScalars.contains("\n"), !text.hasSuffix("\\") else { return nil }
    return "'" + text.replacing("'", with: "\\'") + "'"
  }

  // MARK: - Expressions

  /// An expression.
  public static func expression(_ expression: Expression) -> String {
    switch expression.kind {
    case .string(let parts, let raw):
      return string(parts, raw: raw)
    case .integer(let value): return String(value)
    case .duration(let text): return text
    case .percent(let value): return "\(value)%"
    case .boolean(let value): return value ? "true" : "false"
    case .list(let elements): return "[" + elements.map(self.expression).joined(separator: ", ") + "]"
    case .variable(let name): return name
    case .member(let base, let name): return operand(base) + "." + name.name
    case .call(let name, let arguments):
      return name.name + "(" + arguments.map(self.expression).joined(separator: ", ") + ")"
    case .not(let operand): return "not " + self.operand(operand)
    case .binary(let op, let left, let right): return operand(left) + " " + op.rawValue + " " + operand(right)
    case .invalid: return "(invalid)"
    }
  }

  /// An expression where only a primary (or a postfix chain) may stand: an operand, an
  /// action's argument, a member's base.
  static func operand(_ expression: Expression) -> String {
    switch expression.kind {
    case .not, .binary: "(" + self.expression(expression) + ")"
    default: self.expression(expression)
    }
  }

  private static func string(_ parts: [StringPart], raw: Bool) -> String {
    if raw {
      let text = parts.map { if case .text(let piece) = $0 { piece } else { "" } }.joined()
      if let literal = rawQuoted(text) { return literal }
    }
    var out = "\""
    for (index, part) in parts.enumerated() {
      switch part {
      case .text(let text):
        out += escaped(text)
      case .variable(let path):
        // `$name` where the next character cannot continue the name; `${…}` otherwise.
        let next: Character? = if index + 1 < parts.count, case .text(let following) = parts[index + 1] { following.first } else { nil }
        let continues = next.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") } ?? false
        let name = path.map(\.name).joined(separator: ".")
        out += path.count == 1 && !continues ? "$" + name : "${" + name + "}"
      }
    }
    return out + "\""
  }

  // MARK: - Statements

  /// An action as one line: `copy "a" to "/b"`, `install "htop" pkgs`, `service "cups"
  /// started`. With `secret`, the hash of `password` is written as `secret` (redacted),
  /// whatever expression gives it.
  public static func action(_ action: ActionStatement, redacting secret: String? = nil) -> String {
    var words = [action.kind.rawValue]
    for (index, argument) in action.arguments.enumerated() {
      if let secret, action.kind == .password, index == 1 {
        words.append(secret)
      } else {
        words.append(operand(argument))
      }
    }
    if let word = action.word { words.append(word.name) }
    if let destination = action.destination { words += ["to", operand(destination)] }
    if action.ifNeeded != nil { words += ["if", "needed"] }
    return words.joined(separator: " ")
  }

  /// A target as after `on`: `all`, `group lab, office`, `host pc[01-05] except pc03`.
  public static func target(_ target: Target) -> String {
    var text: String
    switch target.kind {
    case .all: text = "all"
    case .groups(let items): text = "group " + patterns(items)
    case .hosts(let items): text = "host " + patterns(items)
    }
    if !target.except.isEmpty { text += " except " + patterns(target.except) }
    return text
  }

  /// Items joined by `, `; after a pattern that leaves a `[` open (which the resolver rejects,
  /// but the parser keeps), by ` , `, or the comma would be read as part of it.
  private static func patterns(_ items: [PatternItem]) -> String {
    var text = ""
    var leftOpen = false
    for item in items {
      if !text.isEmpty { text += leftOpen ? " , " : ", " }
      switch item {
      case .pattern(let pattern, _):
        text += pattern
        leftOpen = Lexer.patternEndsInsideBrackets(pattern)
      case .expression(let expression):
        text += self.expression(expression)
        leftOpen = false
      }
    }
    return text
  }

  /// A program, one statement per line, blocks indented by two spaces. Included files are
  /// written as their `include` (not spliced in). A statement that did not parse has no text:
  /// it is written as a comment saying so.
  public static func program(_ program: Program) -> String {
    var lines: [String] = []
    for statement in program.statements { self.statement(statement, indent: 0, into: &lines) }
    return lines.map { $0 + "\n" }.joined()
  }

  /// One statement, on as many lines as its blocks take.
  public static func statement(_ statement: Statement) -> String {
    var lines: [String] = []
    self.statement(statement, indent: 0, into: &lines)
    return lines.joined(separator: "\n")
  }

  private static func statement(_ statement: Statement, indent: Int, into lines: inout [String]) {
    let pad = String(repeating: "  ", count: indent)
    func line(_ text: String) { lines.append(pad + text) }
    /// `head <`, the block's statements, `>` + `tail`; an empty block on one line.
    func block(_ head: String, _ block: Block, tail: String = "") {
      guard !block.statements.isEmpty else {
        line(head + " < >" + tail)
        return
      }
      line(head + " <")
      for inner in block.statements { self.statement(inner, indent: indent + 1, into: &lines) }
      line(">" + tail)
    }
    switch statement.kind {
    case .let(let name, let value): line("let \(name.name) = \(expression(value))")
    case .letAction(let name, let action): line("let \(name.name) = \(action.tolerated ? "try " : "")\(self.action(action))")
    case .group(let name, let items): line("group \(name.name) = \(patterns(items))")
    case .on(let target, let body): block("on " + self.target(target), body)
    case .action(let action): line(self.action(action))
    case .if(let condition, let then, let otherwise):
      ifChain(condition, then, otherwise, head: "if", indent: indent, into: &lines)
    case .for(let name, let sequence, let body): block("for \(name.name) in \(expression(sequence))", body)
    case .def(let name, let parameters, let body):
      block("def \(name.name)(\(parameters.map(\.name).joined(separator: ", ")))", body)
    case .call(let name, let arguments): line(name.name + "(" + arguments.map(expression).joined(separator: ", ") + ")")
    case .include(let path, _, _): line("include " + quoted(path))
    case .try(let body): block("try", body)
    case .set(let name, let value): line("set \(name.name) = \(expression(value))")
    case .print(let values): line((["print"] + values.map(operand)).joined(separator: " "))
    case .fail(let message): line("fail" + (message.map { " " + operand($0) } ?? ""))
    case .invalid: line("# (a statement that did not parse)")
    }
  }

  /// `if C < … > else if D < … > else < … >`: an else block holding only an `if` is written
  /// as `else if`, which parses to the same tree.
  private static func ifChain(
    _ condition: Expression, _ then: Block, _ otherwise: Block?, head: String, indent: Int, into lines: inout [String]
  ) {
    let pad = String(repeating: "  ", count: indent)
    let opening = "\(head) \(expression(condition)) <"
    if then.statements.isEmpty {
      lines.append(pad + opening + " >")
    } else {
      lines.append(pad + opening)
      for inner in then.statements { statement(inner, indent: indent + 1, into: &lines) }
      lines.append(pad + ">")
    }
    guard let otherwise else { return }
    if otherwise.statements.count == 1, case .if(let next, let nextThen, let nextOtherwise) = otherwise.statements[0].kind {
      lines[lines.count - 1] += " else"
      let last = lines.removeLast()
      var rest: [String] = []
      ifChain(next, nextThen, nextOtherwise, head: "if", indent: indent, into: &rest)
      rest[0] = last + " " + rest[0].dropFirst(pad.count)
      lines += rest
      return
    }
    if otherwise.statements.isEmpty {
      lines[lines.count - 1] += " else < >"
      return
    }
    lines[lines.count - 1] += " else <"
    for inner in otherwise.statements { statement(inner, indent: indent + 1, into: &lines) }
    lines.append(pad + ">")
  }
}
