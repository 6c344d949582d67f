// `--output-dir DIR`: each host's output of each step in files of its own (pssh's -o), for
// outputs too long to read grouped on a terminal:
//   DIR/pc01/steps          one line per step: number, status, where, the step as written
//   DIR/pc01/03.stdout      the third step's standard output on pc01 (when it wrote any)
//   DIR/pc01/03.stderr      …and its standard error
//   DIR/pc01/03.diff        …and what it changed (--diff)
// Crypt hashes are redacted, as in the audit log. Files are root's alone (0600, in 0700
// directories): outputs may hold what only root may read on the hosts.

import Foundation
import Runtime
import Synchronization

final class OutputDirectory: EventSink {
  let root: String
  /// Per host: how many steps it has finished in this run.
  private let counts = Mutex<[HostName: Int]>([:])
  /// The first write that failed, said once.
  private let failure = Mutex<String?>(nil)

  /// Creates `root` if needed; throws when it cannot be.
  init(root: String) throws {
    self.root = root
    try FileManager.default.createDirectory(
      atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
  }

  func emit(_ event: Event) {
    guard case .stepFinished(let step, let host, let result) = event else { return }
    let number = counts.withLock { counts in
      counts[host.name, default: 0] += 1
      return counts[host.name]!
    }
    let directory = root + "/" + host.name.rawValue
    let prefix = directory + "/" + String(format: "%02d", number)
    let line = "\(String(format: "%02d", number)) \(result.status.rawValue) \(step.location) \(step.label)\n"
    do {
      try FileManager.default.createDirectory(
        atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
      try append(line, to: directory + "/steps")
      if !result.output.isEmpty { try write(result.output, to: prefix + ".stdout") }
      if !result.errorOutput.isEmpty { try write(result.errorOutput, to: prefix + ".stderr") }
      if let diff = result.diff { try write(diff, to: prefix + ".diff") }
    } catch {
      let first = failure.withLock { failure in
        defer { failure = failure ?? "\(error)" }
        return failure == nil
      }
      if first { Stream.standardError.write("cfi-sh: --output-dir \(root): \(error.localizedDescription)\n") }
    }
  }

  private func write(_ text: String, to path: String) throws {
    let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
    try put(text, descriptor, path)
  }

  private func append(_ text: String, to path: String) throws {
    let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0o600)
    try put(text, descriptor, path)
  }

  private func put(_ text: String, _ descriptor: Int32, _ path: String) throws {
    guard descriptor >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    defer { close(descriptor) }
    let data = Data(Secret.redactingHashes(in: text).utf8)
    let written = data.withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress, $0.count) }
    if written != data.count { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
  }
}
