// `cfi-sh deliver` and `cfi-sh deliveries` as a user meets them without a fleet: their help,
// the options they refuse, and what they say about a store without a state database, a
// database that cannot be read, and deliveries that do not exist. (The queue's rules are
// RuntimeTests' DeliveriesTests; runs that deliver are the fleet tests'.)

import Foundation
import Runtime
import TestSupport
import Testing

@testable import cfi_sh

@Suite struct DeliveriesCommandTests {
  @Test func deliverHasItsOwnUsage() throws {
    for arguments in [["help", "deliver"], ["deliver", "--help"]] {
      let help = try Command.run(arguments)
      #expect(help.status == 0, "\(help.stderr)")
      #expect(help.stdout.hasPrefix("usage: cfi-sh deliver [OPTIONS] RUNBOOK [ARGS...]"))
      #expect(help.stdout.contains("--expire DURATION"))
    }
    for line in DeliverRun.usage.split(separator: "\n") {
      #expect(line.count <= 80, "\(line)")
    }
  }

  @Test func aDryRunDeliversNothing() throws {
    let store = try TemporaryDirectory()
    let result = try Command.run(["deliver", "--check", "--store", store.path, "--audit-log", "none", "-c", "on all < run \"true\" >"])
    #expect(result.status == ExitStatus.usage)
    #expect(result.stderr.contains("--deliver and --check exclude each other: a dry run delivers nothing"))
    #expect(!FileManager.default.fileExists(atPath: StateDatabase.path(store: Store(root: store.path))))
  }

  @Test func anOptionAfterTheRunbookIsRefusedWithADeliverHint() throws {
    let store = try TemporaryDirectory()
    let book = try store.write("site.cfi", "on all < run \"true\" >\n")
    let result = try Command.run(["deliver", "--store", store.path, "--audit-log", "none", book, "--expire", "7d"])
    #expect(result.status == ExitStatus.usage)
    #expect(result.stderr.contains("options go before it (cfi-sh --deliver --expire \(book))"), "\(result.stderr)")
  }

  @Test func aStoreWithoutADatabaseHasNoDeliveries() throws {
    let store = try TemporaryDirectory()
    let list = try Command.run(["deliveries", "--store", store.path])
    #expect(list.status == 0)
    #expect(list.stdout.isEmpty)
    #expect(list.stderr.contains("no deliveries: the store \(store.path) has no state database yet"))
    // Listing creates nothing.
    #expect(!FileManager.default.fileExists(atPath: StateDatabase.path(store: Store(root: store.path))))
    let show = try Command.run(["deliveries", "show", "3", "--store", store.path])
    #expect(show.status == 1)
    #expect(show.stderr.contains("no delivery 3"))
  }

  @Test func aDatabaseThatCannotBeReadIsSaid() throws {
    let store = try TemporaryDirectory()
    try store.write(".cfi/state.sqlite", "this is text where a database should be, and long enough to be read as a header")
    let list = try Command.run(["deliveries", "--store", store.path])
    #expect(list.status == 1)
    #expect(list.stderr.contains("cannot read the deliveries: the state database '\(store.path)/.cfi/state.sqlite'"))
  }

  @Test func unknownAndUnfinishedDeliveriesAreRefusedByID() throws {
    let store = try TemporaryDirectory()
    let queue = Deliveries(database: try StateDatabase(store: Store(root: store.path)))
    let runbook = DeliveryRunbook(name: "site.cfi", files: [.init(name: "site.cfi", text: "on all < run \"true\" >\n")], arguments: [], options: [])
    let ids = try queue.record(runbook, hosts: ["pc01", "pc02"], origin: "run-1", expires: nil)
    let cancel = try Command.run(["deliveries", "cancel", "--store", store.path, String(ids[0]), "99"])
    #expect(cancel.status == 1)
    #expect(cancel.stdout == "delivery \(ids[0]): cancelled (site.cfi for pc01)\n")
    #expect(cancel.stderr.contains("no delivery 99"))
    let again = try Command.run(["deliveries", "cancel", "--store", store.path, String(ids[0])])
    #expect(again.status == 1)
    #expect(again.stderr.contains("delivery \(ids[0]) is cancelled, not pending: it cannot be cancelled"))
    #expect(try Command.run(["deliveries", "cancel", "--store", store.path]).status == ExitStatus.usage)
    let byHost = try Command.run(["deliveries", "cancel", "--store", store.path, "--host", "pc[01-02]"])
    #expect(byHost.status == 0, "\(byHost.stderr)")
    #expect(byHost.stdout == "delivery \(ids[1]): cancelled (site.cfi for pc02)\n")
    let none = try Command.run(["deliveries", "cancel", "--store", store.path, "--host", "pc02"])
    #expect(none.status == 1)
    #expect(none.stderr.contains("no pending delivery for pc02"))
    let state = try Command.run(["deliveries", "--state", "finished", "--store", store.path])
    #expect(state.status == ExitStatus.usage)
  }
}
