// What a push sends is what was checked: a store path swapped for a link after the check
// (the store may be writable by others than root; cfi-sh runs as root) never makes rsync
// send a file from outside the group's tree. Each test swaps a component between the
// check (`PreparedAction.prepare`) and rsync, as an attacker racing the ssh handshake would,
// and pushes with a real rsync into a scratch directory.

import Foundation
import Testing

@testable import Runtime
import TestSupport

@Suite struct StorePushTests {
  /// A store with a group `lab`, a directory `outside` next to it holding what must never be
  /// sent, and `host/`, the host's `/`; all removed at the end.
  final class Scratch: Sendable {
    let root: String
    var store: Store { Store(root: root + "/store") }
    var tree: String { root + "/store/lab" }
    var outside: String { root + "/outside" }
    var hostRoot: String { root + "/host" }

    init() throws {
      root = FileManager.default.temporaryDirectory.appendingPathComponent("cfi-pushes-\(UUID().uuidString)").path
      for directory in ["/store/lab", "/outside", "/host"] {
        try FileManager.default.createDirectory(atPath: root + directory, withIntermediateDirectories: true)
      }
    }
    deinit { try? FileManager.default.removeItem(atPath: root) }

    func write(_ text: String, _ path: String) throws {
      try FileManager.default.createDirectory(
        atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
      try text.write(toFile: path, atomically: false, encoding: .utf8)
    }

    /// Replaces the directory `path` of the tree by a link to `outside/<what>`, keeping the
    /// original aside (as a swap between two renames would).
    func swapForLink(_ path: String, to what: String) throws {
      let original = tree + "/" + path
      try FileManager.default.moveItem(atPath: original, toPath: original + ".checked")
      try FileManager.default.createSymbolicLink(atPath: original, withDestinationPath: outside + "/" + what)
    }

    func hostFile(_ path: String) -> String? { try? String(contentsOfFile: hostRoot + path, encoding: .utf8) }
  }

  /// The host is a scratch directory: a push lands under it, a command is not run (exit 0).
  /// `beforePush` is the attacker, acting after the check, before rsync starts.
  final class ScratchHost: Transport {
    let root: String
    let beforePush: @Sendable (Push) throws -> Void
    let local = LocalTransport()

    init(root: String, beforePush: @escaping @Sendable (Push) throws -> Void) {
      self.root = root
      self.beforePush = beforePush
    }

    func run(_ command: RemoteCommand, on host: Runtime.Host) async -> CommandResult { CommandResult(.exited(0)) }

    func push(_ push: Push, to host: Runtime.Host) async -> CommandResult {
      do { try beforePush(push) } catch { return CommandResult(.notRun("the swap failed: \(error)")) }
      var push = push
      push.destination = root + push.destination
      return await local.push(push, to: host)
    }

    func pull(_ pull: Pull, from host: Runtime.Host) async -> CommandResult {
      var pull = pull
      pull.source = root + pull.source
      return await local.pull(pull, from: host)
    }

    func startNewRun() async {}
    func shutdown() async {}
    func forget(_ host: Runtime.Host) async {}
    var runsOnThisMachine: Bool { true }
  }

  static func perform(_ action: Action, _ scratch: Scratch, beforePush: @escaping @Sendable (Push) throws -> Void) async
    -> StepResult
  {
    let executor = ActionExecutor(transport: ScratchHost(root: scratch.hostRoot, beforePush: beforePush), store: scratch.store)
    return await executor.perform(action, on: Runtime.Host(name: "pc01", group: "lab"), options: StepOptions())
  }

  /// A tree (`etc/app`) whose parent, or a file (`etc/app/conf`) whose directory, is
  /// swapped for a link to a directory outside the store with a secret in the same place.
  @Test(arguments: [("etc/app", "etc", "etc"), ("etc/app/conf", "etc/app", "app")])
  func aSourceWhoseDirectoryIsSwappedForALinkSendsWhatWasChecked(_ source: String, _ swapped: String, _ outside: String)
    async throws
  {
    let scratch = try Scratch()
    try scratch.write("checked\n", scratch.tree + "/etc/app/conf")
    try scratch.write("SECRET\n", scratch.outside + "/" + outside + "/etc/app/conf".dropFirst(swapped.count + 1))
    let result = await Self.perform(.copy(path: source, destination: nil), scratch) { _ in
      try scratch.swapForLink(swapped, to: outside)
    }
    #expect(scratch.hostFile("/etc/app/conf") != "SECRET\n")
    #expect(result.status == .changed && scratch.hostFile("/etc/app/conf") == "checked\n", "\(result)")
  }

