// The interactive shell on a real fleet, driven through a pseudo-terminal like a person at a
// keyboard: multi-line blocks, errors that leave the session up, completion, the default
// target, :failed and :rerun, :log, Ctrl-C during a long command, history and :save.

import Foundation
import TestSupport
import Testing

extension Lab {
  /// Starts the REPL on this lab (no discovery unless asked: the client list names the hosts).
  func repl(history: String, arguments: [String] = ["--no-discovery"], environment: [String: String] = [:]) throws
    -> PseudoTerminal
  {
    try PseudoTerminal(
      Command.binary,
      arguments: ["-i", inventory, "--identity", key, "--store", store.path, "--audit-log", auditLog] + arguments,
      environment: environment.merging(["CFI_HISTORY": history]) { $1 })
  }
}

@Suite(.serialized, .enabled(if: fleetAvailable, "fleet tests need root"))
struct ReplFleetTests {
  @Test func blocksErrorsCompletionAndTheDefaultTarget() throws {
    let lab = try Lab("replbasic")  // lab: pc[01-03], office: pc[04-06]
    try lab.storeFile("lab/etc/motd.d/cfi", "hello\n")
    let runbook = lab.store.path + "/helpers.cfi"
    try "def mark(word) < run \"echo $word > /root/mark\" >\n".write(toFile: runbook, atomically: true, encoding: .utf8)
    let repl = try lab.repl(history: lab.store.path + "/history")
    defer { repl.terminate() }
    try repl.expect("cfi> ")

    // Variables live on; an open block continues on the next line.
    repl.sendLine(#"let greeting = "hi""#)
    try repl.expect("cfi> ")
    repl.sendLine("on group lab <")
    try repl.expect("... ")
    repl.sendLine(#"  run "echo $greeting from ${host.name}""#)
    try repl.expect("... ")
    repl.sendLine(">")
    let block = try repl.expect("recap")
    #expect(block.contains("pc01 (1)  ok  hi from pc01"))
    try repl.expect("ok: pc[01-03] (3)")
    try repl.expect("cfi> ")

    // A syntax error points into what was typed, and the session goes on.
    repl.sendLine(#"on group lab < run "x" 42 >"#)
    let error = try repl.expect("^~~")
    #expect(error.contains("<input 3>:1:"))
    #expect(error.contains("error:"))
    repl.sendLine(#"print "still" greeting"#)
    try repl.expect("still hi")

    // Completion: a group name, a host name (with the groups' folded patterns), a store path.
    // Each: type with Tab, see the completion, drop the line with Ctrl-C.
    for (typed, shown) in [
      ("on group off\t", "on group office "), ("on host pc\t\t", "pc[01-03]"),
      ("on group lab < copy \"etc/mo\t", "etc/motd.d/"),
    ] {
      repl.send(typed)
      try repl.expect(shown)
      repl.interrupt()
      try repl.expect("cfi> ")
    }

    // A default target: bare actions run there; the prompt says where.
    repl.sendLine(":target @office")
    try repl.expect("cfi office> ")
    repl.sendLine(#"run "touch /root/bare""#)
    let bare = try repl.expect("recap")
    #expect(bare.contains("on host @office (3 hosts: pc[04-06])"))
    try repl.expect("cfi office> ")
    #expect(try lab.exec("pc05", "test -e /root/bare").status == 0)
    #expect(try lab.exec("pc01", "test -e /root/bare").status != 0)

    // :load runs a file in the session; its defs stay.
    repl.sendLine(":load \(runbook)")
    try repl.expect("cfi office> ")
    repl.sendLine(#"mark("loaded")"#)
    try repl.expect("recap")
    #expect(try lab.read("pc04", "cat /root/mark") == "loaded")

    repl.sendLine(":quit")
    #expect(try repl.waitForExit() == 0)
  }

  @Test func failedHostsBecomeTheTargetAndRerunReachesThem() throws {
    let lab = try Lab("replrerun", hosts: 4)
    try lab.stopSSHD("pc02")
    let repl = try lab.repl(history: lab.store.path + "/history", arguments: ["--no-discovery", "--connect-timeout", "3s"])
    defer { repl.terminate() }
    try repl.expect("cfi> ")
    repl.sendLine(#"on group lab < run "touch /root/done" >"#)
    let first = try repl.expect("recap")
    #expect(first.contains("UNREACHABLE"))
    try repl.expect("cfi> ")
    repl.sendLine(":last")
    try repl.expect("pc02 (1)  unreachable")
    repl.sendLine(":failed")
    try repl.expect("cfi pc02> ")
    try lab.lab("start-sshd", "pc02")
    repl.sendLine(":rerun")
    let rerun = try repl.expect("recap")
    #expect(rerun.contains("on host pc02 (1 host: pc02)"))
    try repl.expect("ok: pc02 (1)")
    #expect(try lab.exec("pc02", "test -e /root/done").status == 0)
    // The session's entries are in the store's run history.
    repl.sendLine(":log")
    try repl.expect("RUNBOOK")
    repl.sendLine(":log pc02")
    try repl.expect("unreachable  -     refused")
    repl.sendLine(":log last")
    try repl.expect("recap ok: pc02 (1)")
    try repl.expect("cfi pc02> ")
    repl.endOfInput()
    #expect(try repl.waitForExit() == 0)
  }

  @Test func ctrlCStopsTheRunningEntryAndTheShellStays() throws {
    let lab = try Lab("replintr", hosts: 3)
    let repl = try lab.repl(history: lab.store.path + "/history")
    defer { repl.terminate() }
    try repl.expect("cfi> ")
    repl.sendLine(#"on all < run "sleep 30" >"#)
    // Wait until the remote sleeps run, so the interrupt has something to stop (a watchdog far
    // under the sleep's 30 s: an interrupt after they ended would stop nothing).
    try waitUntil("the remote sleeps run", within: .seconds(20)) {
      try lab.hosts.allSatisfy { try lab.exec($0, "pgrep -f '^sleep 30$'").status == 0 }
    }
    let started = ContinuousClock.now
    repl.interrupt()
    // Far less than the sleep's 30 s: the entry was stopped, not waited for.
    try repl.expect("recap interrupted: pc[01-03] (3)", timeout: .seconds(10))
    try repl.expect("cfi> ", timeout: .seconds(10))
    print("REPL: prompt back \(ContinuousClock.now - started) after Ctrl-C")
    for host in lab.hosts {
      #expect(try lab.exec(host, "pgrep -f '^sleep 30$'").status != 0, "the sleep on \(host) is still running")
    }
    repl.sendLine(#"print "alive""#)
    try repl.expect("alive")
    // Ctrl-C at the prompt clears the line; the shell stays.
    repl.send("half a line")
    // Only once the line editor has the text (echoed): a Ctrl-C that overtakes the typing
    // would clear a line still arriving, and its rest would start the next one.
    try repl.expect("half a line")
    repl.interrupt()
    try repl.expect("cfi> ")
    repl.sendLine(#"on host pc01 < run "echo again" >"#)
    try repl.expect("ok  again")
    repl.sendLine(":quit")
    #expect(try repl.waitForExit() == 0)
  }

  @Test func historyAndSavedRunbooksNeverHoldTheHash() throws {
    let lab = try Lab("replsave", hosts: 3, groups: ["lab"])
    let hash = try shell(["/usr/bin/openssl", "passwd", "-6", "-salt", "replsalt", "secret"]).stdout
      .trimmingCharacters(in: .whitespacesAndNewlines)
    let history = lab.store.path + "/history"
    let saved = lab.store.path + "/saved.cfi"
    let repl = try lab.repl(history: history)
    defer { repl.terminate() }
    try repl.expect("cfi> ")
    repl.sendLine("let root_hash = '\(hash)'")
    try repl.expect("cfi> ")
    repl.sendLine(":target @lab")
    try repl.expect("cfi lab> ")
    repl.sendLine("password root root_hash")
    try repl.expect("changed: pc[01-03] (3)")
    repl.sendLine(#"run "echo saved > /root/saved""#)
    try repl.expect("recap")
    repl.sendLine(#"on group lab < run "false" >"#)  // fails everywhere: not saved
    try repl.expect("recap")
    repl.sendLine(":save \(saved)")
    try repl.expect("saved 3 entries")
    repl.endOfInput()
    #expect(try repl.waitForExit() == 0)

    let historyText = try String(contentsOfFile: history, encoding: .utf8)
    #expect(!historyText.contains(hash))
    #expect(historyText.contains("let root_hash = '<redacted>'"))
    let savedText = try String(contentsOfFile: saved, encoding: .utf8)
    #expect(!savedText.contains(hash))
    #expect(!savedText.contains("run \"false\""))
    #expect(try lab.cfi(["-n", saved]).status == 0)
    let audit = try String(contentsOfFile: lab.auditLog, encoding: .utf8)
    #expect(!audit.contains(hash))
    #expect(audit.contains(#""runbook":"cfi-sh session: on host @lab < password root root_hash >""#))

    // The saved runbook does the same again, with the hash from the environment.
    for host in lab.hosts {
      try lab.exec(host, "usermod -p '*' root && rm -f /root/saved")
    }
    let missing = try lab.cfi([saved])
    #expect(missing.status == 1)
    #expect(missing.stderr.contains("set CFI_HASH_1"))
    let again = try Command.run(
      ["-i", lab.inventory, "--identity", lab.key, "--store", lab.store.path, "--audit-log", lab.auditLog, saved],
      environment: ["CFI_HASH_1": hash])
    #expect(again.status == 0, "\(again.stdout)\(again.stderr)")
    for host in ["pc01", "pc02", "pc03"] {
      #expect(try lab.read(host, "getent shadow root | cut -d: -f2") == hash)
      #expect(try lab.read(host, "cat /root/saved") == "saved")
    }
  }

  @Test func metaCommandsShowAndSteerTheSession() throws {
    let lab = try Lab("replmeta", hosts: 4, labOptions: ["--group-of", "pc04=unknown"])
    try lab.exec("pc04", "rm -f /root/probe")
    // Discovery on: the lab's server-side avahi, which sees the hosts' announcements.
    let repl = try lab.repl(history: "", arguments: [], environment: ["DBUS_SYSTEM_BUS_ADDRESS": lab.dbus])
    defer { repl.terminate() }
    try repl.expect("cfi> ")
    repl.sendLine(":hosts @lab")
    let hosts = try repl.expect("cfi> ")
    #expect(hosts.contains("NAME"))
    #expect(hosts.contains("pc01") && hosts.contains("pc02") && !hosts.contains("pc03"))
    repl.sendLine(":groups")
    let groups = try repl.expect("cfi> ")
    #expect(groups.contains("lab (2)"))
    #expect(groups.contains("pc[01-02]"))
    repl.sendLine(":discover")
    try repl.expect("announcing")
    try repl.expect("cfi> ")
    // A group the session defines lists its hosts too, also one nothing else knows.
    repl.sendLine("group pair = pc03, spare1")
    try repl.expect("cfi> ")
    repl.sendLine(":hosts @pair")
    let pair = try repl.expect("cfi> ")
    #expect(pair.contains("pc03") && pair.contains("spare1") && !pair.contains("pc01"), "\(pair)")
    // A bare action without a target says how to give one.
    repl.sendLine(#"run "true""#)
    try repl.expect("hint: ':target @GROUP'")

    // Check mode: reported, nothing changed.
    repl.sendLine(":check on")
    try repl.expect("check mode is on")
    repl.sendLine(#"on all < run "touch /root/probe" >"#)
    try repl.expect("recap")
    try repl.expect("cfi (check)> ")
    #expect(try lab.exec("pc04", "test -e /root/probe").status != 0)
    repl.sendLine(":check off")
    try repl.expect("check mode is off")

    // Settings: shown, and set like `set`.
    repl.sendLine(":set parallel 2")
    try repl.expect("cfi> ")
    repl.sendLine(":set")
    let settings = try repl.expect("check = off")
    #expect(settings.contains("parallel = 2"))
    repl.sendLine(":set nonsense 1")
    try repl.expect("unknown setting")

    // Mistyped commands get a suggestion; a bad target is an error and changes nothing.
    repl.sendLine(":grops")
    try repl.expect("did you mean ':groups'?")
    repl.sendLine(":target pc[05-01]")
    try repl.expect("reversed")
    repl.sendLine(":target")
    try repl.expect("no target")
    repl.sendLine(":rerun")
    try repl.expect("touch /root/probe")
    try repl.expect("recap")
    #expect(try lab.exec("pc04", "test -e /root/probe").status == 0)
    repl.sendLine(":quit")
    #expect(try repl.waitForExit() == 0)
  }
}
