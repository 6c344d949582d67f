// The injection property on LocalTransport: random strings full of what shells, ssh and
// CFIScript quote (InjectionCorpus) go through `run 'printf %s …'` and as `script` arguments,
// from a runbook through the interpreter, the operations and the transport's wrapper (own
// session, tag, exit report) to `sh`, and come back byte for byte. The fleet variant
// (FleetTests/SafetyFleetTests) does the same over real ssh.

import CFIScript
import CFISyntax
import Foundation
import Runtime
import Testing
import TestSupport

struct InjectionTests {
  @Test func tenThousandHostileStringsComeBackByteIdentical() async throws {
    let seed = SeededRandom.testSeed()
    print("injection (LocalTransport): seed \(seed) (CFI_TEST_SEED=\(seed) replays it)")
    let strings = InjectionCorpus.strings(count: 10_000, seed: seed)
    let directory = try TemporaryDirectory()
    defer { directory.remove() }
    try directory.write("store/lab/\(InjectionCorpus.scriptName)", InjectionCorpus.scriptBody)
    chmod(directory.path + "/store/lab/\(InjectionCorpus.scriptName)", 0o755)
    let store = Store(root: directory.path + "/store")
    let runbook = Loader.load(text: Array(InjectionCorpus.runbook(strings, batch: 200).utf8), name: directory.path + "/main.cfi")
    let errors = (runbook.diagnostics + Resolver.check(runbook, context: ResolverContext(knownGroups: ["lab"], store: store)))
      .filter { $0.severity == .error }
    try #require(errors.isEmpty, "\(DiagnosticRenderer(files: runbook.files).render(errors))")

    let log = EventLog()
    let inventory = Inventory(hosts: [Runtime.Host(name: "pc01", group: "lab")])
    let result = await Interpreter.run(
      runbook, name: "main.cfi", executor: ActionExecutor(transport: LocalTransport(), store: store), sink: log,
      options: RunOptions(store: store, inventory: inventory, environment: [:], server: testServer))
    #expect(result.outcomes.map { $0.status } == [StepStatus.ok], "seed \(seed): \(log.steps.map { ($0.result.message ?? "") + " " + $0.result.errorOutput.prefix(300) })")
    for kind in ["run", "script"] {
      let received = InjectionCorpus.decode(log.steps.filter { $0.label.hasPrefix(kind + " ") }.map(\.result.output))
      let mismatches = InjectionCorpus.mismatches(sent: strings, received: received)
      #expect(mismatches.isEmpty, "seed \(seed), through \(kind):\n\(mismatches)")
    }
  }
}
