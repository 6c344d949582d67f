// `cfi-sh client`: run on each client (as root) — announce it over mDNS and let the server in.
// The checks and file edits are Runtime's (Enrollment.swift); this is the command line and the
// messages.

import ArgumentParser
import Foundation
import Runtime

struct ClientCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "client",
    abstract: "Make this machine a cfi client: announce it and install the server's key.",
    subcommands: [Enroll.self, Status.self, Leave.self])

  static let serverType = "_cfi-server._tcp"

  /// Where the client's files are (hidden: for tests and odd set-ups).
  struct Files: ParsableArguments {
    @Option(help: ArgumentHelp("avahi's service directory (default /etc/avahi/services, or CFI_AVAHI_SERVICES).", valueName: "dir", visibility: .hidden))
    var servicesDir: String?

    @Option(help: ArgumentHelp("root's authorized_keys.", valueName: "file", visibility: .hidden))
    var authorizedKeys: String = AuthorizedKeys.defaultPath

    @Option(help: ArgumentHelp("The pin of the server key.", valueName: "file", visibility: .hidden))
    var pinFile: String = ServerPin.defaultPath

    var servicesDirectory: String { CFISh.setting(servicesDir, "CFI_AVAHI_SERVICES") ?? ClientAnnouncement.defaultDirectory }
    var serviceFile: String { servicesDirectory + "/" + ClientAnnouncement.fileName }

    /// Asks avahi-daemon to reread its service files; what happened, for the message.
    func reloadAvahi() -> String {
      guard servicesDirectory == ClientAnnouncement.defaultDirectory else { return "not reloading avahi-daemon for \(servicesDirectory)" }
      guard let daemon = findProgram("avahi-daemon") else { return "avahi-daemon is not installed: nothing announces it" }
      do {
        let result = try runProgram(daemon, ["-r"])
        if result.status == 0 { return "avahi-daemon reloaded" }
        let why = (result.stderr + result.stdout).trimmingCharacters(in: .whitespacesAndNewlines)
        return "could not reload avahi-daemon (\(why.isEmpty ? "status \(result.status)" : why)); it reads the file when it starts"
      } catch {
        return "could not run \(daemon) -r (\(error)); avahi-daemon reads the file when it starts"
      }
    }
  }

  // MARK: enroll

  struct Enroll: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "enroll",
      abstract: "Announce this client and install the cfi server's key for root.",
      discussion: """
        1. Writes /etc/avahi/services/cfi.service: _cfi._tcp on --port, TXT group=NAME.

        2. Looks for the server's _cfi-server._tcp announcement (TXT key=<ed25519 public key>, fp=<its SHA256 fingerprint>) for up to --wait.

        3. Trusts its key: with --server-fingerprint only that key; without it the key found is pinned in /etc/cfi/server.pin on first use, and a different key later is refused until --reset (even one named by --server-fingerprint). Two servers with different keys, or an invalid announcement, are refused unless --server-fingerprint picks one.

        4. Installs the key in /root/.ssh/authorized_keys as one line whose comment is cfi-sh-server:<fingerprint>; other lines are never touched. Running it again changes nothing.

        Exit status: 0 enrolled; 1 refused (nothing changed) or failed; 3 no server found within --wait (the client is announced all the same); 64 usage.
        """)

    @Option(help: ArgumentHelp("The client's group, announced as TXT group=NAME (letters, digits, '-', '_').", valueName: "name"))
    var group: String?

    @Option(help: ArgumentHelp("Accept only the server key with this fingerprint (SHA256:…).", valueName: "fingerprint"))
    var serverFingerprint: String?

    @Flag(help: "Replace the pinned server key with the one found now (after a server key change).")
    var reset = false

    @Option(help: ArgumentHelp("How long to look for the server, e.g. 10s or 1m.", valueName: "duration"))
    var wait: String = "10s"

    @Option(help: ArgumentHelp("The port announced: this machine's sshd port.", valueName: "port"))
    var port: Int = 22

    @OptionGroup var files: Files

    func validate() throws {
      if let group, !ClientAnnouncement.isValidGroup(group) {
        throw ValidationError("--group takes 1 to 63 letters, digits, '-' or '_', not '\(displayable(group))'")
      }
      if let serverFingerprint, KeyFingerprint(serverFingerprint) == nil {
        throw ValidationError("--server-fingerprint takes \(KeyFingerprint.expectedForm), not '\(displayable(serverFingerprint))'")
      }
      _ = try parseDuration(wait, option: "--wait")
      if !(1...65535).contains(port) { throw ValidationError("--port takes a port number, 1 to 65535") }
    }

    func run() async throws {
      let duration = try parseDuration(wait, option: "--wait")
      let expected = serverFingerprint.flatMap(KeyFingerprint.init)
      var changed: [String] = []

      // 1. Announce this client.
      let published: Bool
      do { published = try ClientAnnouncement.publish(group: group, port: port, directory: files.servicesDirectory) } catch {
        try fail("cannot announce this client: \(error)")
      }
      let what = "_cfi._tcp port \(port), " + (group.map { "group \($0)" } ?? "no group")
      if published {
        print("published: \(what) (wrote \(files.serviceFile); \(files.reloadAvahi()))")
        changed.append("published")
      } else {
        print("published: \(what) (unchanged)")
      }

      // 2. Find the server.
      let services: [DiscoveredService]
      do {
        services = try await findServers(within: duration, untilAllForNow: false)
      } catch {
        stderr("cfi-sh client enroll: cannot look for the cfi server: avahi: \(error); this client is published all the same")
        throw ExitCode(3)
      }
      guard !services.isEmpty else {
        stderr(
          "cfi-sh client enroll: no cfi server (\(ClientCommand.serverType)) announced within \(wait); this client "
            + "is published, run 'cfi-sh client enroll' again once the server has run 'cfi-sh server init'")
        throw ExitCode(3)
      }
      var valid: [ServerAnnouncement] = []
      var rejected: [RejectedAnnouncement] = []
      for service in services {
        do {
          valid.append(try ServerAnnouncement.validate(name: service.name, address: service.address, txt: service.txt))
        } catch {
          rejected.append(RejectedAnnouncement(name: service.name, address: service.address, reason: error.description))
        }
      }

      // 3. Decide whom to trust.
      let pinned: KeyFingerprint?
      do { pinned = try ServerPin.load(files.pinFile) } catch {
        guard reset else { try refuse(error.description) }
        pinned = nil
      }
      let decision = TrustDecision.decide(valid: valid, rejected: rejected, expected: expected, pinned: pinned, reset: reset)
      guard case .trust(let server, let pinChange, let ignored) = decision else {
        if case .refuse(let message) = decision { try refuse(message) }
        return
      }
      for note in ignored { stderr("cfi-sh client enroll: ignoring \(note)") }
      print("server: \(server.origin) announces \(server.fingerprint)")
      do {
        switch pinChange {
        case .unchanged:
          print("pin: \(server.fingerprint) (unchanged)")
        case .new:
          try ServerPin.save(server.fingerprint, to: files.pinFile)
          print("pin: \(server.fingerprint) pinned in \(files.pinFile) (\(expected == nil ? "first key seen" : "--server-fingerprint"))")
          changed.append("pinned")
        case .replaced(let old):
          try ServerPin.save(server.fingerprint, to: files.pinFile)
          print("pin: \(server.fingerprint) pinned in \(files.pinFile), replacing \(old) (--reset)")
          changed.append("pinned")
        }
      } catch {
        try fail(error.description)
      }

      // 4. Let the server in.
      do {
        switch try AuthorizedKeys.install(server.key, fingerprint: server.fingerprint, at: files.authorizedKeys) {
        case .unchanged: print("authorized_keys: server key already in \(files.authorizedKeys)")
        case .added:
          print("authorized_keys: server key added to \(files.authorizedKeys)")
          changed.append("key installed")
        case .replaced, .removed:
          print("authorized_keys: server key replaced in \(files.authorizedKeys)")
          changed.append("key replaced")
        }
      } catch {
        try fail(error.description)
      }
      print(changed.isEmpty ? "enrolled (nothing changed)" : "enrolled (changed: \(changed.joined(separator: ", ")))")
    }

    private func refuse(_ message: String) throws -> Never {
      stderr("cfi-sh client enroll: refused: \(message)")
      stderr("cfi-sh client enroll: authorized_keys and the pin were left as they are")
      throw ExitCode(1)
    }

    private func fail(_ message: String) throws -> Never {
      stderr("cfi-sh client enroll: \(message)")
      throw ExitCode(1)
    }
  }

  // MARK: status

  struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "status",
      abstract: "Show whether this client is announced and enrolled, and what server is announced now.",
      discussion: """
        One line each: published (the _cfi._tcp service file and its group), pin (the trusted
        server key), authorized_keys (whether the server key is installed), server (what is
        announced now, and whether it matches the pin).
        """)

    @Option(help: ArgumentHelp("How long to look for the server at most, e.g. 3s.", valueName: "duration"))
    var wait: String = "3s"

    @OptionGroup var files: Files

    func validate() throws { _ = try parseDuration(wait, option: "--wait") }

    func run() async throws {
      if let data = FileManager.default.contents(atPath: files.serviceFile) {
        if let announced = ClientAnnouncement.parse(serviceFile: String(decoding: data, as: UTF8.self)) {
          let port = announced.port.map(String.init) ?? "?"
          print("published: yes, _cfi._tcp port \(port), \(announced.group.map { "group \($0)" } ?? "no group") (\(files.serviceFile))")
        } else {
          print("published: no (\(files.serviceFile) announces no _cfi._tcp)")
        }
      } else {
        print("published: no (no \(files.serviceFile))")
      }

      var pinned: KeyFingerprint?
      do {
        pinned = try ServerPin.load(files.pinFile)
        print("pin: \(pinned.map { "\($0) (\(files.pinFile))" } ?? "none (no \(files.pinFile))")")
      } catch {
        print("pin: invalid: \(error)")
      }

      let text = (try? AtomicFile.read(files.authorizedKeys)).flatMap { $0 }.map { String(decoding: $0, as: UTF8.self) } ?? ""
      let marked = AuthorizedKeys.markedLines(in: text)
      if marked.isEmpty {
        print("authorized_keys: no server key in \(files.authorizedKeys)")
      } else {
        let installed = marked.map { line in AuthorizedKeys.key(ofMarked: line).flatMap { try? $0.fingerprint() } }
        var line = "authorized_keys: server key "
          + installed.map { $0?.description ?? "(invalid line)" }.joined(separator: ", ") + " installed in \(files.authorizedKeys)"
        if marked.count > 1 { line += " (\(marked.count) cfi lines: 'cfi-sh client enroll' keeps one)" }
        if let pinned, installed.contains(where: { $0 != pinned }) { line += " (not the pinned key)" }
        print(line)
      }

      let duration = try parseDuration(wait, option: "--wait")
      do {
        let services = try await findServers(within: duration, untilAllForNow: true)
        if services.isEmpty { print("server: none announced") }
        for service in services {
          let origin = "'\(displayable(service.name))' (\(displayable(service.address)))"
          do {
            let announcement = try ServerAnnouncement.validate(name: service.name, address: service.address, txt: service.txt)
            let match =
              switch pinned {
              case nil: "no pin yet"
              case announcement.fingerprint: "matches the pin"
              default: "does NOT match the pin"
              }
            print("server: \(origin) announces \(announcement.fingerprint) (\(match))")
          } catch {
            print("server: \(origin): invalid announcement: \(error)")
          }
        }
      } catch {
        print("server: cannot look: avahi: \(error)")
      }
    }
  }

  // MARK: leave

  struct Leave: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "leave",
      abstract: "Stop being a cfi client: withdraw the announcement, remove the server key and the pin.",
      discussion: "Other lines of authorized_keys are left alone. Running it again changes nothing.")

    @OptionGroup var files: Files

    func run() async throws {
      var changed = false
      var failed = false
      do {
        if try AtomicFile.remove(files.serviceFile) {
          print("published: removed \(files.serviceFile) (\(files.reloadAvahi()))")
          changed = true
        } else {
          print("published: no (no \(files.serviceFile))")
        }
      } catch {
        stderr("cfi-sh client leave: \(error)")
        failed = true
      }
      do {
        if try AuthorizedKeys.remove(at: files.authorizedKeys) == .removed {
          print("authorized_keys: server key removed from \(files.authorizedKeys)")
          changed = true
        } else {
          print("authorized_keys: no server key in \(files.authorizedKeys)")
        }
      } catch {
        stderr("cfi-sh client leave: \(error)")
        failed = true
      }
      do {
        if try ServerPin.remove(files.pinFile) {
          print("pin: removed \(files.pinFile)")
          changed = true
        } else {
          print("pin: none (no \(files.pinFile))")
        }
      } catch {
        stderr("cfi-sh client leave: \(error)")
        failed = true
      }
      if failed { throw ExitCode(1) }
      print(changed ? "left (changed)" : "left (nothing to do)")
    }
  }
}

/// Browses for cfi servers: until avahi's "all for now" (about a second) once one is found —
/// or, with `untilAllForNow`, even if none is — and `limit` at the most. Throws avahi's
/// `DiscoveryError` (e.g. no avahi-daemon).
private func findServers(within limit: Duration, untilAllForNow: Bool) async throws -> [DiscoveredService] {
  try await withThrowingTaskGroup(of: [String: DiscoveredService]?.self) { group in
    group.addTask {
      var present: [String: DiscoveredService] = [:]
      var allForNow = false
      for try await event in Discovery.browse(ClientCommand.serverType) {
        switch event {
        case .appeared(let service), .changed(let service): present[service.name] = service
        case .gone(let name): present[name] = nil
        case .allForNow: allForNow = true
        }
        if allForNow && (untilAllForNow || !present.isEmpty) { return present }
      }
      return present  // cancelled: the stream ends without error
    }
    group.addTask {
      try await Task.sleep(for: limit)
      return nil
    }
    while let result = try await group.next() {
      group.cancelAll()
      if let present = result { return present.values.sorted { $0.name < $1.name } }
    }
    return []
  }
}

private func stderr(_ line: String) {
  FileHandle.standardError.write(Data((line + "\n").utf8))
}
