// Known clients and pending hosts in the state database, without a lab: the import of the
// JSON files an older cfi-sh kept them in (once), the migration from the history-only schema,
// two writers at once, a database that cannot be used, and the host keys read from the
// store's known_hosts (plain and hashed, as OpenSSH writes them).

import Foundation
import GRDB
import Testing

@testable import Runtime
import TestSupport

@Suite struct HostsDatabaseTests {
  let scratch = FleetRunScratch()
  var store: Store { Store(root: scratch.path + "/store") }
  var stateDirectory: String { store.root + "/.cfi" }

  private static let seen = Date(timeIntervalSince1970: 1_700_000_000)

  /// The files as an older cfi-sh wrote them, with one entry that does not decode.
  private func writeLegacyFiles(in stateDirectory: String? = nil) throws {
    let stateDirectory = stateDirectory ?? self.stateDirectory
    try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
    try """
      [{"name": "-oProxyCommand=x", "group": "lab"},
       {"name": "pc1", "group": "lab", "address": "10.0.0.1", "port": 2222, "user": "admin", "lastSeen": "2023-11-14T22:13:20Z"},
       {"name": "pc2", "group": "lab"}]
      """.write(toFile: stateDirectory + "/known-clients.json", atomically: true, encoding: .utf8)
    try """
      [{"name": "pc7", "group": "lab", "address": "10.0.0.7", "firstSeen": "2023-11-14T22:13:20Z",
        "lastSeen": "2023-11-14T22:13:20Z", "rejected": true},
       {"name": "pc8", "group": "office", "address": "10.0.0.8", "port": 2022, "firstSeen": "2023-11-14T22:13:20Z",
        "lastSeen": "2023-11-14T22:13:20Z", "rejected": false}]
      """.write(toFile: stateDirectory + "/pending-hosts.json", atomically: true, encoding: .utf8)
  }

