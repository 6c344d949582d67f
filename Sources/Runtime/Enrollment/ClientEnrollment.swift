// Enrollment, the client's transactions behind `cfi-sh client enroll | status | leave`: each
// does its checks and file edits and returns a report of what it found and did; the command
// renders the report and derives the exit status from it. Nothing here prints.

import Foundation

/// Where a client's enrollment files are.
public struct ClientFiles: Hashable, Sendable {
  /// avahi's service directory; the client's service file is written there.
  public var servicesDirectory: String
  /// root's authorized_keys.
  public var authorizedKeys: String
  /// The pin of the server key.
  public var pinFile: String

  public init(
    servicesDirectory: String = AvahiServiceFile.defaultDirectory, authorizedKeys: String = AuthorizedKeys.defaultPath,
    pinFile: String = ServerPin.defaultPath
  ) {
    self.servicesDirectory = servicesDirectory
    self.authorizedKeys = authorizedKeys
    self.pinFile = pinFile
  }

  /// The client's avahi service file.
  public var serviceFile: String { servicesDirectory + "/" + AvahiServiceFile.clientFileName }
}

/// Finds server announcements: browses `ServiceType.server` for `within` at the most, ending as
/// `end` says, and returns every resolution seen (`Discovery.resolutions`: one instance name
/// announced from two links is two). Throws avahi's error (e.g. no avahi-daemon). Tests pass
/// announcements of their own.
public typealias ServerSearch = @Sendable (_ within: Duration, _ end: Discovery.SnapshotEnd) async throws -> [DiscoveredService]

/// The client side of enrollment.
public struct ClientEnrollment: Sendable {
  public var files: ClientFiles
  public var search: ServerSearch
  /// Computes key fingerprints (ssh-keygen); announcements are checked with it.
  public var sshKeygen: LocalProgram

  public init(
    files: ClientFiles = ClientFiles(),
    search: @escaping ServerSearch = { try await Discovery.resolutions(ServiceType.server, for: $0, ending: $1) },
    sshKeygen: LocalProgram = .sshKeygen
  ) {
    self.files = files
    self.search = search
    self.sshKeygen = sshKeygen
  }

  // MARK: enroll

  /// What `enroll` is asked to do.
  public struct Request: Hashable, Sendable {
    /// The group announced (nil: no `group=` TXT, the server files the client as `unknown`).
    public var group: GroupName?
    /// The port announced: this machine's sshd port.
    public var port: Int
    /// `--server-fingerprint`: accept only this key.
    public var expected: KeyFingerprint?
    /// `--reset`: replace the pinned key with the one found now.
    public var reset: Bool
    /// How long to look for the server.
    public var wait: Duration

    public init(group: GroupName?, port: Int = 22, expected: KeyFingerprint? = nil, reset: Bool = false, wait: Duration = .seconds(10)) {
      self.group = group
      self.port = port
      self.expected = expected
      self.reset = reset
      self.wait = wait
    }
  }

  /// The client's announcement, as `enroll` left it.
  public struct Publication: Hashable, Sendable {
    public var group: GroupName?
    public var port: Int
    public var file: String
    /// Nil: the file already said this. Else it was written, and this is what reloading
    /// avahi-daemon did.
    public var reload: AvahiReload?
  }

  /// Everything `enroll` did, in order; it stops at the first step that cannot go on.
  public struct Report: Hashable, Sendable {
    public var request: Request
    /// Nil when the client could not be announced (`stop` says why).
    public var publication: Publication?
    /// Announcements passed over because `--server-fingerprint` picked another.
    public var ignored: [String] = []
    /// The server whose key is trusted.
    public var server: ServerAnnouncement?
    /// What happened to the pin (it is saved before the key is installed).
    public var pin: TrustDecision.PinChange?
    /// The pin file, for messages.
    public var pinFile: String
    /// What happened in authorized_keys.
    public var key: AuthorizedKeys.Change?
    /// The authorized_keys file, for messages.
    public var authorizedKeys: String
    /// Why enrollment ended early; nil: enrolled.
    public var stop: Stop?

