// Interpreter tests: scopes, host fields, control flow, defs, includes and built-ins.

import CFIScript
import CFISyntax
import Runtime
import Testing

@Suite("Interpreter: scopes and control flow")
struct InterpreterScopingTests {
  @Test func letRunGivesEachHostItsOwnValue() async throws {
    let outcome = try await run(
      """
      on group lab <
        let k = run "uname -r"
        run "echo $k"
      >
      """,
      responder: commandResponder { command, host in
        command == "uname -r" ? StepResult(status: .ok, output: "  6.1-\(host.name)\n") : nil
      })
    for host in labHosts {
      #expect(outcome.commands(on: host) == ["uname -r", "echo 6.1-\(host)"])
    }
    #expect(outcome.touchedHosts == labHosts)
    #expect(outcome.statuses == Dictionary(uniqueKeysWithValues: labHosts.map { ($0, StepStatus.ok) }))
    #expect(outcome.executor.shutdownCount == 1)
  }

  @Test func letInsideOnShadowsWithoutTouchingGlobals() async throws {
    let outcome = try await run(
      """
      let x = "global"
      on host pc01, pc02 <
        if host.name == "pc01" < let x = "mine" >
        run "one $x"
      >
      on host pc01 < run "two $x" >
      print x
      """)
    #expect(outcome.commands(on: "pc01") == ["one mine", "two global"])
    #expect(outcome.commands(on: "pc02") == ["one global"])
    #expect(outcome.log.messages == ["global"])
  }

  @Test func letOnOneHostIsNotVisibleOnAnother() async throws {
    let outcome = try await run(
      """
      on host pc01, pc02 <
        if host.name == "pc01" < let y = "only-pc01" >
        run "echo ${y}"
      >
      """)
    #expect(outcome.commands(on: "pc01") == ["echo only-pc01"])
    #expect(outcome.commands(on: "pc02") == [])
    #expect(outcome.statuses == ["pc01": .ok, "pc02": .failed])
    let message = try #require(outcome.message(of: "pc02"))
    #expect(message.hasSuffix("/main.cfi:3:15: variable 'y' is not set here"))
  }

  @Test func hostFieldsAreBoundInsideOn() async throws {
    let outcome = try await run(
      """
      on host pc03, desk2 <
        run "${host.name} ${host.group} ${host.address}"
        run host.name
      >
      """)
    #expect(outcome.commands(on: "pc03") == ["pc03 lab 10.0.0.3", "pc03"])
    #expect(outcome.commands(on: "desk2") == ["desk2 office desk2", "desk2"])
  }

  @Test func globalsAndLoopVariablesAreReadableInsideOn() async throws {
    let outcome = try await run(
      """
      let packages = ["a", "b"]
      for g in ["lab", "office"] <
        on group "$g" except pc[02-08], desk[2-10] <
          for p in packages < run "$g $p ${host.name}" >
        >
      >
      print g
      """)
    #expect(outcome.touchedHosts == ["desk1", "pc01"])
    #expect(outcome.commands(on: "pc01") == ["lab a pc01", "lab b pc01"])
    #expect(outcome.commands(on: "desk1") == ["office a desk1", "office b desk1"])
    // A top-level loop variable is a global: it keeps its last value.
    #expect(outcome.log.messages == ["office"])
  }

  @Test func ifElseChoosesPerHost() async throws {
    let outcome = try await run(
      """
      on all <
        if host.name in ["pc01", "desk1"] < run "first" >
        else if host.group == "lab" < install "gcc" >
        else < install "libreoffice" >
        if not (host.group != "lab") and host.name != "pc08" < run "lab-not-pc08" >
      >
      """)
    #expect(outcome.executor.calls(on: "pc01") == [.run(command: "first"), .run(command: "lab-not-pc08")])
    #expect(outcome.executor.calls(on: "desk1") == [.run(command: "first")])
    #expect(outcome.executor.calls(on: "pc05") == [.install(packages: ["gcc"]), .run(command: "lab-not-pc08")])
    #expect(outcome.executor.calls(on: "pc08") == [.install(packages: ["gcc"])])
    #expect(outcome.executor.calls(on: "desk10") == [.install(packages: ["libreoffice"])])
  }

