// A canonical text form of the syntax tree: one S-expression per statement, blocks indented.
// It is the golden format of the parser tests, so it is the parser's spec in examples.

/// Prints a program as S-expressions, statements with their `line:column`.
public struct ASTPrinter {
  private let files: [SourceFile]
  private let positions: Bool
  private var output = ""

  /// Prints `program` (and, spliced in, the programs it includes). Without `positions`, two
  /// texts that parse to the same tree print the same (how the printer's round trip is checked).
  public static func print(_ program: Program, files: [SourceFile], positions: Bool = true) -> String {
    var printer = ASTPrinter(files: files, positions: positions)
    for statement in program.statements { printer.statement(statement, indent: 0) }
    return printer.output
  }

  private init(files: [SourceFile], positions: Bool) {
    self.files = files
    self.positions = positions
  }

  /// `(name` and, when printed, the statement's position.
  private func opening(_ name: String, _ at: String?) -> String {
    at.map { "(\(name) \($0)" } ?? "(\(name)"
  }

  private func position(_ range: SourceRange) -> String? {
    guard positions else { return nil }
    let file = files[range.file.rawValue]
    let location = file.lineColumn(of: range.start)
    return range.file.rawValue == 0 ? "\(location)" : "\(file.path):\(location)"
  }

  private mutating func line(_ text: String, indent: Int) {
    output += String(repeating: "  ", count: indent) + text + "\n"
  }

  private mutating func block(_ head: String, _ block: Block, indent: Int, close: String = ")") {
    if block.statements.isEmpty {
      line(head + " (block))" + String(close.dropFirst()), indent: indent)
      return
    }
    line(head, indent: indent)
    for statement in block.statements { self.statement(statement, indent: indent + 1) }
    output.removeLast()
    output += close + "\n"
  }

  private mutating func statement(_ statement: Statement, indent: Int) {
    let at = position(statement.range)
    switch statement.kind {
    case .let(let name, let value):
      line("\(opening("let", at)) \(name.name) \(expression(value)))", indent: indent)
    case .letAction(let name, let action):
      line("\(opening("let", at)) \(name.name) \(action.tolerated ? "try " : "")\(self.action(action)))", indent: indent)
    case .group(let name, let items):
      line("\(opening("group", at)) \(name.name) \(patterns(items)))", indent: indent)
    case .on(let target, let body):
      var head = "\(opening("on", at)) "
      switch target.kind {
      case .all: head += "(all)"
      case .groups(let items): head += "(groups \(patterns(items)))"
      case .hosts(let items): head += "(hosts \(patterns(items)))"
      }
      if !target.except.isEmpty { head += " (except \(patterns(target.except)))" }
      block(head, body, indent: indent)
    case .action(let action):
      line(self.action(action, at: at), indent: indent)
    case .if(let condition, let then, let otherwise):
      let head = "\(opening("if", at)) \(expression(condition))"
      guard let otherwise else {
        block(head, then, indent: indent)
        return
      }
      block(head, then, indent: indent, close: "")
      block("(else", otherwise, indent: indent + 1, close: "))")
    case .for(let name, let sequence, let body):
      block("\(opening("for", at)) \(name.name) \(expression(sequence))", body, indent: indent)
    case .def(let name, let parameters, let body):
      block("\(opening("def", at)) \(name.name) (\(parameters.map(\.name).joined(separator: " ")))", body, indent: indent)
    case .call(let name, let arguments):
      line("\(opening("call", at)) \(([name.name] + arguments.map(expression)).joined(separator: " ")))", indent: indent)
    case .include(let path, _, let program):
      guard let program, !program.statements.isEmpty else {
        line("\(opening("include", at)) \(quote(path)))", indent: indent)
        return
      }
      block("\(opening("include", at)) \(quote(path))", Block(statements: program.statements, range: statement.range), indent: indent)
    case .try(let body):
      block("\(opening("try", at))", body, indent: indent)
    case .set(let name, let value):
      line("\(opening("set", at)) \(name.name) \(expression(value)))", indent: indent)
    case .print(let arguments):
      line("\(opening("print", at))\(arguments.map { " " + expression($0) }.joined()))", indent: indent)
    case .fail(let message):
      line("\(opening("fail", at))\(message.map { " " + expression($0) } ?? ""))", indent: indent)
    case .invalid:
      line("\(opening("invalid", at)))", indent: indent)
    }
  }

  private func action(_ action: ActionStatement, at: String? = nil) -> String {
    var parts = [action.kind.rawValue]
    if let at { parts.append(at) }
    parts += action.arguments.map(expression)
    if let word = action.word { parts.append(word.name) }
    if let destination = action.destination { parts += ["to", expression(destination)] }
    if action.ifNeeded != nil { parts += ["if", "needed"] }
    return "(" + parts.joined(separator: " ") + ")"
  }

  private func patterns(_ items: [PatternItem]) -> String {
    items.map { item in
      switch item {
      case .pattern(let text, _): text
      case .expression(let expression): self.expression(expression)
      }
    }.joined(separator: " ")
  }

  private func expression(_ expression: Expression) -> String {
    switch expression.kind {
    case .string(let parts, let raw):
      if raw {
        guard case .text(let text)? = parts.first else { return "(raw \"\")" }
        return "(raw \(quote(text)))"
      }
      if parts.isEmpty { return quote("") }
      if parts.count == 1, case .text(let text) = parts[0] { return quote(text) }
      return "(str " + parts.map { part in
        switch part {
        case .text(let text): quote(text)
        case .variable(let path): "${" + path.map(\.name).joined(separator: ".") + "}"
        }
      }.joined(separator: " ") + ")"
    case .integer(let value): return "\(value)"
    case .duration(let text): return "(duration \(text))"
    case .percent(let value): return "\(value)%"
    case .boolean(let value): return "\(value)"
    case .list(let elements): return "[" + elements.map(self.expression).joined(separator: " ") + "]"
    case .variable(let name): return name
    case .member(let base, let name): return "(. \(self.expression(base)) \(name.name))"
    case .call(let name, let arguments):
      return "(call " + ([name.name] + arguments.map(self.expression)).joined(separator: " ") + ")"
    case .not(let operand): return "(not \(self.expression(operand)))"
    case .binary(let op, let left, let right):
      return "(\(op.rawValue) \(self.expression(left)) \(self.expression(right)))"
    case .invalid: return "(invalid)"
    }
  }

  /// A string in the dump: the language's escapes (`ScriptPrinter.escaped`), except that `$`
  /// needs none here (the dump marks interpolation apart) and other control characters are
  /// shown as `\u{…}`.
  private func quote(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
      if scalar == "$" {
        out += "$"
      } else if scalar.value < 0x20 && scalar != "\n" && scalar != "\t" {
        out += "\\u{\(String(scalar.value, radix: 16))}"
      } else {
        out += ScriptPrinter.escaped(String(scalar))
      }
    }
    return out + "\""
  }
}
