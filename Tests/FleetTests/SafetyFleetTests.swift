// What a run must never do, whatever it is given or whatever stops it: let a string change
// the commands a host runs (injection), show a password hash to anyone on the server or the
// hosts (command lines, logs, output, history), or leave a half-written file or rsync's
// temporary files after an interrupted push. Random cases are seeded; the seed is printed
// (CFI_TEST_SEED replays it).

import Foundation
import Synchronization
import TestSupport
import Testing

@Suite(.serialized, .enabled(if: fleetAvailable, "fleet tests need root"))
struct SafetyFleetTests {
  /// The fleet variant of `InjectionTests` (CFIScriptTests): fewer strings, over real ssh,
  /// where the command line passes ssh and the host's login shell too.
  @Test func hostileStringsComeBackByteIdenticalOverSSH() throws {
    let lab = try Lab("safeinject", hosts: 5, groups: ["lab"])
    let seed = SeededRandom.testSeed()
    print("injection (ssh): seed \(seed) (CFI_TEST_SEED=\(seed) replays it)")
    let strings = InjectionCorpus.strings(count: 1_000, seed: seed)
    try lab.storeFile("lab/\(InjectionCorpus.scriptName)", InjectionCorpus.scriptBody, mode: 0o755)
    let runbook = try lab.storeFile("injection.cfi", InjectionCorpus.runbook(strings, batch: 100))
    let result = try lab.cfi(["--json", runbook])
    try #require(result.status == 0, "seed \(seed): \(result.stderr)")
    for host in lab.hosts {
      let ran = steps(result).filter { $0["host"] as? String == host }
      for kind in ["run", "script"] {
        let outputs = ran.filter { ($0["step"] as? String)?.hasPrefix(kind + " ") == true }.map { $0["stdout"] as? String ?? "" }
        let mismatches = InjectionCorpus.mismatches(sent: strings, received: InjectionCorpus.decode(outputs))
        #expect(mismatches.isEmpty, "seed \(seed), \(host), through \(kind):\n\(mismatches)")
      }
    }
  }

