// Test-only literals for the host value types, so tests read `Host(name: "pc01", group: "lab")`.
// Production code never gets these: there a name is parsed where it enters and may be refused.
// A literal that is not valid stops the test at once, saying which one.

import Runtime

extension HostName: ExpressibleByStringLiteral {
  public init(stringLiteral text: String) {
    guard let name = HostName(text) else { preconditionFailure("test literal '\(text)' is not a host name") }
    self = name
  }
}

extension GroupName: ExpressibleByStringLiteral {
  public init(stringLiteral text: String) {
    guard let name = GroupName(text) else { preconditionFailure("test literal '\(text)' is not a group name") }
    self = name
  }
}

extension HostAddress: ExpressibleByStringLiteral {
  public init(stringLiteral text: String) {
    guard let address = HostAddress(text) else { preconditionFailure("test literal '\(text)' is not a host address") }
    self = address
  }
}