  @Test func defWithParametersRunsOnTheCallingHost() async throws {
    let outcome = try await run(
      """
      let base = "/opt"
      def setup(package, dir) <
        install package
        run "mkdir -p $base/$dir/${host.name}"
      >
      on host pc01, desk1 <
        setup("vim", "tools")
        setup(["a", "b"], host.group)
      >
      """)
    #expect(
      outcome.executor.calls(on: "pc01") == [
        .install(packages: ["vim"]), .run(command: "mkdir -p /opt/tools/pc01"),
        .install(packages: ["a", "b"]), .run(command: "mkdir -p /opt/lab/pc01"),
      ])
    #expect(outcome.commands(on: "desk1") == ["mkdir -p /opt/tools/desk1", "mkdir -p /opt/office/desk1"])
  }

  @Test func defSeesGlobalsNotTheCallersLocals() async throws {
    let outcome = try await run(
      """
      let v = "global"
      def show() < run "show $v" >
      def shadow() < let v = "inner" >
      on host pc01 <
        let v = "caller"
        show()
        shadow()
        run "after $v"
      >
      """)
    #expect(outcome.commands(on: "pc01") == ["show global", "after caller"])
  }

  @Test func defDoesNotSeeACallerLocalAbsentFromGlobals() async throws {
    // `w` is a global only after the block, so inside the call it is not set at all.
    let outcome = try await run(
      """
      def show() < run "show $w" >
      on host pc01 <
        let w = "caller"
        show()
      >
      let w = "late"
      """)
    #expect(outcome.commands(on: "pc01") == [])
    #expect(outcome.statuses == ["pc01": .failed])
    let message = try #require(outcome.message(of: "pc01"))
    #expect(message.hasSuffix("/main.cfi:1:24: variable 'w' is not set here"))
  }

  @Test func aDefCanBeCalledBeforeItIsWritten() async throws {
    // The resolver accepts this (defs are known program-wide), so running it must work too.
    let outcome = try await run(
      """
      on host pc01 < setup("vim") >
      def setup(package) < install package >
      """)
    #expect(outcome.statuses == ["pc01": .ok])
    #expect(outcome.executor.calls(on: "pc01") == [.install(packages: ["vim"])])
  }

  @Test func setAndGroupThroughADefInsideOnAreErrors() async throws {
    let outcome = try await run(
      """
      def tune() < set timeout = 5s >
      def extend() < group lab = pc99 >
      on host pc01 < tune(); run "x" >
      on host pc02 < extend(); run "y" >
      on group lab < run "z" >
      """)
    // The last block runs its hosts in parallel: which starts first is the scheduler's choice.
    #expect(outcome.executor.calls.map(\.host).sorted() == labHosts)
    #expect(outcome.statuses["pc01"] == .failed)
    #expect(outcome.statuses["pc02"] == .failed)
    #expect(outcome.message(of: "pc01")?.hasSuffix("/main.cfi:1:14: 'set' cannot run inside an 'on' block") == true)
    #expect(outcome.message(of: "pc02")?.hasSuffix("/main.cfi:2:16: 'group' cannot run inside an 'on' block") == true)
  }

  @Test func runawayRecursionFailsTheHost() async throws {
    let outcome = try await run(
      """
      def again(n) <
        run "level"
        again(n)
      >
      on host pc01 < again(1) >
      """)
    #expect(outcome.commands(on: "pc01").count == Interpreter.maxCallDepth)
    #expect(outcome.statuses == ["pc01": .failed])
    #expect(
      outcome.message(of: "pc01")?.hasSuffix(
        "/main.cfi:3:3: calls nest too deeply (more than 100); is 'again' recursive?") == true)
    #expect(outcome.result.error == nil)
  }

  @Test func runawayRecursionOutsideOnStopsTheRun() async throws {
    let outcome = try await run(
      """
      def again(n) < again(n) >
      again(1)
      on all < run "never" >
      """)
    #expect(outcome.executor.calls.isEmpty)
    #expect(outcome.result.error?.message == "calls nest too deeply (more than 100); is 'again' recursive?")
  }

  @Test func includedDefsAndGlobalsAreUsable() async throws {
    let outcome = try await run(
      """
      include "lib/common.cfi"
      on host pc01 <
        greet(shared)
        other()
      >
      """,
      files: [
        "lib/common.cfi": """
        include "more.cfi"
        let shared = "from-lib"
        def greet(who) < run "hello $who" >
        """,
        "lib/more.cfi": "def other() < run \"other\" >\n",
      ])
    #expect(outcome.commands(on: "pc01") == ["hello from-lib", "other"])
  }

  @Test func listsSpreadIntoActionArguments() async throws {
    let outcome = try await run(
      """
      let base = ["vim", "gcc"]
      let extra = [["make"], "git"]
      on host pc01 <
        install base "curl" extra
        script "setup.sh" base "x y"
        remove ["nano"] "ed"
        run "echo $base"
      >
      """)
    #expect(
      outcome.executor.calls(on: "pc01") == [
        .install(packages: ["vim", "gcc", "curl", "make", "git"]),
        .script(path: "setup.sh", arguments: ["vim", "gcc", "x y"]),
        .remove(packages: ["nano", "ed"]),
        .run(command: "echo vim gcc"),
      ])
  }

  @Test func linesReadsTheHostsGroupStore() async throws {
    let outcome = try await run(
      """
      let office = lines("packages.list", "office")
      on host pc01, desk1 <
        install lines("packages.list")
        install office
      >
      """)
    #expect(outcome.executor.calls(on: "pc01") == [.install(packages: ["emacs", "vim", "gcc"]), .install(packages: ["libreoffice"])])
    #expect(outcome.executor.calls(on: "desk1") == [.install(packages: ["libreoffice"]), .install(packages: ["libreoffice"])])
  }

  @Test func linesOfAMissingStoreFileFailsTheHost() async throws {
    let outcome = try await run(
      """
      on host pc01, new1 < install lines("packages.list") >
      """)
    #expect(outcome.statuses == ["pc01": .ok, "new1": .failed])
    #expect(outcome.executor.calls(on: "new1") == [])
    #expect(outcome.message(of: "new1")?.contains("the store has no group 'unknown'") == true)
  }

  @Test func envAndArgs() async throws {
    let outcome = try await run(
      """
      on host pc01 <
        run env("MODE", "default-mode")
        run env("HOME_DIR", "unused")
        for a in args < run "arg $a" >
      >
      print len(args) args
      """,
      arguments: ["one", "two words"], environment: ["HOME_DIR": "/home/x"])
    #expect(outcome.commands(on: "pc01") == ["default-mode", "/home/x", "arg one", "arg two words"])
    #expect(outcome.log.messages == ["2 one two words"])
  }
}

@Suite("Interpreter: defs that run blocks")
struct InterpreterDefBlockTests {
  @Test func aBlockInsideADefSeesTheDefsParameters() async throws {
    let outcome = try await run(
      """
      def restart(unit) < on host pc01, pc02 < run "systemctl restart $unit" > >
      restart("cron")
      """)
    #expect(outcome.commands(on: "pc01") == ["systemctl restart cron"])
    #expect(outcome.commands(on: "pc02") == ["systemctl restart cron"])
  }
}