  /// A hash set with `password` and one inside a longer string of a `run` (interpolated, and
  /// written literally) reach the hosts, and never a command line on the server or a host
  /// (sampled all through the runs), the audit log, `--json`, text at `-v`, or REPL history.
  @Test func aPasswordHashIsNeverOnACommandLineOrInAnyOutput() throws {
    let lab = try Lab("safehash", hosts: 10, groups: ["lab"])
    // No `/` in it: JSON may write `/` as `\/`, and the digest alone is searched for too.
    let hash = "$6$cfiSafeD$hOM82T.X2hfUrtyrm9JWZOCZfFkadv3M5AJ5gxvKObV5tpbKKrIC6G2nHQW2XA1giov.mM6WbooU9gcKw18Ls."
    let needles = [hash, String(hash.split(separator: "$").last!.prefix(24))]
    // From a file: a runbook given with -c would be on cfi-sh's own command line.
    let runbook = try lab.storeFile(
      "hash.cfi",
      """
      let hash = '\(hash)'
      let s = "user:$hash"
      on all <
        password root hash
        run "printf %s '$s' > /root/s; sleep 1"
        run 'printf %s \\'user:\(hash)\\' > /root/literal; sleep 1'
      >

      """, mode: 0o600)
    let watch = try CommandLineWatch(lab: lab, needles: needles)
    let json = try lab.cfi(["--json", runbook])
    let verbose = try lab.cfi(["-v", runbook])
    let repl = try lab.repl(history: lab.store.path + "/history")
    try repl.expect("cfi> ")
    repl.sendLine("let hash = '\(hash)'")
    try repl.expect("cfi> ")
    repl.sendLine(#"on all < run "printf %s 'user:$hash' > /root/repl" >"#)
    try repl.expect("recap")
    try repl.expect("cfi> ")
    repl.terminate()
    let seen = try watch.stop()

    #expect(json.status == 0, "\(json.stderr)")
    #expect(verbose.status == 0, "\(verbose.stderr)")
    for host in lab.hosts {
      #expect(try lab.read(host, "getent shadow root | cut -d: -f2") == hash)
      #expect(try lab.read(host, "cat /root/s; echo; cat /root/literal; echo; cat /root/repl") == "user:\(hash)\nuser:\(hash)\nuser:\(hash)")
    }
    #expect(seen.samples.values.allSatisfy { $0 > 0 }, "every host and the server were sampled: \(seen.samples)")
    #expect(seen.leaks.isEmpty, "the hash was on a command line: \(seen.leaks)")
    let history = try String(contentsOfFile: lab.store.path + "/history", encoding: .utf8)
    #expect(history.contains("<redacted>"), "the REPL wrote its history")
    let written = [
      ("the audit log", try String(contentsOfFile: lab.auditLog, encoding: .utf8)), ("--json output", json.stdout),
      ("--json errors", json.stderr), ("-v output", verbose.stdout), ("-v errors", verbose.stderr),
      ("the REPL history", history),
    ]
    for (name, text) in written {
      let lines = text.split(separator: "\n").filter { line in needles.contains { line.contains($0) } }
      #expect(lines.isEmpty, "the hash is in \(name): \(lines.prefix(3))")
    }
  }

  /// A push stopped at a random point, by killing cfi-sh and its children, the host's rsync,
  /// or the host's link, 20 times: each file on the host is its old or its new version, and
  /// the next good run leaves the new version, nothing of rsync's temporary files, and the
  /// modes of `/` and `/etc` as they were.
  @Test func anInterruptedPushLeavesTheOldOrTheNewFileAndNoTemporaryFile() throws {
    let lab = try Lab("safepush", hosts: 1, groups: ["lab"])
    let host = lab.hosts[0]
    let seed = SeededRandom.testSeed()
    print("interrupted pushes: seed \(seed) (CFI_TEST_SEED=\(seed) replays it)")
    var random = SeededRandom(seed: seed)
    let files = ["opt/cfisafe/big.bin", "etc/cfisafe/app.conf"]
    // The files' checksums, then everything in their directories (anything else there is a
    // leftover), then the modes of / and /etc: one look at the host.
    let look = "sha256sum /opt/cfisafe/big.bin /etc/cfisafe/app.conf | cut -d' ' -f1; "
      + "find /opt/cfisafe /etc/cfisafe -mindepth 1 | sort; stat -c %a / /etc"
    func state() throws -> (sums: [String], rest: [String]) {
      let lines = try lab.read(host, look).split(separator: "\n").map(String.init)
      return (Array(lines.prefix(2)), Array(lines.dropFirst(2)))
    }
    // rsync's I/O timeout (`set timeout`) bounds a push whose link went down.
    let runbook = #"set timeout = 3s; on all < copy "opt/cfisafe/big.bin"; copy "etc/cfisafe/app.conf" >"#
    func storeVersion(_ version: Int) throws -> [String] {
      var content = SeededRandom(seed: seed &+ UInt64(version))
      let words = (0..<(16 << 17)).map { _ in content.next() }  // 16 MiB
      try words.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: lab.store.path + "/lab/" + files[0])) }
      try lab.storeFile("lab/" + files[1], "version = \(version)\n")
      return try files.map { try sha256(lab.store.path + "/lab/" + $0) }
    }
    try FileManager.default.createDirectory(atPath: lab.store.path + "/lab/opt/cfisafe", withIntermediateDirectories: true)
    var old = try storeVersion(0)
    let clock = ContinuousClock()
    let started = clock.now
    let first = try lab.run(runbook)
    // How long a whole run takes here: the kills fall anywhere in it, and a little after.
    let window = (clock.now - started) * 1.2
    try #require(first.status == 0, "\(first.stderr)")
    let expected = try state().rest

    for round in 1...20 {
      let new = try storeVersion(round)
      let how = ["cfi-sh and its children", "the host's rsync", "the host's link"][Int.random(in: 0..<3, using: &random)]
      let delay = window * Double.random(in: 0...1, using: &random)
      // A directory of its own for this run's control sockets: what a killed cfi-sh leaves
      // (its masters) is found there and ended.
      let sockets = try TemporaryDirectory()
      let running = try lab.start(runbook, ["--connect-timeout", "3s"], environment: ["TMPDIR": sockets.path])
      // The delay only picks the point of the kill; nothing waits on it.
      Thread.sleep(forTimeInterval: delay / .seconds(1))
      switch how {
      case "cfi-sh and its children": killTree(running.processIdentifier)
      case "the host's rsync": try lab.exec(host, "for p in $(pgrep -x rsync); do kill -KILL $p; done")
      default: try lab.lab("unplug", host)
      }
      // The run ends within its bound: a connect timeout or rsync's I/O timeout (3 s), or, for
      // a command on a master whose link went down, ssh's liveness check (ServerAliveInterval 5
      // × ServerAliveCountMax 3, and one interval more). A watchdog at 3× that bound.
      let ended = waitUntil(seconds: 3 * (3 + 20)) { !running.isRunning }
      let stuck = ended ? [] : processTree(running.processIdentifier).map(commandLine)
      if !ended { killTree(running.processIdentifier) }
      let result = running.finish()
      #expect(ended, "round \(round) (seed \(seed)): the run did not end after \(how) stopped: \(stuck)")
      endMasters(under: sockets.path)
      if how == "the host's link" {
        try lab.lab("plug", host)
        // Back when the host answers: right after `plug`, a connect can still meet the
        // neighbour entry that failed while the link was down ("No route to host").
        #expect(waitUntil(seconds: 30) { (try? lab.lab("ssh", host, "true"))?.status == 0 }, "\(host) is back")
      }
      // The host's rsync ends on its own I/O timeout once its connection is gone.
      #expect(
        waitUntil(seconds: 3 * (3 + 20)) { (try? lab.read(host, "pgrep -x rsync || true")) == "" },
        "round \(round) (seed \(seed)): rsync still runs on \(host)")

      let context = "round \(round) (seed \(seed)), \(how) after \(delay), status \(result.status)"
      let interrupted = try state().sums
      for (index, file) in files.enumerated() {
        #expect(
          interrupted[index] == old[index] || interrupted[index] == new[index],
          "\(context): /\(file) is neither the old nor the new version")
      }
      let good = try lab.run(runbook, ["--json"])
      #expect(good.status == 0, "\(context): the next run failed: \(steps(good).map { $0["message"] ?? "" }) \(good.stderr)")
      let after = try state()
      #expect(after.sums == new, "\(context): the next run did not leave the new version")
      #expect(after.rest == expected, "\(context): leftovers, or / and /etc changed modes")
      // What the host has now: a failed round must not make the next one's check wrong too.
      old = after.sums
    }
  }
}

