// Golden files: text a test produces, compared with a file committed next to the test, and
// rewritten instead when recording (`CFI_RECORD=1`). Tests record the returned problem as an
// issue, so a recording run fails and is never mistaken for a passing one.

import Foundation

public enum GoldenFile {
  /// Whether this run rewrites expectations instead of checking them.
  public static let recording = ProcessInfo.processInfo.environment["CFI_RECORD"] == "1"

  /// Compares `actual` with the file at `path` (or records it); returns what is wrong, or nil.
  /// `rerecord` is the command that records this file, for the message.
  public static func check(_ actual: String, path: String, rerecord: String) -> String? {
    let name = (path as NSString).lastPathComponent
    let expected = try? String(contentsOfFile: path, encoding: .utf8)
    if recording {
      guard expected != actual else { return nil }
      do {
        try FileManager.default.createDirectory(
          atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try actual.write(toFile: path, atomically: true, encoding: .utf8)
      } catch {
        return "cannot record \(name): \(error)"
      }
      return "recorded \(name); run again without CFI_RECORD"
    }
    guard let expected else {
      return "\(name) is missing. Output:\n\(actual)\nReview it, then record with: \(rerecord)"
    }
    guard expected != actual else { return nil }
    return "\(name): \(firstDifference(expected, actual))\nIf the change is right, record with: \(rerecord)"
  }

  /// The first line where two texts differ, for failure messages.
  public static func firstDifference(_ expected: String, _ actual: String) -> String {
    let left = expected.split(separator: "\n", omittingEmptySubsequences: false)
    let right = actual.split(separator: "\n", omittingEmptySubsequences: false)
    for index in 0..<max(left.count, right.count) {
      let l = index < left.count ? String(left[index]) : "<end>"
      let r = index < right.count ? String(right[index]) : "<end>"
      if l != r {
        return "first difference at line \(index + 1):\n  expected: \(l)\n  actual:   \(r)"
      }
    }
    return "outputs differ"
  }
}
