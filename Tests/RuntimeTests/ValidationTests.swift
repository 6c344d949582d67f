import Foundation
import Testing

@testable import Runtime

@Suite struct ValidationTests {
  @Test(arguments: [
    "$y$j9T$PaMXy1v6A2M1k5Q0zvbZc/$5r9S2A6Q1pLZk0A0mZ3Q2u5Ykq8a9kD1cF2gH3iJ4kL",
    "$6$saltsalt$" + String(repeating: "a", count: 86),
    "$6$rounds=5000$salt$" + String(repeating: "B", count: 86),
    "$5$salt$" + String(repeating: "c", count: 43),
    "$2b$12$" + String(repeating: "d", count: 53),
    "$7$CU..../....abcdefgh$" + String(repeating: "e", count: 43),
  ])
  func acceptsCryptHashes(_ hash: String) {
    #expect(CryptHash.isValid(hash))
  }

  @Test(arguments: [
    "", "secret", "*", "!", "$1$salt$abcdefghijklmnopqrstuv", "$6$salt$short",
    "$y$j9T$salt$hash with space", "$6$sa:lt$" + String(repeating: "a", count: 86),
    "$y$j9T$PaMXy1v6A2M1k5Q0zvbZc/$5r9S2A6Q1pLZk0A0mZ3Q2u5Ykq8a9kD1cF2gH3iJ4kL\n",
  ])
  func refusesWhatIsNotACryptHash(_ hash: String) {
    #expect(!CryptHash.isValid(hash))
  }

  @Test(arguments: ["htop", "g++", "libc6:amd64", "python3.11", "0ad"])
  func acceptsPackageNames(_ name: String) {
    #expect(PackageName.isValid(name))
  }

  @Test(arguments: ["", "a", "-y", "--purge", "Htop", "foo bar", "foo;rm", "pkg:", "a:b:c", ".hidden"])
  func refusesWhatIsNotAPackageName(_ name: String) {
    #expect(!PackageName.isValid(name))
  }

  @Test(arguments: [
    ("plain", "plain"), ("with space", "'with space'"), ("it's", "'it'\\''s'"), ("", "''"),
    ("$HOME", "'$HOME'"), ("a;b", "'a;b'"), ("/etc/x.conf", "/etc/x.conf"),
  ])
  func quotesForTheRemoteShell(_ word: String, _ quoted: String) {
    #expect(ShellQuote.quote(word) == quoted)
  }

  /// A `'` followed by a combining mark is one Character to Swift (`'́`), and a replacement by
  /// Characters misses it: the word would end its quotes there and the rest run as commands.
  @Test(arguments: ["'\u{301}", "x'\u{301}; echo injected; '", "'\u{20DD}'\u{301}'"])
  func quotesAQuoteFollowedByACombiningMark(_ word: String) throws {
    let shell = Process()
    shell.executableURL = URL(fileURLWithPath: "/bin/sh")
    shell.arguments = ["-c", "printf %s " + ShellQuote.quote(word)]
    let output = Pipe()
    shell.standardOutput = output
    try shell.run()
    let printed = output.fileHandleForReading.readDataToEndOfFile()
    shell.waitUntilExit()
    #expect(printed == Data(word.utf8))
    #expect(ShellQuote.rsyncShell([word]).unicodeScalars.filter { $0 == "'" }.count % 2 == 0, "rsync's quotes must pair")
  }

  @Test func percentagesRoundUp() {
    #expect(HostLimit.percent(10).resolved(total: 5) == 1)
    #expect(HostLimit.percent(50).resolved(total: 10) == 5)
    #expect(HostLimit.percent(0).resolved(total: 10) == 0)
    #expect(HostLimit.count(3).resolved(total: 100) == 3)
  }

  @Test func storePathsStayInsideTheGroupTree() throws {
    #expect(try Store.normalizedRelativePath("./etc//dpkg/") == "etc/dpkg/")
    #expect(throws: StoreError.self) { try Store.normalizedRelativePath("../secrets") }
    #expect(throws: StoreError.self) { try Store.normalizedRelativePath("etc/../../x") }
    #expect(throws: StoreError.self) { try Store.normalizedRelativePath("/etc/passwd") }
  }

  @Test func listFilesDropCommentsAndBlanks() {
    #expect(Store.listItems("htop\n\n# comment\n  vim  # editor\nfoo#bar\n") == ["htop", "vim", "foo#bar"])
  }
}