/// Watches every command line on the server and on each host of a lab for any of `needles`,
/// from `init` to `stop()`: on the server from a thread of this test, on each host from a
/// loop started inside it (the needles in a file there: a needle on the loop's own command
/// line would be found).
final class CommandLineWatch {
  /// The server's side, shared with the thread that samples.
  private final class Server: Sendable {
    struct State {
      var stopped = false
      var done = false
      var samples = 0
      var leaks: [String] = []
    }
    let state = Mutex(State())
  }
  private let lab: Lab
  private let server = Server()
  /// The loop on each host. The pause only spares the machine's two cores; the watch's result
  /// does not depend on it.
  private static let loop = """
    n=0
    while [ ! -e /tmp/cfi-watch-stop ]; do
      cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | grep -a -o -F -f /tmp/cfi-needles >>/tmp/cfi-leaks
      n=$((n+1)); echo $n >/tmp/cfi-samples; sleep 0.02
    done

    """

  init(lab: Lab, needles: [String]) throws {
    self.lab = lab
    let script = Command.packageRoot.appendingPathComponent("scripts/lab").path
    for host in lab.hosts {
      for (file, text) in [("cfi-needles", needles.joined(separator: "\n") + "\n"), ("cfi-watch.sh", Self.loop)] {
        try shell(["/bin/bash", script, "--prefix", lab.prefix, "exec", host, "sh", "-c", "cat >/tmp/\(file)"], stdin: text)
      }
      try lab.exec(host, "rm -f /tmp/cfi-watch-stop; : >/tmp/cfi-leaks; sh /tmp/cfi-watch.sh </dev/null >/dev/null 2>&1 &")
    }
    let needleBytes = needles.map { Data($0.utf8) }
    let ownNamespace = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/pid")
    Thread.detachNewThread { [server] in
      while !server.state.withLock({ $0.stopped }) {
        var found: [String] = []
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.filter { Int($0) != nil } ?? []
        for pid in pids {
          guard let line = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { continue }
          if needleBytes.contains(where: { line.range(of: $0) != nil }) {
            let name = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? "?"
            // The hosts' pid namespaces are below the server's: their processes show here too.
            let place = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/pid")) == ownNamespace
              ? "server" : "a host"
            found.append("\(place): \(name.trimmingCharacters(in: .newlines)) (pid \(pid))")
          }
        }
        server.state.withLock {
          $0.samples += 1
          for leak in found where !$0.leaks.contains(leak) { $0.leaks.append(leak) }
        }
        Thread.sleep(forTimeInterval: 0.005)
      }
      server.state.withLock { $0.done = true }
    }
  }

