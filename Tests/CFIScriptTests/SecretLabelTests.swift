// A step's label is printed (text, JSON) and logged as the action was written: a crypt hash
// written inside a longer string of it is redacted there, as the hash of `password` is.

import Runtime
import Testing

struct SecretLabelTests {
  @Test func aHashInsideALongerStringOfAStepIsRedactedInItsLabel() async throws {
    let hash = "$6$cfiSalt2$" + String(repeating: "k", count: 86)
    let outcome = try await run("on host pc01 < run 'printf %s \\'user:\(hash)\\' > /root/x' >")
    let labels = outcome.log.steps.map(\.label)
    #expect(labels == ["run 'printf %s \\'user:<redacted>\\' > /root/x'"])
    #expect(outcome.commands(on: "pc01") == ["printf %s 'user:\(hash)' > /root/x"], "the host still gets the hash")
  }
}
