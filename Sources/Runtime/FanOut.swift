// FanOut: bounded concurrency over hosts (a sliding window, as ClusterShell's fanout).

/// Runs `body` for each item with at most `limit` running at once, starting items in order.
/// Before each start, `shouldStart` is asked; once it says no (or the calling task is
/// cancelled), it is not asked again and the remaining items are not started, while those
/// already running finish. Results come back in item order; items never started have `nil`.
public func fanOut<Item: Sendable, Result: Sendable>(
  _ items: [Item],
  limit: Int,
  shouldStart: @escaping () -> Bool = { true },
  body: @escaping @Sendable (Item) async -> Result
) async -> [Result?] {
  precondition(limit >= 1, "fan-out limit must be at least 1")
  return await withTaskGroup(of: (Int, Result).self) { group in
    var results = [Result?](repeating: nil, count: items.count)
    var next = 0
    var stopped = false
    func launch() {
      guard !stopped, next < items.count else { return }
      guard shouldStart(), !Task.isCancelled else {
        stopped = true
        return
      }
      let index = next
      let item = items[index]
      next += 1
      group.addTask { (index, await body(item)) }
    }
    for _ in 0..<min(limit, items.count) { launch() }
    for await (index, value) in group {
      results[index] = value
      launch()
    }
    return results
  }
}
