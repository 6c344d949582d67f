// The argv cfi-sh gives ssh and rsync, as a golden file (`Golden/Argv/`, one word per line,
// as is; `CFI_RECORD=1` re-records like the operation goldens), for a host with a
// port, a user and an IPv6 address, with `'`, `"` and spaces in every configured path; and
// the proof that rsync's `-e` string splits back into those words by rsync's own rules.

import Foundation
import Testing

@testable import Runtime
import TestSupport

@Suite struct SSHArgvTests {
  static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("Golden/Argv").path
  static let nasty = "it's a \"path\" \\ with ''"

  /// A transport whose every path holds a quote and a space.
  static func transport() -> SSHTransport {
    var configuration = SSHConfiguration(store: Store(root: "/var/lib/cfi \(nasty)"))
    configuration.identityFile = "/etc/cfi/\(nasty)/id_ed25519"
    configuration.configFile = "/etc/cfi/\(nasty)/ssh_config"
    configuration.controlDirectory = "/tmp/cfi-ssh \(nasty)"
    return SSHTransport(configuration: configuration)
  }

  static let host = Host(name: "pc01", group: "lab", address: "fd00::1", port: 2222, user: "admin")

  static func render(_ title: String, _ argv: [String]) -> String {
    "# \(title)\n" + argv.joined(separator: "\n") + "\n"
  }

