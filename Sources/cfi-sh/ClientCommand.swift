// `cfi-sh client`: run on each client (as root) — announce it over mDNS and let the server in.
// The transactions are Runtime's (`ClientEnrollment`, Sources/Runtime/Enrollment/): they return
// reports, and this renders them as messages and an exit status.

import ArgumentParser
import Foundation
import Runtime

struct ClientCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "client",
    abstract: "Make this machine a cfi client: announce it and install the server's key.",
    subcommands: [Enroll.self, Status.self, Leave.self])

  /// Where the client's files are (hidden: for tests and odd set-ups).
  struct Files: ParsableArguments {
    @Option(help: ArgumentHelp("avahi's service directory (default /etc/avahi/services, or CFI_AVAHI_SERVICES).", valueName: "dir", visibility: .hidden))
    var servicesDir: String?

    @Option(help: ArgumentHelp("root's authorized_keys.", valueName: "file", visibility: .hidden))
    var authorizedKeys: String = AuthorizedKeys.defaultPath

    @Option(help: ArgumentHelp("The pin of the server key.", valueName: "file", visibility: .hidden))
    var pinFile: String = ServerPin.defaultPath

    var clientFiles: ClientFiles {
      ClientFiles(
        servicesDirectory: CFISh.setting(servicesDir, "CFI_AVAHI_SERVICES") ?? AvahiServiceFile.defaultDirectory,
        authorizedKeys: authorizedKeys, pinFile: pinFile)
    }
  }

  /// What a client announces: its group and its sshd port (`client enroll`, and the machine
  /// a `server bootstrap-script` makes a client).
  struct Announcement: ParsableArguments {
    @Option(
      help: ArgumentHelp("The client's group, announced as TXT group=NAME (\(GroupName.rule)).", valueName: "name"),
      transform: { text throws(GroupNameError) in try GroupName(parsing: text) })
    var group: GroupName?

    @Option(help: ArgumentHelp("The port announced: the client's sshd port.", valueName: "port"))
    var port: Int = 22

    func validate() throws {
      if !(1...65535).contains(port) { throw ValidationError("--port takes a port number, 1 to 65535") }
    }
  }

  // MARK: enroll

  struct Enroll: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "enroll",
      abstract: "Announce this client and install the cfi server's key for root.",
      discussion: """
        1. Writes /etc/avahi/services/\(AvahiServiceFile.clientFileName): \(ServiceType.client) on --port, TXT group=NAME.

        2. Looks for the server's \(ServiceType.server) announcement (TXT key=<ed25519 public key>, fp=<its SHA256 fingerprint>) for up to --wait, and takes every announcement seen meanwhile into account: each announcer of each name, on each interface (a second machine announcing under the server's own name is one more), including one withdrawn or changed before the search ends.

        3. Trusts its key: with --server-fingerprint only that key; without it the key found is pinned in /etc/cfi/server.pin on first use, and a different key later is refused until --reset (even one named by --server-fingerprint). Two announcers with different keys, or an invalid announcement, are refused unless --server-fingerprint picks one; the refusal names each announcer (name, address, interface, host) and its key's fingerprint.

        4. Installs the key in /root/.ssh/authorized_keys as one line whose comment is cfi-sh-server:<fingerprint>; other lines are never touched. Running it again changes nothing.

        Exit status: 0 enrolled; 1 refused (nothing changed) or failed; 3 no server found within --wait (the client is announced all the same); 64 usage.
        """)

    @OptionGroup var announcement: Announcement

    @Option(help: ArgumentHelp("Accept only the server key with this fingerprint (SHA256:…).", valueName: "fingerprint"))
    var serverFingerprint: String?

    @Flag(help: "Replace the pinned server key with the one found now (after a server key change).")
    var reset = false

    @Option(help: ArgumentHelp("How long to look for the server, e.g. 10s or 1m.", valueName: "duration"))
    var wait: String = "10s"

    @OptionGroup var files: Files

    func validate() throws {
      if let serverFingerprint, KeyFingerprint(serverFingerprint) == nil {
        throw ValidationError("--server-fingerprint takes \(KeyFingerprint.expectedForm), not '\(displayable(serverFingerprint))'")
      }
      _ = try parseDuration(wait, option: "--wait")
    }

    func run() async throws {
      let request = ClientEnrollment.Request(
        group: announcement.group, port: announcement.port, expected: serverFingerprint.flatMap(KeyFingerprint.init), reset: reset,
        wait: try parseDuration(wait, option: "--wait"))
      let report = await ClientEnrollment(files: files.clientFiles).enroll(request) { publication in
        let what = "\(ServiceType.client) port \(publication.port), " + (publication.group.map { "group \($0)" } ?? "no group")
        if let reload = publication.reload {
          print("published: \(what) (wrote \(publication.file); \(reload.message))")
        } else {
          print("published: \(what) (unchanged)")
        }
      }
      for note in report.ignored { stderr("cfi-sh client enroll: ignoring \(note)") }
      if let server = report.server { print("server: \(server.origin) announces \(server.fingerprint)") }
      if let server = report.server, let pin = report.pin {
        switch pin {
        case .unchanged:
          print("pin: \(server.fingerprint) (unchanged)")
        case .new:
          print("pin: \(server.fingerprint) pinned in \(report.pinFile) (\(request.expected == nil ? "first key seen" : "--server-fingerprint"))")
        case .replaced(let old):
          print("pin: \(server.fingerprint) pinned in \(report.pinFile), replacing \(old) (--reset)")
        }
      }
      switch report.key {
      case .unchanged: print("authorized_keys: server key already in \(report.authorizedKeys)")
      case .added: print("authorized_keys: server key added to \(report.authorizedKeys)")
      case .replaced, .removed: print("authorized_keys: server key replaced in \(report.authorizedKeys)")
      case nil: break
      }
      switch report.stop {
      case nil:
        let changes = report.changes
        print(changes.isEmpty ? "enrolled (nothing changed)" : "enrolled (changed: \(changes.joined(separator: ", ")))")
      case .cannotPublish(let error):
        stderr("cfi-sh client enroll: cannot announce this client: \(error)")
        throw ExitCode(1)
      case .searchFailed(let error):
        stderr("cfi-sh client enroll: cannot look for the cfi server: \(error); this client is published all the same")
        throw ExitCode(3)
      case .noServer:
        stderr(
          "cfi-sh client enroll: no cfi server (\(ServiceType.server)) announced within \(wait); this client "
            + "is published, run 'cfi-sh client enroll' again once the server has run 'cfi-sh server init'")
        throw ExitCode(3)
      case .refused(let message):
        stderr("cfi-sh client enroll: refused: \(message)")
        stderr("cfi-sh client enroll: authorized_keys and the pin were left as they are")
        throw ExitCode(1)
      case .failed(let error):
        stderr("cfi-sh client enroll: \(error)")
        throw ExitCode(1)
      }
    }
  }

  // MARK: status

  struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "status",
      abstract: "Show whether this client is announced and enrolled, and what server is announced now.",
      discussion: """
        One line each: published (the \(ServiceType.client) service file and its
        group), pin (the trusted server key), authorized_keys (whether the server key
        is installed), server (one line per announcer, as enrollment sees them, and
        whether its key matches the pin).
        """)

    @Option(help: ArgumentHelp("How long to look for the server at most, e.g. 3s.", valueName: "duration"))
    var wait: String = "3s"

    @OptionGroup var files: Files

    func validate() throws { _ = try parseDuration(wait, option: "--wait") }

    func run() async throws {
      let status = await ClientEnrollment(files: files.clientFiles).status(wait: try parseDuration(wait, option: "--wait"))
      let serviceFile = status.files.serviceFile
      switch status.published {
      case .yes(let port, let group):
        print(
          "published: yes, \(ServiceType.client) port \(port.map(String.init) ?? "?"), \(group.map { "group \($0)" } ?? "no group") (\(serviceFile))")
      case .notAClient: print("published: no (\(serviceFile) announces no \(ServiceType.client))")
      case .noFile: print("published: no (no \(serviceFile))")
      }

      switch status.pin {
      case .success(let pinned?): print("pin: \(pinned) (\(status.files.pinFile))")
      case .success(nil): print("pin: none (no \(status.files.pinFile))")
      case .failure(let error): print("pin: invalid: \(error)")
      }

      let authorizedKeys = status.files.authorizedKeys
      if status.installed.isEmpty {
        print("authorized_keys: no server key in \(authorizedKeys)")
      } else {
        var line = "authorized_keys: server key "
          + status.installed.map { $0?.description ?? "(invalid line)" }.joined(separator: ", ") + " installed in \(authorizedKeys)"
        if status.installed.count > 1 { line += " (\(status.installed.count) cfi lines: 'cfi-sh client enroll' keeps one)" }
        if let pinned = status.pinned, status.installed.contains(where: { $0 != pinned }) { line += " (not the pinned key)" }
        print(line)
      }

      switch status.servers {
      case .failure(let error):
        print("server: cannot look: \(error)")
      case .success(let servers):
        if servers.isEmpty { print("server: none announced") }
        var printed: Set<String> = []
        for server in servers {
          let line =
            switch server.announcement {
            case .success(let announcement):
              switch status.pinned {
              case nil: "server: \(server.origin) announces \(announcement.fingerprint) (no pin yet)"
              case announcement.fingerprint: "server: \(server.origin) announces \(announcement.fingerprint) (matches the pin)"
              default: "server: \(server.origin) announces \(announcement.fingerprint) (does NOT match the pin)"
              }
            case .failure(let error):
              "server: \(server.origin): invalid announcement: \(error)"
            }
          // One announcer resolved twice alike is one line.
          if printed.insert(line).inserted { print(line) }
        }
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
      let departure = await ClientEnrollment(files: files.clientFiles).leave()
      let files = departure.files
      switch departure.announcement {
      case .success(true): print("published: removed \(files.serviceFile) (\(departure.reload?.message ?? ""))")
      case .success(false): print("published: no (no \(files.serviceFile))")
      case .failure(let error): stderr("cfi-sh client leave: \(error)")
      }
      switch departure.key {
      case .success(true): print("authorized_keys: server key removed from \(files.authorizedKeys)")
      case .success(false): print("authorized_keys: no server key in \(files.authorizedKeys)")
      case .failure(let error): stderr("cfi-sh client leave: \(error)")
      }
      switch departure.pin {
      case .success(true): print("pin: removed \(files.pinFile)")
      case .success(false): print("pin: none (no \(files.pinFile))")
      case .failure(let error): stderr("cfi-sh client leave: \(error)")
      }
      if departure.failed { throw ExitCode(1) }
      print(departure.changed ? "left (changed)" : "left (nothing to do)")
    }
  }
}

extension AvahiReload {
  /// What happened, for the line about the service file.
  var message: String {
    switch self {
    case .notAvahisDirectory(let directory): "not reloading avahi-daemon for \(directory)"
    case .notInstalled: "avahi-daemon is not installed: nothing announces it"
    case .reloaded: "avahi-daemon reloaded"
    case .failed(let why): "could not reload avahi-daemon (\(why)); it reads the file when it starts"
    case .cannotRun(let program, let error): "could not run \(program) -r (\(error)); avahi-daemon reads the file when it starts"
    }
  }
}

private func stderr(_ line: String) {
  FileHandle.standardError.write(Data((line + "\n").utf8))
}
