// AtomicFile: a reader sees the old file or the new one, never half, and nothing is left over.

import Foundation
import Testing

@testable import Runtime

@Suite struct AtomicFileTests {
  func text(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }

  func inode(_ path: String) throws -> NSNumber? {
    try FileManager.default.attributesOfItem(atPath: path)[.systemFileNumber] as? NSNumber
  }

  @Test func writesANewFileWithItsModeAndLeavesNoTemporaryFile() throws {
    let directory = try TemporaryFiles()
    let path = directory.path + "/a/b/file"
    #expect(try AtomicFile.update(Array("one\n".utf8), at: path, directoryMode: 0o750, newFileMode: 0o640))
    #expect(try text(path) == "one\n")
    #expect(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int == 0o640)
    #expect(try FileManager.default.attributesOfItem(atPath: directory.path + "/a/b")[.posixPermissions] as? Int == 0o750)
    #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path + "/a/b") == ["file"])
  }

  @Test func anUnchangedFileIsNotRewritten() throws {
    let directory = try TemporaryFiles()
    let path = try directory.write("file", "same\n", mode: 0o600)
    let before = try inode(path)
    #expect(try !AtomicFile.update(Array("same\n".utf8), at: path, directoryMode: 0o755, newFileMode: 0o644))
    #expect(try inode(path) == before)
    #expect(try AtomicFile.update(Array("new\n".utf8), at: path, directoryMode: 0o755, newFileMode: 0o644))
    #expect(try inode(path) != before, "replaced by a rename, not written in place")
    #expect(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int == 0o600, "an existing file keeps its mode")
  }

  @Test func aFailureBeforeTheRenameKeepsTheOldFileAndLeavesNoTemporaryFile() throws {
    let directory = try TemporaryFiles()
    let path = try directory.write("file", "old\n")
    var temporary: String?
    #expect(throws: EnrollmentError("disk full")) {
      try AtomicFile.write(Array("new\n".utf8), to: path, newFileMode: 0o644) { file throws(EnrollmentError) in
        temporary = file
        #expect(try! String(contentsOfFile: file, encoding: .utf8) == "new\n", "the new text was written and synced")
        throw EnrollmentError("disk full")
      }
    }
    #expect(temporary.map { ($0 as NSString).deletingLastPathComponent } == directory.path, "written beside the file")
    #expect(try text(path) == "old\n")
    #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["file"])
  }

  @Test func whatIsNotAFileIsRefused() throws {
    let directory = try TemporaryFiles()
    try FileManager.default.createDirectory(atPath: directory.path + "/dir", withIntermediateDirectories: false)
    #expect(throws: EnrollmentError("\(directory.path)/dir is not a regular file")) {
      try AtomicFile.write([], to: directory.path + "/dir", newFileMode: 0o644)
    }
    let blocker = try directory.write("blocker", "")
    #expect(throws: EnrollmentError("cannot read \(blocker)/file: Not a directory")) {
      try AtomicFile.update([1], at: blocker + "/file", directoryMode: 0o755, newFileMode: 0o644)
    }
    #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted() == ["blocker", "dir"])
  }

  @Test func readingAndRemovingSayWhetherThereWasAFile() throws {
    let directory = try TemporaryFiles()
    #expect(try AtomicFile.read(directory.path + "/missing") == nil)
    let path = try directory.write("file", "x")
    #expect(try AtomicFile.read(path) == Array("x".utf8))
    #expect(try AtomicFile.remove(path))
    #expect(try !AtomicFile.remove(path))
  }
}