  @Test func argvGolden() throws {
    let transport = Self.transport()
    let target = try SSHTarget(Self.host)
    let command = RemoteCommand(
      .script("printf '%s\\n' \"$(cat)\""), input: .secret(Secret("hunter2")), timeout: .seconds(30),
      connectTimeout: .seconds(5))
    let push = Push(
      source: "/var/lib/cfi/lab/etc/\(Self.nasty)/", destination: "/etc/\(Self.nasty)/",
      options: ["-rlptD", "--itemize-changes", "--protect-args"], connectTimeout: .seconds(5))
    let pull = Pull(
      source: "/etc/\(Self.nasty)", destination: "/var/lib/cfi/.fetched/pc01/etc/",
      options: ["-rlpt", "--itemize-changes", "--protect-args"], connectTimeout: .seconds(5))
    // A tree of the store, opened and checked: rsync reads it as its stdin, never by its path.
    let store = Store(root: URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden/Operations/store").path)
    let checked = Push(
      source: try PushSource(store.open("etc/ssh", group: "lab", directories: true)), destination: "/etc/ssh/",
      options: ["-rlptD", "--itemize-changes", "--protect-args"], connectTimeout: .seconds(5))
    let text = [
      Self.render("ssh, before anything runs on the host: opens the master", transport.masterArgv(target, connectTimeout: .seconds(5))),
      "# every command: a session over the master's socket (mux new-session request, fields decoded)\n"
        + MuxRequestDecoding.describe(MuxSession.request(command.wrapped(tag: "cfi-step-1"))),
      Self.render("rsync", transport.rsyncArgv(push, to: target)),
      Self.render("rsync of a checked store tree (\(checked.source.how ?? ""))", transport.rsyncArgv(checked, to: target)),
      Self.render("rsync from the host (fetch)", transport.rsyncArgv(pull, from: target)),
    ].joined(separator: "\n")
    let path = Self.directory + "/ssh-rsync.golden"
    if ProcessInfo.processInfo.environment["CFI_RECORD"] == "1" {
      if (try? String(contentsOfFile: path, encoding: .utf8)) != text {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        Issue.record("recorded ssh-rsync.golden; run again without CFI_RECORD")
      }
      return
    }
    #expect((try? String(contentsOfFile: path, encoding: .utf8)) == text, "argv differs from ssh-rsync.golden:\n\(text)")
    // The secret reaches the command on stdin only.
    #expect(!String(decoding: MuxSession.request(command.wrapped(tag: "t")), as: UTF8.self).contains("hunter2"))
    #expect(!transport.rsyncArgv(push, to: target).contains { $0.contains("hunter2") })
  }

  @Test func everyDestinationFollowsDoubleDash() throws {
    let transport = Self.transport()
    let target = try SSHTarget(Self.host)
    let ssh = transport.masterArgv(target, connectTimeout: .seconds(5))
    #expect(Array(ssh.suffix(2)) == ["--", "fd00::1"])
    let rsync = transport.rsyncArgv(Push(source: "/a/", destination: "/b/", options: []), to: target)
    #expect(Array(rsync.suffix(3)) == ["--", "/a/", "[fd00::1]:/b/"])
    let pull = transport.rsyncArgv(Pull(source: "/a", destination: "/b/", options: []), from: target)
    #expect(Array(pull.suffix(3)) == ["--", "[fd00::1]:/a", "/b/"])
    // rsync appends the address after its -e command: that command ends in `--` too.
    #expect(Self.rsyncSplit(transport.rsyncShell(for: target, connectTimeout: .seconds(5)))?.last == "--")
  }

  @Test func rsyncShellRoundTripsThroughRsyncsSplitter() throws {
    let transport = Self.transport()
    let target = try SSHTarget(Self.host)
    let words = ["ssh"] + transport.sshOptions(for: target, connectTimeout: .seconds(5)) + ["-o", "ControlMaster=no", "--"]
    #expect(Self.rsyncSplit(transport.rsyncShell(for: target, connectTimeout: .seconds(5))) == words)
    let odd = ["", "'", "''", "\"", "a b", "a\\b", "\\'", "x'y\"z", "  ", "-", "tab\there"]
    #expect(Self.rsyncSplit(ShellQuote.rsyncShell(odd)) == odd)
  }

  /// The same, by rsync itself: an `ssh` first on PATH that writes down its arguments.
  @Test func rsyncItselfSplitsTheShellIntoOurWords() async throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cfi-argv-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    try "#!/bin/sh\nprintf '%s\\n' \"$@\" >\"$(dirname \"$0\")/argv\"\nexit 1\n".write(
      toFile: directory + "/ssh", atomically: true, encoding: .utf8)
    try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory + "/ssh")
    let transport = Self.transport()
    let target = try SSHTarget(Self.host)
    let argv = transport.rsyncArgv(Push(source: directory + "/ssh", destination: "/x", options: ["--protect-args"]), to: target)
    _ = try await LocalProcess.run("sh", ["-c", "PATH=\"$1:$PATH\"; shift; exec \"$@\"", "sh", directory] + argv)
    let received = try String(contentsOfFile: directory + "/argv", encoding: .utf8).split(separator: "\n").map(String.init)
    let expected = transport.sshOptions(for: target, connectTimeout: .seconds(10)) + ["-o", "ControlMaster=no", "--", "fd00::1", "rsync"]
    #expect(Array(received.prefix(expected.count)) == expected)
  }

  @Test func hostDerivedValuesAreValidated() {
    // A name or address that would read as an option cannot even make a Host.
    let names = ["-oProxyCommand=x", "pc 01", ".pc01"]
    #expect(names.allSatisfy { HostName($0) == nil })
    let addresses = ["-V", "10.0.0.1 -x", "[::1]"]
    #expect(addresses.allSatisfy { HostAddress($0) == nil })
    #expect(throws: SSHTarget.Invalid.self) { try SSHTarget(Host(name: "pc01", user: "-x")) }
    #expect(throws: SSHTarget.Invalid.self) { try SSHTarget(Host(name: "pc01", port: 70000)) }
    #expect(throws: Never.self) { try SSHTarget(Host(name: "pc01", address: "10.0.0.1", port: 22, user: "root")) }
  }

  /// rsync's own splitting of its `-e` command (main.c, `do_cmd`): words are separated by
  /// spaces outside quotes; `'` or `"` opens a quote that the same character closes, and
  /// inside it that character doubled stands for itself; nothing else is special (no
  /// backslash escapes). An unterminated quote is an error (nil here).
  static func rsyncSplit(_ command: String) -> [String]? {
    var words: [String] = []
    let characters = Array(command)
    var index = 0
    while index < characters.count {
      if characters[index] == " " {
        index += 1
        continue
      }
      var word = ""
      var quote: Character?
      while index < characters.count, characters[index] != " " || quote != nil {
        let character = characters[index]
        if character == "'" || character == "\"" {
          if quote == nil {
            quote = character
            index += 1
            continue
          }
          if character == quote {
            index += 1
            if index < characters.count, characters[index] == quote {
              word.append(character)
              index += 1
            } else {
              quote = nil
            }
            continue
          }
        }
        word.append(character)
        index += 1
      }
      if quote != nil { return nil }
      words.append(word)
    }
    return words
  }
}

/// The fields of a mux "new session" request, one a line, read back by PROTOCOL.mux's layout.
enum MuxRequestDecoding {
  static func describe(_ packet: [UInt8]) -> String {
    var offset = 0
    func word() -> UInt32 {
      defer { offset += 4 }
      return packet[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
    }
    func string() -> String {
      let length = Int(word())
      defer { offset += length }
      return String(decoding: packet[offset..<offset + length], as: UTF8.self)
    }
    let length = word()
    var lines = ["length " + String(length) + (Int(length) == packet.count - 4 ? " (the rest of the packet)" : " (WRONG)")]
    lines.append("type 0x" + String(word(), radix: 16))
    lines.append("request id \(word())")
    lines.append("reserved '\(string())'")
    for field in ["tty", "x11 forwarding", "agent forwarding", "subsystem"] { lines.append("\(field) \(word())") }
    lines.append("escape char 0x" + String(word(), radix: 16))
    lines.append("terminal '\(string())'")
    lines.append("command " + string())
    lines.append(offset == packet.count ? "(no environment, end of packet)" : "(\(packet.count - offset) more bytes)")
    return lines.joined(separator: "\n") + "\n"
  }
}
