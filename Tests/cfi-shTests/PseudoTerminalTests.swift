// Tests of the pseudo-terminal harness itself (TestSupport/PseudoTerminal.swift), with ordinary
// programs, so that failures of the REPL tests built on it point at the REPL.

import Foundation
import TestSupport
import Testing

@Suite struct PseudoTerminalTests {
  let shell = URL(fileURLWithPath: "/bin/bash")
  /// An interactive bash without startup files, prompting with "READY> ".
  func startShell() throws -> PseudoTerminal {
    let terminal = try PseudoTerminal(
      shell, arguments: ["--norc", "--noprofile", "-i"], environment: ["PS1": "READY> ", "HISTFILE": "/dev/null"])
    try terminal.expect("READY> ")
    return terminal
  }

  @Test func typesLinesAndReadsWhatTheShellPrints() throws {
    let terminal = try startShell()
    // The quotes keep the echo of the typed line from matching the output.
    terminal.sendLine("echo hel''lo")
    let reply = try terminal.expect("hello")
    #expect(reply.contains("echo hel''lo"))
    try terminal.expect("READY> ")
    terminal.sendLine("tty")
    try terminal.expect("/dev/pts/")
    try terminal.expect("READY> ")
  }

  @Test func theProgramSeesATerminalOfItsOwn() throws {
    let script = """
      echo "pid=$$ sid=$(ps -o sid= -p $$ | tr -d ' ') pgid=$(ps -o pgid= -p $$ | tr -d ' ')"
      echo "foreground=$(ps -o tpgid= -p $$ | tr -d ' ')"
      echo "size=$(stty size) term=$TERM"
      echo "via /dev/tty" > /dev/tty
      """
    let terminal = try PseudoTerminal(URL(fileURLWithPath: "/bin/sh"), arguments: ["-c", script])
    let pid = terminal.pid
    try terminal.expect("pid=\(pid) sid=\(pid) pgid=\(pid)\n")
    try terminal.expect("foreground=\(pid)\n")
    try terminal.expect("size=50 200 term=xterm-256color\n")
    try terminal.expect("via /dev/tty\n")
    #expect(try terminal.waitForExit() == 0)
  }

  @Test func theCallerChoosesTermAndTheWindowSize() throws {
    let terminal = try PseudoTerminal(
      URL(fileURLWithPath: "/bin/sh"), arguments: ["-c", "echo \"$(stty size) $TERM\""], environment: ["TERM": "dumb"],
      columns: 80, rows: 24)
    #expect(try terminal.waitForExit() == 0)
    #expect(terminal.transcript == "24 80 dumb\n")
  }

  @Test func controlCInterruptsTheForegroundJobNotTheShell() throws {
    let terminal = try startShell()
    // "started" is printed by the job itself, so by then it is the foreground process group.
    terminal.sendLine("sh -c 'echo sta''rted; sleep 30; echo after''wards'")
    try terminal.expect("started")
    terminal.interrupt()
    try terminal.expect("READY> ")
    terminal.sendLine("echo status=$?")
    try terminal.expect("status=130")
    try terminal.expect("READY> ")
    #expect(!terminal.transcript.contains("afterwards"))
  }

  @Test func controlCInterruptsTheProgramAndItsChildren() throws {
    // sh waits for sleep, both in the program's process group: SIGINT ends both.
    let terminal = try PseudoTerminal(
      URL(fileURLWithPath: "/bin/sh"), arguments: ["-c", "echo started; sleep 30; echo not reached"])
    try terminal.expect("started")
    terminal.interrupt()
    #expect(try terminal.waitForExit() == 128 + SIGINT)
    #expect(!terminal.transcript.contains("not reached"))
  }

  @Test func controlDOnAnEmptyLineEndsInput() throws {
    let cat = try PseudoTerminal(URL(fileURLWithPath: "/bin/cat"))
    cat.sendLine("ping")
    try cat.expect("ping\n")  // the terminal's echo
    try cat.expect("ping\n")  // cat's copy
    cat.endOfInput()
    #expect(try cat.waitForExit() == 0)

    let shell = try startShell()
    shell.endOfInput()
    #expect(try shell.waitForExit() == 0)
    #expect(shell.transcript.hasSuffix("exit\n"))
  }

  @Test func expectReturnsTheTextSinceThePreviousMatch() throws {
    let terminal = try PseudoTerminal(URL(fileURLWithPath: "/bin/sh"), arguments: ["-c", "echo one two; echo three"])
    #expect(try terminal.expect("one") == "one")
    #expect(try terminal.expect("three") == " two\nthree")
    // Each match moves the mark: "one" has been consumed.
    #expect(throws: PseudoTerminal.Timeout.self) { try terminal.expect("one") }
  }

  @Test func escapeSequencesAndCarriageReturnsAreStripped() throws {
    // Colour (CSI), a window title (OSC ended by BEL and by ST), bracketed paste, a charset
    // selection and a keypad mode (two-byte ESC sequences).
    let output = #"A\033[1;31mB\033[0mC\033]0;title\007D\033]2;x\033\\E\033[?2004hF\033(BG\033=H\r\n"#
    let terminal = try PseudoTerminal(URL(fileURLWithPath: "/usr/bin/printf"), arguments: [output])
    #expect(try terminal.waitForExit() == 0)
    #expect(terminal.transcript == "ABCDEFGH\n")
    #expect(terminal.rawTranscript.contains("\u{1B}[1;31m"))
    #expect(terminal.rawTranscript.hasSuffix("\r\n"))
  }

  @Test func expectTimesOutWithTheEndOfTheTranscript() throws {
    let terminal = try PseudoTerminal(URL(fileURLWithPath: "/bin/cat"))
    terminal.sendLine("something visible")
    try terminal.expect("something visible")
    let error = #expect(throws: PseudoTerminal.Timeout.self) {
      try terminal.expect("never printed", timeout: .milliseconds(500))
    }
    #expect(error?.terminalClosed == false)
    #expect(error?.description.contains("\"never printed\"") == true)
    #expect(error?.description.contains("something visible") == true)
  }

  @Test func expectGivesUpWhenTheTerminalCloses() throws {
    let terminal = try PseudoTerminal(URL(fileURLWithPath: "/bin/echo"), arguments: ["bye"])
    let error = #expect(throws: PseudoTerminal.Timeout.self) { try terminal.expect("never printed") }
    #expect(error?.terminalClosed == true)
    #expect(error?.description.contains("bye") == true)
  }

  @Test func aMissingProgramIsAnError() {
    #expect(throws: (any Error).self) { try PseudoTerminal(URL(fileURLWithPath: "/nonexistent/program")) }
  }

  @Test func terminateKillsTheProgram() throws {
    let terminal = try PseudoTerminal(URL(fileURLWithPath: "/bin/sleep"), arguments: ["30"])
    #expect(throws: PseudoTerminal.Timeout.self) { try terminal.waitForExit(timeout: .milliseconds(200)) }
    terminal.terminate()
    #expect(try terminal.waitForExit() == 128 + SIGKILL)
    terminal.terminate()
    terminal.sendLine("ignored after terminate")
  }
}