    public enum Stop: Hashable, Sendable {
      /// The service file could not be written.
      case cannotPublish(EnrollmentError)
      /// Browsing failed (avahi); the client is announced all the same.
      case searchFailed(EnrollmentError)
      /// No server announced itself within the wait; the client is announced all the same.
      case noServer
      /// The trust decision (or an unreadable pin) refused every server: nothing was changed
      /// beyond the announcement.
      case refused(String)
      /// Writing the pin or authorized_keys failed.
      case failed(EnrollmentError)
    }

    /// What changed, in order: `published`, `pinned`, `key installed` or `key replaced`.
    public var changes: [String] {
      var changes: [String] = []
      if publication?.reload != nil { changes.append("published") }
      switch pin {
      case .new, .replaced: changes.append("pinned")
      case .unchanged, nil: break
      }
      switch key {
      case .added: changes.append("key installed")
      case .replaced, .removed: changes.append("key replaced")
      case .unchanged, nil: break
      }
      return changes
    }
  }

  /// Announces this client, finds the server, decides whether to trust its key, pins it and
  /// installs it. `published` is told as soon as the announcement is written (the search that
  /// follows can take the whole wait).
  public func enroll(_ request: Request, published: (Publication) -> Void = { _ in }) async -> Report {
    var report = Report(request: request, pinFile: files.pinFile, authorizedKeys: files.authorizedKeys)

    // 1. Announce this client.
    let written: Bool
    do { written = try AvahiServiceFile.client(group: request.group, port: request.port).publish(in: files.servicesDirectory) } catch {
      report.stop = .cannotPublish(error)
      return report
    }
    let reload = written ? await AvahiReload.reload(for: files.servicesDirectory) : nil
    let publication = Publication(group: request.group, port: request.port, file: files.serviceFile, reload: reload)
    report.publication = publication
    published(publication)

    // 2. Find the server.
    let services: [DiscoveredService]
    do { services = try await search(request.wait, .atFirstFound) } catch {
      report.stop = .searchFailed(EnrollmentError("avahi: \(error)"))
      return report
    }
    guard !services.isEmpty else {
      report.stop = .noServer
      return report
    }
    var valid: [ServerAnnouncement] = []
    var rejected: [RejectedAnnouncement] = []
    for service in services {
      do {
        valid.append(try await validate(service))
      } catch {
        rejected.append(RejectedAnnouncement(service: service, reason: error.description))
      }
    }

    // 3. Decide whom to trust.
    let pinned: KeyFingerprint?
    do { pinned = try ServerPin.load(files.pinFile) } catch {
      guard request.reset else {
        report.stop = .refused(error.description)
        return report
      }
      pinned = nil
    }
    let decision = TrustDecision.decide(
      valid: valid, rejected: rejected, expected: request.expected, pinned: pinned, reset: request.reset)
    let server: ServerAnnouncement
    let pinChange: TrustDecision.PinChange
    switch decision {
    case .refuse(let message):
      report.stop = .refused(message)
      return report
    case .trust(let trusted, let change, let ignored):
      (server, pinChange, report.ignored, report.server) = (trusted, change, ignored, trusted)
    }

    // 4. Pin the key, then let the server in.
    do {
      if pinChange != .unchanged { try ServerPin.save(server.fingerprint, to: files.pinFile) }
      report.pin = pinChange
      report.key = try AuthorizedKeys.install(server.key, fingerprint: server.fingerprint, at: files.authorizedKeys)
    } catch {
      report.stop = .failed(error)
    }
    return report
  }

  private func validate(_ service: DiscoveredService) async throws(EnrollmentError) -> ServerAnnouncement {
    try await ServerAnnouncement.validate(service) {
      key throws(EnrollmentError) in try await key.fingerprint(sshKeygen: sshKeygen)
    }
  }

  // MARK: status

  /// What `status` found.
  public struct Status: Hashable, Sendable {
    public var files: ClientFiles
    public var published: Published
    /// The pinned key (nil: no pin file), or why the pin is unusable.
    public var pin: Result<KeyFingerprint?, EnrollmentError>
    /// The fingerprint of each cfi line in authorized_keys (nil: a line whose key is invalid).
    public var installed: [KeyFingerprint?]
    /// What servers announce now (every announcer, as enrollment sees them), or why browsing
    /// failed.
    public var servers: Result<[AnnouncedServer], EnrollmentError>

