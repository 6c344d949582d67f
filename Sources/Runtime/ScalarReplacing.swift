// Escaping, Unicode scalar by scalar. Swift's String and Foundation's replacingOccurrences
// compare whole Characters: a `'` or `"` followed by a combining mark is one Character that
// a replacement of `'` leaves alone, while a shell, ssh's option splitter or an XML parser
// sees the quote itself. Every escaper of text bound for another parser goes through here.

extension String {
  /// The text with each scalar that `replacements` names written as its replacement.
  func replacingScalars(_ replacements: [Unicode.Scalar: String]) -> String {
    var out = ""
    out.reserveCapacity(utf8.count)
    for scalar in unicodeScalars {
      if let replacement = replacements[scalar] { out += replacement } else { out.unicodeScalars.append(scalar) }
    }
    return out
  }
}
