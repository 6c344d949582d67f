// The libFuzzer entry point: one input is a runbook's bytes. It goes through everything a
// runbook goes through before it runs (the loader with its includes, the lexer and parser,
// the resolver, the diagnostic renderer) and, when it parses, through the canonical printer
// and back. A broken invariant is a crash, which libFuzzer saves as an input to replay; a
// hang (over -timeout) and an allocation over -rss_limit_mb are caught by libFuzzer.

import CFIScript
import CFISyntax

/// What `include` can read: a library with a function, a file that includes itself, and one
/// that includes the library twice (a diamond). Any other path is a file that does not exist.
let library: [String: String] = [
  "lib/common.cfi": "def greet(who) <\n  print \"hello $who\"\n>\nlet packages = [\"vim\", \"htop\"]\n",
  "lib/self.cfi": "include \"self.cfi\"\nprint \"self\"\n",
  "lib/twice.cfi": "include \"common.cfi\"\ninclude \"common.cfi\"\n",
]

struct NoSuchFile: Error {}

func readIncluded(_ path: String) throws -> FileContents {
  guard let name = library.keys.first(where: { path == "./" + $0 || path.hasSuffix("/" + $0) || path == $0 }),
    let text = library[name]
  else { throw NoSuchFile() }
  return FileContents(bytes: Array(text.utf8), identity: FileIdentity(name: name))
}

func load(_ bytes: [UInt8]) -> LoadedRunbook {
  Loader.load(text: bytes, name: "fuzz.cfi", readFile: readIncluded)
}

let context = ResolverContext(knownGroups: ["lab", "office"])

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrontEnd(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
  let runbook = load(bytes)
  let diagnostics = runbook.diagnostics + Resolver.check(runbook, context: context)
  if let problem = FrontEndInvariants.rangesOutsideFiles(diagnostics, files: runbook.files) {
    fatalError("diagnostic range: \(problem)")
  }
  if diagnostics.isEmpty {
    _ = ASTPrinter.print(runbook.program, files: runbook.files)
  } else {
    _ = DiagnosticRenderer(files: runbook.files, colors: true).render(diagnostics)
  }
  if let problem = FrontEndInvariants.reprintMismatch(runbook, reparse: load) {
    fatalError("print/parse round trip: \(problem)")
  }
  return 0
}

// The entry point. SwiftPM links an executable with `--defsym main=<Module>_main` and, with
// `-parse-as-library` (which libFuzzer needs), Swift emits no such function: the link fails
// on an undefined `FuzzFrontEnd_main`. Defining it here to start libFuzzer's driver is what
// libFuzzer's own `main` does.
@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(
  _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
  _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

@_cdecl("FuzzFrontEnd_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
  var argc = argc
  var argv = argv
  return runDriver(&argc, &argv, fuzzFrontEnd)
}