  @Test func theJSONFilesAreImportedOnceAndKeptAsImported() throws {
    try writeLegacyFiles()
    let database = try StateDatabase(store: store)
    let known = stateDirectory + "/known-clients.json"
    let pending = stateDirectory + "/pending-hosts.json"
    #expect(
      database.notes == [
        "\(known): entry 1 ignored: 'name': not a host name: -oProxyCommand=x",
        "imported 2 known clients from \(known) into the state database; the file is kept as \(known).imported",
        "imported 2 pending hosts from \(pending) into the state database; the file is kept as \(pending).imported",
      ])
    #expect(!FileManager.default.fileExists(atPath: known) && FileManager.default.fileExists(atPath: known + ".imported"))
    #expect(!FileManager.default.fileExists(atPath: pending) && FileManager.default.fileExists(atPath: pending + ".imported"))
    let clients = try KnownClients(database: database, knownHosts: nil).load()
    #expect(clients.map(\.host) == [
      Host(name: "pc1", group: "lab", address: "10.0.0.1", port: 2222, user: "admin"), Host(name: "pc2", group: "lab"),
    ])
    #expect(clients.map(\.lastSeen) == [Self.seen, nil])
    let claims = try PendingHosts(database: database).load()
    #expect(claims == [
      PendingHost(HostClaim(name: "pc7", group: "lab", address: "10.0.0.7", port: nil), firstSeen: Self.seen, lastSeen: Self.seen, rejected: true),
      PendingHost(HostClaim(name: "pc8", group: "office", address: "10.0.0.8", port: 2022), firstSeen: Self.seen, lastSeen: Self.seen),
    ])

    // Never twice: not when the database is opened again, nor when a file of that name
    // appears again (an older cfi-sh run on the store).
    try KnownClients(database: database, knownHosts: nil).forget("pc2")
    try writeLegacyFiles()
    let again = try StateDatabase(store: store)
    #expect(again.notes.isEmpty)
    #expect(try KnownClients(database: again, knownHosts: nil).load().map(\.name) == ["pc1"])
    #expect(FileManager.default.fileExists(atPath: known))
  }

  @Test func aFileThatIsNotAListIsSaidAndKeptNotImported() throws {
    try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
    let known = stateDirectory + "/known-clients.json"
    try "[{\"name\": \"pc1\",}".write(toFile: known, atomically: true, encoding: .utf8)
    let notes = try StateDatabase(store: store).notes
    #expect(notes.first?.hasPrefix("\(known): ignored, not a list of known clients: ") == true, "\(notes)")
    #expect(notes.last == "imported 0 known clients from \(known) into the state database; the file is kept as \(known).imported")
    #expect(try String(contentsOfFile: known + ".imported", encoding: .utf8) == "[{\"name\": \"pc1\",}")
  }

  /// What an opener does not take is told at the database's first use, once; what it takes
  /// is not told again.
  @Test func theNotesNoOpenerTookAreToldAtFirstUse() throws {
    try writeLegacyFiles()
    let told = FleetRunNotices()
    let database = try StateDatabase(store: store, notify: told.add)
    #expect(told.all.isEmpty)
    _ = try database.appliedMigrations()
    _ = try KnownClients(database: database, knownHosts: nil).load()
    #expect(told.all.count == 3)
    #expect(told.all.last?.hasPrefix("imported 2 pending hosts from ") == true)
    #expect(database.notes.isEmpty)

    try FileManager.default.removeItem(atPath: stateDirectory)
    try writeLegacyFiles()
    let taken = FleetRunNotices()
    let opened = try StateDatabase(store: store, notify: taken.add)
    #expect(opened.notes.count == 3)
    _ = try opened.appliedMigrations()
    #expect(taken.all.isEmpty)
  }

  /// GRDB commits each migration on its own: "2-hosts" rolled back (here by a foreign key
  /// it finds broken at its end) leaves the files be; a later migration failing after it
  /// committed leaves the import done: the files renamed, the admin told.
  @Test func theFilesAreRenamedOnlyOnceTheImportCommitted() throws {
    let before = scratch.path + "/before"
    let old = try StateDatabase(path: before + "/state.sqlite", upTo: "1-history")
    var unchecked = Configuration()
    unchecked.foreignKeysEnabled = false
    try DatabaseQueue(path: old.path, configuration: unchecked).write { db in
      try db.execute(
        sql: """
          INSERT INTO step_result (run_id, sequence, block, location, label, host, host_group, status, duration, finished)
          VALUES ('gone', 1, 1, 'site.cfi:1:1', 'run', 'pc1', 'lab', 'ok', 0, ?)
          """, arguments: [Self.seen])
    }
    try writeLegacyFiles(in: before)
    let rolledBack = FleetRunNotices()
    #expect(throws: StateDatabaseError.self) { try StateDatabase(path: old.path, notify: rolledBack.add) }
    #expect(rolledBack.all.isEmpty)
    #expect(FileManager.default.fileExists(atPath: before + "/known-clients.json"))
    #expect(!FileManager.default.fileExists(atPath: before + "/known-clients.json.imported"))

    let after = scratch.path + "/after"
    let path = after + "/state.sqlite"
    try writeLegacyFiles(in: after)
    // A table of that name stops the migration that makes it.
    try DatabaseQueue(path: path).write { db in try db.execute(sql: "CREATE TABLE delivery_runbook (x)") }
    let committed = FleetRunNotices()
    #expect(throws: StateDatabaseError.self) { try StateDatabase(path: path, notify: committed.add) }
    #expect(committed.all.count == 3)
    #expect(!FileManager.default.fileExists(atPath: after + "/known-clients.json"))
    #expect(FileManager.default.fileExists(atPath: after + "/known-clients.json.imported"))
    try DatabaseQueue(path: path).write { db in try db.execute(sql: "DROP TABLE delivery_runbook") }
    let database = try StateDatabase(path: path)
    #expect(try database.appliedMigrations() == StateSchema.migrator.migrations)
    #expect(try KnownClients(database: database, knownHosts: nil).load().map(\.name) == ["pc1", "pc2"])
    #expect(try PendingHosts(database: database).load().count == 2)
  }

  /// A store whose database an earlier cfi-sh made (history only): its runs stay, its hosts
  /// come in from the JSON files beside it.
  @Test func aHistoryOnlyDatabaseKeepsItsRunsAndGainsTheHosts() throws {
    let path = StateDatabase.path(store: store)
    let old = try StateDatabase(path: path, upTo: "1-history")
    try old.write { db in
      try db.execute(
        sql: "INSERT INTO run (id, runbook, store, user, started) VALUES ('r1', 'site.cfi', ?, 'root', ?)",
        arguments: [store.root, Self.seen])
    }
    #expect(try old.appliedMigrations() == ["1-history"])
    try writeLegacyFiles()
    let database = try StateDatabase(store: store)
    #expect(try database.appliedMigrations() == StateSchema.migrator.migrations)
    #expect(try database.read { db in try String.fetchAll(db, sql: "SELECT id FROM run") } == ["r1"])
    #expect(try KnownClients(database: database, knownHosts: nil).load().map(\.name) == ["pc1", "pc2"])
    #expect(try PendingHosts(database: database).load().count == 2)
  }

  /// Two processes (two databases on one file): a run remembering hosts while the admin
  /// accepts and rejects; nothing either wrote is lost, not even on the same host.
  @Test func twoWritersNeverLoseEachOthersChange() async throws {
    let run = try StateDatabase(store: store)
    let admin = try StateDatabase(store: store)
    let count = 30
    let claims = (1...count).map { HostClaim(name: HostName("new\($0)")!, group: "lab", address: HostAddress("10.1.0.\($0)")!, port: nil) }
    _ = try PendingHosts(database: run).record(claims, at: Self.seen) { _ in false }
    try await withThrowingTaskGroup(of: Void.self) { group in
      group.addTask {
        let clients = KnownClients(database: run, knownHosts: nil)
        for round in 1...count {
          try clients.remember([Host(name: HostName("pc\(round)")!, group: "lab"), Host(name: "shared", group: "lab")])
          _ = try PendingHosts(database: run).record(Array(claims.prefix(round)), at: Date()) { _ in false }
        }
      }
      group.addTask {
        let clients = KnownClients(database: admin, knownHosts: nil)
        for (round, claim) in claims.enumerated() {
          try clients.accept(Host(name: HostName("ac\(round)")!, group: "office"))
          if round == count / 2 { try clients.accept(Host(name: "shared", group: "office", address: "10.2.0.1")) }
          try PendingHosts(database: admin).reject([claim])
        }
      }
      try await group.waitForAll()
    }
    let clients = try KnownClients(database: run, knownHosts: nil).load()
    #expect(clients.filter { $0.name.rawValue.hasPrefix("pc") }.count == count)
    #expect(clients.filter { $0.name.rawValue.hasPrefix("ac") }.count == count)
    // The run's remember and the admin's accept both show on the shared host.
    let shared = try #require(clients.first { $0.name == "shared" })
    #expect(shared.accepted != nil && shared.lastSeen != nil)
    let pending = try PendingHosts(database: admin).load()
    #expect(pending.count == count && pending.allSatisfy(\.rejected))
  }

  /// A database that cannot be opened stops no run: the hosts come from the client list,
  /// the run's result stands, and why is said once.
  @Test func anUnusableDatabaseLeavesTheOtherSourcesAndTheRun() async throws {
    try FileManager.default.createDirectory(atPath: store.root + "/lab", withIntermediateDirectories: true)
    try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
    try Data("not a database at all, just text".utf8).write(to: URL(fileURLWithPath: StateDatabase.path(store: store)))
    let list = scratch.path + "/clients"
    try "pc1 address=10.0.0.1 group=lab\n".write(toFile: list, atomically: true, encoding: .utf8)
    let notices = FleetRunNotices()
    let fleet = FleetRun(
      store: store, sources: InventorySources(store: store, clientList: list, dshDirectory: scratch.path + "/no-dsh", discovery: false),
      executor: RecordingExecutor(), audit: .none, notice: notices.add)
    let snapshot = try await fleet.loadInventory()
    #expect(snapshot.entries.map(\.host.name) == ["pc1"])
    let run = try await fleet.run(lock: .noWait, sink: FleetRunEvents()) { _ in
      ((), RunEnd(outcomes: [HostOutcome(host: Host(name: "pc1", group: "lab"), status: .ok)], runtimeError: false, interrupted: false))
    }
    #expect(run.exitStatus == ExitStatus.success)
    let said = notices.all.filter { $0.contains("without the known clients") }
    #expect(said.count == 1)
    #expect(said.first?.contains("state.sqlite") == true)
  }

  // MARK: - Host keys

  private static let keyLine = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGtEOLDlPYuw4qOfV17pDaxGkFN9+4rl/nm5b28KvTZr"

  /// The pins of a name, written plain or hashed by OpenSSH's own `ssh-keygen -H`.
  @Test func pinsAreFoundPlainAndHashed() async throws {
    let directory = try TemporaryDirectory()
    let file = try directory.write(
      "known_hosts", "# a comment\npc1 \(Self.keyLine)\n@revoked pc2 \(Self.keyLine)\npc3,pc4 \(Self.keyLine)\npc10 \(Self.keyLine)\n")
    let plain = KnownHostsFile(path: file).pins(for: ["pc1", "pc2", "pc4", "pc5"] as [HostName])
    #expect(plain == ["pc1": "pc1 \(Self.keyLine)", "pc4": "pc3,pc4 \(Self.keyLine)"])
    let hashed = try await LocalProgram.sshKeygen.run(["-H", "-f", file])
    #expect(hashed.succeeded, "\(hashed.message)")
    let text = try String(contentsOfFile: file, encoding: .utf8)
    #expect(!text.contains("pc1 "), "hashed: \(text)")
    let pins = KnownHostsFile(path: file).pins(for: ["pc1", "pc3", "pc10", "pc5"] as [HostName])
    #expect(pins.keys.sorted() == ["pc1", "pc10", "pc3"])
    #expect(pins["pc1"]?.hasPrefix("|1|") == true && pins["pc1"]?.hasSuffix(Self.keyLine) == true)
    #expect(pins["pc1"] != pins["pc10"])
    // A name pinned by a hashed line and a plain one gets both, in the file's order (the
    // digest a persistent master's record keeps depends on it).
    let hashedLines = text.split(separator: "\n").map(String.init)
    try (text + "pc1 \(Self.keyLine)\n").write(toFile: file, atomically: true, encoding: .utf8)
    let both = KnownHostsFile(path: file).pins(for: ["pc1"] as [HostName])["pc1"]
    let firstHashed = try #require(hashedLines.first { $0 == pins["pc1"] })
    #expect(both == firstHashed + "\npc1 \(Self.keyLine)")
  }

  /// A reached host's key is recorded, an accepted one keeps it, `forget` drops it; its
  /// fingerprint is ssh-keygen's.
  @Test func theKeyAHostIsPinnedToIsRecordedWithIt() async throws {
    let database = try StateDatabase(store: store)
    let knownHosts = KnownHostsFile(store: store)
    try FileManager.default.createDirectory(
      atPath: (knownHosts.path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try "pc1 \(Self.keyLine)\n".write(toFile: knownHosts.path, atomically: true, encoding: .utf8)
    let clients = KnownClients(database: database, knownHosts: knownHosts)
    try clients.remember([Host(name: "pc1", group: "lab"), Host(name: "pc2", group: "lab")])
    try clients.accept(Host(name: "pc1", group: "office", address: "10.0.0.1"))
    let loaded = try clients.load()
    #expect(loaded.map(\.hostKey) == ["pc1 \(Self.keyLine)", nil])
    #expect(loaded.first?.group == "office" && loaded.first?.lastSeen != nil)
    let fingerprints = await KnownHostsFile.fingerprints(of: ["pc1": "pc1 \(Self.keyLine)"])
    #expect(fingerprints == ["pc1": ["ED25519 SHA256:1gMAEFI6jJ2G40dGKKBY2Ys7C2xBeMtRW6HEV0ToO5o"]])
    #expect(try clients.forget("pc1"))
    #expect(try clients.load().map(\.name) == ["pc2"])
  }

  /// Accepting a claim records the host and drops the claim in one transaction: when the
  /// second half fails, neither happened.
  @Test func acceptingAClaimIsOneTransaction() throws {
    let database = try StateDatabase(store: store)
    let pending = PendingHosts(database: database)
    let claim = HostClaim(name: "pc1", group: "office", address: "10.0.0.1", port: nil)
    let other = HostClaim(name: "pc2", group: "lab", address: "10.0.0.2", port: 2222)
    _ = try pending.record([claim, other], at: Date(), settled: { _ in false })
    let clients = KnownClients(database: database, knownHosts: nil)
    try database.write { db in
      try db.execute(sql: "CREATE TEMP TRIGGER refuse BEFORE DELETE ON pending_host BEGIN SELECT RAISE(ABORT, 'refused'); END")
    }
    #expect(throws: StateDatabaseError.self) { try clients.accept(claim) }
    #expect(try clients.load().isEmpty)
    #expect(try pending.load().map(\.claim) == [claim, other])
    try database.write { db in try db.execute(sql: "DROP TRIGGER refuse") }
    try clients.accept(claim)
    #expect(try clients.load().map(\.name) == ["pc1"])
    #expect(try pending.load().map(\.claim) == [other])
  }
}
