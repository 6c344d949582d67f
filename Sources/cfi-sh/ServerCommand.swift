// `cfi-sh server`: the server's own set-up.

import ArgumentParser
import Foundation
import Runtime

struct ServerCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "server",
    abstract: "Set up the cfi server.",
    subcommands: [Initialize.self])

  struct Initialize: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "init",
      abstract: "Create the server's ssh key, if it does not exist yet.",
      discussion: """
        The key (ed25519: it fits an mDNS TXT record, an RSA key does not) is what clients put
        in root's authorized_keys. Running it again keeps the existing key.
        """)

    @Option(help: ArgumentHelp("Where the private key goes.", valueName: "file"))
    var key: String = SSHConfiguration.defaultIdentityFile

    func run() async throws {
      let manager = FileManager.default
      if !manager.fileExists(atPath: key) {
        try manager.createDirectory(
          atPath: (key as NSString).deletingLastPathComponent, withIntermediateDirectories: true,
          attributes: [.posixPermissions: 0o755])
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, name.count)
        let hostname = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        try runTool("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "cfi-server@\(hostname)", "-f", key])
        print("created \(key)")
      } else {
        print("keeping \(key)")
      }
      let fingerprint = try runTool("/usr/bin/ssh-keygen", ["-l", "-E", "sha256", "-f", key + ".pub"])
      print("public key: \(key).pub")
      print("fingerprint: \(fingerprint.split(separator: " ").dropFirst().first ?? "?")")
    }

    @discardableResult
    private func runTool(_ path: String, _ arguments: [String]) throws -> String {
      let process = Process()
      process.executableURL = URL(fileURLWithPath: path)
      process.arguments = arguments
      let output = Pipe()
      process.standardOutput = output
      try process.run()
      let data = output.fileHandleForReading.readDataToEndOfFile()
      process.waitUntilExit()
      guard process.terminationStatus == 0 else {
        throw ValidationError("\(path) \(arguments.joined(separator: " ")) failed")
      }
      return String(decoding: data, as: UTF8.self)
    }
  }
}
