// `cfi-sh client …` without a lab: usage errors, and the rendering of Runtime's reports for
// files in a temporary directory (no server is found here: nothing announces one).

import Foundation
import TestSupport
import Testing

@Suite struct ClientCommandTests {
  @Test(arguments: ["--group=-lab", "--group=a b", "--group=" + String(repeating: "g", count: 65)])
  func aGroupTheServerWouldNotUseIsAUsageError(_ option: String) throws {
    let result = try Command.run(["client", "enroll", option, "--services-dir", "/nonexistent-cfi-services"])
    #expect(result.status == 64, "\(result.stderr)")
    #expect(result.stderr.contains("is not a valid group name (1 to 64 letters, digits, '-' or '_', not starting with '-')"))
  }

  @Test func leaveAndStatusRenderTheirReports() throws {
    let directory = try TemporaryDirectory()
    let files = [
      "--services-dir", directory.path + "/avahi", "--authorized-keys", directory.path + "/authorized_keys",
      "--pin-file", directory.path + "/server.pin",
    ]
    func shown(_ text: String) -> String { text.replacingOccurrences(of: directory.path, with: "<dir>") }

    let enroll = try Command.run(["client", "enroll", "--group", "lab", "--port", "2222", "--wait", "1s"] + files)
    #expect(enroll.status == 3, "no server here: \(enroll.stderr)")
    #expect(
      shown(enroll.stdout)
        == "published: _cfi._tcp port 2222, group lab (wrote <dir>/avahi/cfi.service; not reloading avahi-daemon for <dir>/avahi)\n")
    #expect(enroll.stderr.contains("this client is published"))

    let status = try Command.run(["client", "status", "--wait", "1s"] + files)
    #expect(status.status == 0)
    #expect(
      shown(status.stdout).hasPrefix(
        """
        published: yes, _cfi._tcp port 2222, group lab (<dir>/avahi/cfi.service)
        pin: none (no <dir>/server.pin)
        authorized_keys: no server key in <dir>/authorized_keys
        server: 
        """), "\(status.stdout)")

    let leave = try Command.run(["client", "leave"] + files)
    #expect(leave.status == 0)
    #expect(
      shown(leave.stdout) == """
        published: removed <dir>/avahi/cfi.service (not reloading avahi-daemon for <dir>/avahi)
        authorized_keys: no server key in <dir>/authorized_keys
        pin: none (no <dir>/server.pin)
        left (changed)

        """)
    #expect(try Command.run(["client", "leave"] + files).stdout.hasSuffix("left (nothing to do)\n"))
  }
}
