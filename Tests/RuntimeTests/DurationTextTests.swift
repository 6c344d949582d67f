// DurationTextTests.swift — the one codec of duration text: what it reads, what it refuses,
// and that what it writes reads back to the same duration.

import Runtime
import Testing

@Suite("Duration text")
struct DurationTextTests {
  @Test(arguments: [
    ("250ms", Duration.milliseconds(250)), ("0s", .zero), ("30s", .seconds(30)), ("5m", .seconds(300)),
    ("1h", .seconds(3600)), ("2d", .seconds(172_800)), ("007s", .seconds(7)), ("90s", .seconds(90)),
  ])
  func reads(_ text: String, _ expected: Duration) throws {
    #expect(try Duration(cfiText: text) == expected)
  }

  @Test(arguments: [
    "", "30", "s", "30x", "5min", "10sec", "1.5s", "-5s", " 5s", "5s ", "5 s", "5S", "1h30m", "٣s",
    "9999999999999999d", "99999999999999999999ms",
  ])
  func refuses(_ text: String) {
    #expect(throws: DurationTextError.self) { try Duration(cfiText: text) }
  }

  @Test func tooLargeSaysSo() {
    #expect(throws: DurationTextError(message: "duration '9999999999999999d' is too large")) {
      try Duration(cfiText: "9999999999999999d")
    }
  }

  @Test(arguments: [
    (Duration.milliseconds(250), "250ms"), (.zero, "0s"), (.seconds(30), "30s"), (.seconds(90), "90s"),
    (.seconds(300), "5m"), (.seconds(3600), "1h"), (.seconds(5400), "90m"), (.seconds(172_800), "2d"),
    (.milliseconds(1500), "1500ms"),
  ])
  func writesTheLargestExactUnit(_ duration: Duration, _ text: String) throws {
    #expect(duration.cfiText == text)
    #expect(try Duration(cfiText: text) == duration)
  }

  @Test func roundTripsOverManyValues() throws {
    for milliseconds in [1, 999, 1000, 59_000, 60_000, 61_000, 3_599_000, 3_600_000, 86_400_000, 86_401_000] {
      let duration = Duration.milliseconds(milliseconds)
      #expect(try Duration(cfiText: duration.cfiText) == duration)
    }
  }

  @Test(arguments: [
    (Duration.milliseconds(0), "0ms"), (.milliseconds(999), "999ms"), (.milliseconds(1000), "1.0s"),
    (.milliseconds(1234), "1.2s"), (.milliseconds(61_960), "62.0s"),
  ])
  func elapsedText(_ duration: Duration, _ text: String) {
    #expect(duration.elapsedText == text)
  }
}
