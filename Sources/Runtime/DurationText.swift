// Durations as text: the one codec for CFIScript's duration literals (`30s`), the command
// line's options (`--timeout 5m`), the REPL's `:set` and the renderers. The syntax layer only
// recognizes a literal's shape; its value is read here.

/// Why a text is not a duration.
public struct DurationTextError: Error, Hashable, Sendable {
  /// Lowercase, no final period: what is wrong and what is accepted.
  public var message: String
  public init(message: String) { self.message = message }
}

extension Duration {
  /// The units of a duration's text, largest first, with their size in milliseconds.
  static let textUnits: [(name: String, milliseconds: Int64)] = [
    ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1),
  ]

  /// Reads `30s`, `5m`, `1h`, `2d`, `250ms`: a whole number of one unit, nothing around it.
  public init(cfiText text: some StringProtocol) throws(DurationTextError) {
    let digits = text.prefix { $0.isASCII && $0.isNumber }
    let unit = String(text.dropFirst(digits.count))
    guard !digits.isEmpty, let size = Duration.textUnits.first(where: { $0.name == unit })?.milliseconds else {
      throw DurationTextError(message: "'\(text)' is not a duration; write a whole number and a unit: ms, s, m, h or d (30s, 5m)")
    }
    guard let value = Int64(digits), case (let milliseconds, false) = value.multipliedReportingOverflow(by: size) else {
      throw DurationTextError(message: "duration '\(text)' is too large")
    }
    self = .milliseconds(milliseconds)
  }

  /// The whole milliseconds of the duration (rounded toward zero).
  public var wholeMilliseconds: Int64 {
    components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
  }

  /// The duration as a literal that reads back to it: the largest unit that divides it
  /// exactly (`90s`, `5m`, `2d`, `250ms`; zero is `0s`).
  public var cfiText: String {
    let milliseconds = wholeMilliseconds
    guard milliseconds != 0 else { return "0s" }
    let unit = Duration.textUnits.first { milliseconds % $0.milliseconds == 0 }!
    return "\(milliseconds / unit.milliseconds)\(unit.name)"
  }

  /// An elapsed time for people, not to be read back: milliseconds under a second, else
  /// seconds with one decimal (`250ms`, `1.2s`).
  public var elapsedText: String {
    let milliseconds = wholeMilliseconds
    guard milliseconds >= 1000 else { return "\(milliseconds)ms" }
    let tenths = (milliseconds + 50) / 100
    return "\(tenths / 10).\(tenths % 10)s"
  }
}