    public enum Published: Hashable, Sendable {
      /// The service file announces a client on `port` with `group` (as written there).
      case yes(port: Int?, group: String?)
      /// The service file exists but announces no `ServiceType.client`.
      case notAClient
      case noFile
    }

    /// One server announcement and whether it checks out.
    public struct AnnouncedServer: Hashable, Sendable {
      public var service: DiscoveredService
      public var announcement: Result<ServerAnnouncement, EnrollmentError>
      /// `'NAME' (ADDRESS on INTERFACE, host HOST)`, printable.
      public var origin: String { service.origin }
    }

    /// The pinned fingerprint, if the pin is valid.
    public var pinned: KeyFingerprint? { (try? pin.get()) ?? nil }
  }

  /// Reads the client's files and looks for server announcements for `wait` at the most.
  public func status(wait: Duration) async -> Status {
    let published: Status.Published
    if let data = FileManager.default.contents(atPath: files.serviceFile) {
      published =
        AvahiServiceFile.announcedClient(in: String(decoding: data, as: UTF8.self)).map { .yes(port: $0.port, group: $0.group) }
        ?? .notAClient
    } else {
      published = .noFile
    }
    let pin = Result { () throws(EnrollmentError) in try ServerPin.load(files.pinFile) }
    let text = (try? AtomicFile.read(files.authorizedKeys)).flatMap { $0 }.map { String(decoding: $0, as: UTF8.self) } ?? ""
    var installed: [KeyFingerprint?] = []
    for line in AuthorizedKeys.markedLines(in: text) {
      installed.append(try? await AuthorizedKeys.key(ofMarked: line)?.fingerprint(sshKeygen: sshKeygen))
    }
    let servers: Result<[Status.AnnouncedServer], EnrollmentError>
    do {
      var found: [Status.AnnouncedServer] = []
      for service in try await search(wait, .atAllForNow) {
        let announcement: Result<ServerAnnouncement, EnrollmentError>
        do { announcement = .success(try await validate(service)) } catch { announcement = .failure(error) }
        found.append(Status.AnnouncedServer(service: service, announcement: announcement))
      }
      servers = .success(found)
    } catch {
      servers = .failure(EnrollmentError("avahi: \(error)"))
    }
    return Status(files: files, published: published, pin: pin, installed: installed, servers: servers)
  }

  // MARK: leave

  /// What `leave` did with each file: removed it (or the cfi line), found nothing, or failed.
  public struct Departure: Hashable, Sendable {
    public var files: ClientFiles
    /// Whether the service file was removed; then `reload` says what reloading avahi did.
    public var announcement: Result<Bool, EnrollmentError>
    public var reload: AvahiReload?
    /// Whether authorized_keys had a cfi line, now removed.
    public var key: Result<Bool, EnrollmentError>
    /// Whether there was a pin, now removed.
    public var pin: Result<Bool, EnrollmentError>

    public var changed: Bool { [announcement, key, pin].contains { (try? $0.get()) == true } }
    public var failed: Bool { [announcement, key, pin].contains { (try? $0.get()) == nil } }
  }

  /// Withdraws the announcement, removes the server's key and the pin; other lines of
  /// authorized_keys stay. Each step is tried even when an earlier one failed.
  public func leave() async -> Departure {
    let announcement = Result { () throws(EnrollmentError) in try AtomicFile.remove(files.serviceFile) }
    let reload = (try? announcement.get()) == true ? await AvahiReload.reload(for: files.servicesDirectory) : nil
    let key = Result { () throws(EnrollmentError) in try AuthorizedKeys.remove(at: files.authorizedKeys) == .removed }
    let pin = Result { () throws(EnrollmentError) in try ServerPin.remove(files.pinFile) }
    return Departure(files: files, announcement: announcement, reload: reload, key: key, pin: pin)
  }
}
