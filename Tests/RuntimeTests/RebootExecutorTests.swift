// The ActionExecutor's wait for a rebooted host (`Plan.awaitReboot`), on a RecordingTransport:
// back with a new boot id, back with the same one, not back, interrupted; and no reboot on a
// transport that runs its commands on this machine.

import Foundation
import Synchronization
import TestSupport
import Testing

@testable import Runtime

@Suite struct RebootExecutorTests {
  static let host = Runtime.Host(name: "pc01", group: "lab")
  static let old = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0\n"
  static let new = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d\n"
  static let store = Store(root: "/nonexistent-cfi-store-reboot")

  /// A transport answering the reboot's first two commands (the state, the start), then each
  /// try of the wait from `tries` in turn (the last one again once they run out).
  static func transport(_ tries: [CommandResult]) -> RecordingTransport {
    let count = Mutex(0)
    return RecordingTransport { _, _ in
      let index = count.withLock { count in
        defer { count += 1 }
        return count
      }
      switch index {
      case 0: return CommandResult(.exited(0), stdout: old)
      case 1: return CommandResult(.exited(0))
      default: return tries[min(index - 2, tries.count - 1)]
      }
    }
  }

  static func reboot(_ transport: RecordingTransport, timeout: Duration = .seconds(600)) async -> StepResult {
    let executor = ActionExecutor(transport: transport, store: store, rebootPause: .milliseconds(1))
    return await executor.perform(.reboot(onlyIfNeeded: false), on: host, options: StepOptions(rebootTimeout: timeout))
  }

  static let refused = CommandResult(.unreachable(Unreachable(.refused, "connection refused")))

  /// The old sshd still answers, then none, then the host is back: changed, and the master is
  /// forgotten before each try (never after the one that found the host back).
  @Test func backWithANewBootID() async {
    let transport = Self.transport([
      CommandResult(.exited(0), stdout: Self.old), Self.refused, CommandResult(.exited(0), stdout: Self.new),
    ])
    let result = await Self.reboot(transport)
    #expect(result.status == .changed)
    #expect(result.message?.hasPrefix("rebooted in ") == true)
    #expect(transport.requests(on: "pc01").count == 5)
    #expect(transport.forgotten == ["pc01", "pc01", "pc01"])
  }

  /// Reached when the time is up, with the boot id it had: failed, it did not reboot.
  @Test func sameBootIDWhenTheTimeIsUp() async {
    let transport = Self.transport([CommandResult(.exited(0), stdout: Self.old)])
    let result = await Self.reboot(transport, timeout: .milliseconds(200))
    #expect(result.status == .failed)
    #expect(result.message == "did not reboot: the boot id is the same after 200ms")
    #expect(transport.requests(on: "pc01").count >= 3)
  }

  /// Not reached when the time is up: unreachable, reason reboot_timeout, the last try's words.
  @Test func notBackWithinTheTimeout() async {
    let transport = Self.transport([Self.refused])
    let result = await Self.reboot(transport, timeout: .milliseconds(200))
    #expect(result.status == .unreachable)
    #expect(result.reason == .rebootTimeout)
    #expect(result.message == "not back within 200ms of its reboot (last try: connection refused)")
    // Forgotten at the end too: the next command connects afresh.
    #expect(transport.forgotten.count == transport.requests(on: "pc01").count - 1)
  }

  /// Interrupted while the host is away: the wait ends at once, interrupted (within its 10m
  /// timeout; a wait that ignored the interrupt would end unreachable after it instead).
  @Test func interruptEndsTheWait() async {
    let (tries, seen) = AsyncStream<Void>.makeStream()
    let count = Mutex(0)
    let transport = RecordingTransport { _, _ in
      let index = count.withLock { count in
        defer { count += 1 }
        return count
      }
      switch index {
      case 0: return CommandResult(.exited(0), stdout: Self.old)
      case 1: return CommandResult(.exited(0))
      default:
        seen.yield()
        return Self.refused
      }
    }
    let executor = ActionExecutor(transport: transport, store: Self.store, rebootPause: .milliseconds(1))
    let step = Task {
      await executor.perform(.reboot(onlyIfNeeded: false), on: Self.host, options: StepOptions(rebootTimeout: .seconds(600)))
    }
    var iterator = tries.makeAsyncIterator()
    for _ in 0..<3 { await iterator.next() }
    step.cancel()
    let result = await step.value
    #expect(result.status == .interrupted)
  }

  /// A transport that runs its commands on this machine is never sent a reboot.
  @Test func noRebootOnThisMachine() async {
    let executor = ActionExecutor(transport: LocalTransport(), store: Self.store)
    for onlyIfNeeded in [false, true] {
      let result = await executor.perform(.reboot(onlyIfNeeded: onlyIfNeeded), on: Self.host, options: StepOptions())
      #expect(result.status == .failed)
      #expect(result.message == "refusing to reboot pc01: this transport runs its commands on this machine")
    }
  }
}
