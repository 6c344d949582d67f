// What must hold for any input, whatever its bytes: checked by the unit tests over the
// golden, runbook and fuzz corpora and by the fuzzer (Fuzz/) on every input it makes, so
// that both check one definition.

/// Properties of a load, each returning nil when it holds and what is wrong when not.
public enum FrontEndInvariants {
  /// Every diagnostic and note points inside a file of the load.
  public static func rangesOutsideFiles(_ diagnostics: [Diagnostic], files: [SourceFile]) -> String? {
    for diagnostic in diagnostics {
      for range in [diagnostic.range] + diagnostic.notes.map(\.range) {
        let inside =
          range.file.rawValue >= 0 && range.file.rawValue < files.count && range.start >= 0
          && range.start <= range.end && range.end <= files[range.file.rawValue].bytes.count
        if !inside { return "'\(diagnostic.message)' (or a note of it) has range \(range) outside its file" }
      }
    }
    return nil
  }

  /// A runbook that parses without errors, printed by `ScriptPrinter` and parsed again
  /// (`reparse`, with the same includes), gives the same tree (positions aside), and printing
  /// that tree gives the same text (the printer is canonical).
  public static func reprintMismatch(
    _ runbook: LoadedRunbook, reparse: ([UInt8]) throws -> LoadedRunbook
  ) rethrows -> String? {
    guard !runbook.hasErrors else { return nil }
    let printed = ScriptPrinter.program(runbook.program)
    let again = try reparse(Array(printed.utf8))
    if again.hasErrors {
      let messages = again.diagnostics.filter { $0.severity == .error }.map(\.message)
      return "the printed runbook does not parse (\(messages.joined(separator: "; "))):\n\(printed)"
    }
    let tree = ASTPrinter.print(runbook.program, files: runbook.files, positions: false)
    let treeAgain = ASTPrinter.print(again.program, files: again.files, positions: false)
    if tree != treeAgain {
      return "printing changed the tree\n--- parsed:\n\(tree)--- printed:\n\(printed)--- parsed again:\n\(treeAgain)"
    }
    let reprinted = ScriptPrinter.program(again.program)
    if reprinted != printed {
      return "printing is not canonical\n--- printed:\n\(printed)--- printed again:\n\(reprinted)"
    }
    return nil
  }
}