  /// The lists that passed the check (they keep ssh, avahi and rsync) are the ones the host
  /// gets, not lists that would remove them.
  @Test func pkgsyncListsSwappedAfterTheCheckAreNotSent() async throws {
    let scratch = try Scratch()
    let musthave = Pkgsync.essential.joined(separator: "\n") + "\n"
    for (list, text) in [("musthave", musthave), ("mayhave", ""), ("maynothave", "nano\n")] {
      try scratch.write(text, scratch.tree + "/etc/pkgsync/" + list)
      try scratch.write(list == "maynothave" ? "openssh-server\n" : "", scratch.outside + "/pkgsync/" + list)
    }
    let result = await Self.perform(.pkgsync, scratch) { _ in try scratch.swapForLink("etc/pkgsync", to: "pkgsync") }
    #expect(scratch.hostFile("/etc/pkgsync/maynothave") != "openssh-server\n")
    #expect(scratch.hostFile("/etc/pkgsync/musthave") == musthave && scratch.hostFile("/etc/pkgsync/maynothave") == "nano\n")
    #expect(result.status == .changed, "\(result)")
  }
}

extension StorePushTests {
  /// Without a swap, the same pushes send the tree's own content and keep its links as links;
  /// a second push of the same file changes nothing (its time goes with it), and the
  /// destination of `copy … to DIR/` is still `DIR/NAME`.
  @Test func pushesKeepWhatRsyncDidBefore() async throws {
    let scratch = try Scratch()
    try scratch.write("motd\n", scratch.tree + "/etc/motd")
    try scratch.write("conf\n", scratch.tree + "/etc/app/conf")
    try FileManager.default.createSymbolicLink(atPath: scratch.tree + "/etc/app/link", withDestinationPath: "conf")
    let none: @Sendable (Push) throws -> Void = { _ in }
    #expect(await Self.perform(.copy(path: "etc/motd", destination: nil), scratch, beforePush: none).status == .changed)
    #expect(await Self.perform(.copy(path: "etc/motd", destination: nil), scratch, beforePush: none).status == .ok)
    #expect(await Self.perform(.copy(path: "etc/motd", destination: "/srv/"), scratch, beforePush: none).status == .changed)
    #expect(scratch.hostFile("/srv/motd") == "motd\n")
    let tree = await Self.perform(.copy(path: "etc/app/", destination: nil), scratch, beforePush: none)
    let itemized = Set(tree.output.split(separator: "\n"))
    #expect(itemized.isSuperset(of: [">f+++++++++ conf", "cL+++++++++ link -> conf"]), "\(tree)")
    #expect(try FileManager.default.destinationOfSymbolicLink(atPath: scratch.hostRoot + "/etc/app/link") == "conf")
  }

  /// The checked descriptor and the private directory last as long as the step, not longer.
  @Test func theCheckedSourceIsReleasedWhenTheStepEnds() async throws {
    let scratch = try Scratch()
    try scratch.write("motd\n", scratch.tree + "/etc/motd")
    final class Seen: @unchecked Sendable {
      weak var file: StoreFile?
      var directory: String?
    }
    let seen = Seen()
    _ = await Self.perform(.copy(path: "etc/motd", destination: nil), scratch) { push in
      #expect(push.source.held?.file != nil)
      seen.file = push.source.held?.file
      seen.directory = push.source.held?.privateDirectory
    }
    let directory = try #require(seen.directory)
    #expect(seen.file == nil)
    #expect(!FileManager.default.fileExists(atPath: directory))
  }

  /// rsync gets the checked descriptor as its stdin, and no other child gets it at all.
  @Test func theDescriptorReachesOnlyTheChildItIsGivenTo() async throws {
    let scratch = try Scratch()
    try scratch.write("motd\n", scratch.tree + "/etc/motd")
    let file = try scratch.store.open("etc/motd", group: "lab")
    let listing = "for f in /proc/$$/fd/*; do readlink \"$f\"; done"
    let given = try await LocalProcess.run("sh", ["-c", listing], standardInput: file.descriptor)
    #expect(given.stdout.split(separator: "\n").first.map(String.init) == file.path)
    let other = try await LocalProcess.run("sh", ["-c", listing])
    #expect(!other.stdout.contains("etc/motd"))
  }
}