  /// Stops watching; samples taken per place (the server and each host) and what was found.
  func stop() throws -> (samples: [String: Int], leaks: [String]) {
    server.state.withLock { $0.stopped = true }
    _ = waitUntil(seconds: 10) { server.state.withLock { $0.done } }
    var samples = ["server": server.state.withLock { $0.samples }]
    var leaks = server.state.withLock { $0.leaks }
    for host in lab.hosts {
      try lab.exec(host, "touch /tmp/cfi-watch-stop")
      samples[host] = Int(try lab.read(host, "cat /tmp/cfi-samples 2>/dev/null || echo 0")) ?? 0
      leaks += try lab.read(host, "cat /tmp/cfi-leaks").split(separator: "\n").map { "\(host): \($0)" }
    }
    return (samples, leaks)
  }
}

/// Waits until `condition` holds, checking every 50 ms, for at most `seconds`; whether it held.
func waitUntil(seconds: Double, _ condition: () -> Bool) -> Bool {
  let deadline = Date().addingTimeInterval(seconds)
  while !condition() {
    if Date() > deadline { return false }
    Thread.sleep(forTimeInterval: 0.05)
  }
  return true
}

/// SIGKILL for `pid` and every process below it, as a crash of the machine's side would end
/// them: stopped first, so that it starts nothing while its children are collected.
func killTree(_ pid: Int32) {
  kill(pid, SIGSTOP)
  for member in processTree(pid) { kill(member, SIGKILL) }
}

/// `pid` and every process below it.
func processTree(_ pid: Int32) -> [Int32] {
  var parents: [Int32: Int32] = [:]
  for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
    guard let child = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
      let close = stat.lastIndex(of: ")")
    else { continue }
    // After the command's name (which may hold spaces and parentheses): state, then the parent.
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    if fields.count > 1, let parent = Int32(fields[1]) { parents[child] = parent }
  }
  var tree = [pid]
  var index = 0
  while index < tree.count {
    tree += parents.filter { $0.value == tree[index] }.map(\.key)
    index += 1
  }
  return tree
}

/// A process's command line, for a message.
func commandLine(_ pid: Int32) -> String {
  let line = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data()
  return "\(pid): " + String(decoding: line.map { $0 == 0 ? UInt8(ascii: " ") : $0 }, as: UTF8.self)
}

/// Ends the ssh masters whose control sockets are under `directory` (a killed cfi-sh could not
/// close them), by their process ids.
func endMasters(under directory: String) {
  for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
    guard let pid = Int32(entry), let line = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline"),
      line.range(of: Data(directory.utf8)) != nil
    else { continue }
    kill(pid, SIGKILL)
  }
}

/// The SHA-256 of a file on this machine, as sha256sum prints it.
func sha256(_ path: String) throws -> String {
  String(try shell(["/usr/bin/sha256sum", path]).stdout.prefix(64))
}
