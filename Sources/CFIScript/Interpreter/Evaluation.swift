// Expression evaluation: values, operators, interpolation and built-in functions.

import CFISyntax
import Runtime

extension Interpreter {
  func evaluate(_ expression: Expression, in frame: Frame) throws -> Value {
    switch expression.kind {
    case .string(let parts, _):
      var text = ""
      for part in parts {
        switch part {
        case .text(let piece): text += piece
        case .variable(let path): text += try interpolate(path, in: frame).text
        }
      }
      return .string(text)
    case .integer(let value): return .integer(value)
    case .duration(let text):
      do throws(DurationTextError) { return .duration(try Duration(cfiText: text)) } catch {
        throw RuntimeError(error.message, at: expression.range)
      }
    case .percent(let value): return .percent(value)
    case .boolean(let value): return .boolean(value)
    case .list(let elements): return .list(try elements.map { try evaluate($0, in: frame) })
    case .variable(let name):
      guard let value = frame.lookup(name) else { throw unknownVariable(name, at: expression.range, in: frame) }
      return value
    case .member(let base, let field):
      return try member(try evaluate(base, in: frame), field)
    case .call(let name, let arguments):
      return try builtin(name, arguments.map { try evaluate($0, in: frame) }, in: frame, at: expression.range)
    case .not(let operand):
      return .boolean(!(try truth(operand, in: frame, what: "'not'")))
    case .binary(.and, let left, let right):
      return .boolean(try truth(left, in: frame, what: "'and'") && truth(right, in: frame, what: "'and'"))
    case .binary(.or, let left, let right):
      return .boolean(try truth(left, in: frame, what: "'or'") || truth(right, in: frame, what: "'or'"))
    case .binary(.equal, let left, let right):
      return .boolean(try evaluate(left, in: frame).plain == evaluate(right, in: frame).plain)
    case .binary(.notEqual, let left, let right):
      return .boolean(try evaluate(left, in: frame).plain != evaluate(right, in: frame).plain)
    case .binary(let op, let left, let right):  // in, not in
      let isIn = try contains(evaluate(right, in: frame).plain, evaluate(left, in: frame).plain, at: right.range)
      return .boolean(op == .in ? isIn : !isIn)
    case .invalid:
      throw RuntimeError("this expression has errors", at: expression.range)
    }
  }

  func truth(_ expression: Expression, in frame: Frame, what: String) throws -> Bool {
    let value = try evaluate(expression, in: frame)
    guard case .boolean(let truth) = value else {
      var message = "\(what) needs true or false, not \(value.typeName) ('\(value.text)')"
      if case .result = value { message += "; ask a field of it, such as .ok or .changed" }
      throw RuntimeError(message, at: expression.range)
    }
    return truth
  }

  private func contains(_ container: Value, _ element: Value, at range: SourceRange) throws -> Bool {
    switch container {
    case .list(let elements): return elements.contains(element)
    case .string(let text): return text.contains(element.text)
    default: throw RuntimeError("'in' needs a list or a string on its right, not \(container.typeName)", at: range)
    }
  }

  private func unknownVariable(_ name: String, at range: SourceRange, in frame: Frame) -> RuntimeError {
    if name == "host" { return RuntimeError("'host' is only defined inside an 'on' block", at: range) }
    return RuntimeError("variable '\(name)' is not set here", at: range)
  }

  private func interpolate(_ path: [Identifier], in frame: Frame) throws -> Value {
    guard let value = frame.lookup(path[0].name) else {
      throw unknownVariable(path[0].name, at: path[0].range, in: frame)
    }
    return try path.dropFirst().reduce(value) { try member($0, $1) }
  }

  private func member(_ base: Value, _ field: Identifier) throws -> Value {
    switch base {
    case .host(let host):
      guard let hostField = HostField(rawValue: field.name) else {
        throw RuntimeError("'host' has no field '\(field.name)'; its fields are name, group and address", at: field.range)
      }
      return hostField.value(of: host)
    case .result(let result):
      guard let resultField = ResultField(rawValue: field.name) else {
        throw RuntimeError(
          "the result of an action has no field '\(field.name)'; its fields are \(ResultField.listed)", at: field.range)
      }
      return resultField.value(of: result)
    default:
      throw RuntimeError("\(base.typeName) has no field '\(field.name)'", at: field.range)
    }
  }

  private func builtin(_ name: Identifier, _ arguments: [Value], in frame: Frame, at range: SourceRange) throws -> Value {
    guard let builtin = Builtin(rawValue: name.name) else {
      throw RuntimeError("'\(name.name)' gives no value; only built-in functions can be used in expressions", at: name.range)
    }
    guard builtin.arity.contains(arguments.count) else {
      throw RuntimeError("wrong number of arguments: \(builtin.signature)", at: range)
    }
    let arguments = arguments.map(\.plain)
    switch builtin {
    case .lines:
      let path = try text(arguments[0], "the path of 'lines'", at: range)
      let group: String
      if arguments.count == 2 {
        group = try text(arguments[1], "the group of 'lines'", at: range)
      } else if let host = frame.host {
        group = host.group.rawValue
      } else {
        throw RuntimeError("outside an 'on' block, 'lines' needs the group: lines(\"\(path)\", \"lab\")", at: range)
      }
      do throws(StoreError) {
        return .list(try options.store.lines(path, group: group).map(Value.string))
      } catch {
        throw RuntimeError(error.message, at: range)
      }
    case .env:
      let variable = try text(arguments[0], "the name given to 'env'", at: range)
      if let value = options.environment[variable] { return .string(value) }
      if arguments.count == 2 { return arguments[1] }
      throw RuntimeError("environment variable '\(variable)' is not set (give a default: env(\"\(variable)\", \"…\"))", at: range)
    case .len:
      switch arguments[0] {
      case .list(let elements): return .integer(elements.count)
      case .string(let text): return .integer(text.count)
      default: throw RuntimeError("'len' needs a list or a string, not \(arguments[0].typeName)", at: range)
      }
    }
  }

  /// A value that must be a single piece of text (a string, or a number/boolean/duration).
  func text(_ value: Value, _ what: String, at range: SourceRange) throws -> String {
    switch value {
    case .list: throw RuntimeError("\(what) must be a single value, not a list", at: range)
    case .host(let host): return host.name.rawValue
    default: return value.text
    }
  }
}
