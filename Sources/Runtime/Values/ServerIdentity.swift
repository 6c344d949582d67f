// ServerIdentity: the names and addresses by which the server reaches itself. `on all`, a
// group or a pattern never includes the server (a dsh package's `/etc/dsh/group/all` holds
// `localhost`); only a runbook that names it with `on host` reaches it.

import Foundation

/// The names and addresses of this machine: loopback names and addresses (127.0.0.0/8, ::1),
/// its host names, and the addresses of its interfaces (a lab bridge's too).
public struct ServerIdentity: Sendable, Hashable {
  /// Names that always mean this machine.
  public static let loopbackNames: Set<String> = [
    "localhost", "localhost.localdomain", "localhost4", "localhost4.localdomain4", "localhost6",
    "localhost6.localdomain6", "ip6-localhost", "ip6-loopback",
  ]

  /// Host names of this machine, lowercased (loopback names included).
  public private(set) var names: Set<String>
  /// Addresses of this machine, in canonical text form (`inet_ntop`), without zones.
  public private(set) var addresses: Set<String>

  /// An identity of `names` and `addresses` (plus the loopback names; loopback addresses are
  /// always recognised).
  public init(names: [String] = [], addresses: [String] = []) {
    self.names = Self.loopbackNames.union(names.map { $0.lowercased() })
    self.addresses = Set(addresses.compactMap(Self.canonicalAddress))
  }

  /// This machine now: its host name (and the short form of it) and every interface address.
  public static func current() -> ServerIdentity {
    var names: [String] = []
    if let name = hostName {
      names.append(name)
      if let short = name.split(separator: ".").first { names.append(String(short)) }
    }
    return ServerIdentity(names: names, addresses: interfaceAddresses())
  }

  /// This machine's host name (gethostname); nil when it has none.
  public static var hostName: String? {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count) == 0 else { return nil }
    let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return name.isEmpty ? nil : name
  }

  /// Whether `host` is this machine: by its name, or by its address (a name or IP literal).
  public func contains(_ host: Host) -> Bool {
    if isServer(host.name.rawValue) { return true }
    return host.address.map { isServer($0.rawValue) } ?? false
  }

  /// Whether the name or address `text` means this machine.
  public func isServer(_ text: String) -> Bool {
    let lowered = text.lowercased()
    let name = lowered.hasSuffix(".") ? String(lowered.dropLast()) : lowered
    if names.contains(name) { return true }
    guard let address = Self.canonicalAddress(text) else { return false }
    return addresses.contains(address) || Self.isLoopback(address)
  }

  /// An IP literal in canonical form (IPv4 dotted quad, IPv6 as inet_ntop writes it, zone
  /// dropped); nil for anything else.
  static func canonicalAddress(_ text: String) -> String? {
    let bare = String(text.split(separator: "%", maxSplits: 1, omittingEmptySubsequences: false)[0])
    var v4 = in_addr()
    if inet_pton(AF_INET, bare, &v4) == 1 { return ntop(family: AF_INET, &v4, length: INET_ADDRSTRLEN) }
    var v6 = in6_addr()
    if inet_pton(AF_INET6, bare, &v6) == 1 { return ntop(family: AF_INET6, &v6, length: INET6_ADDRSTRLEN) }
    return nil
  }

  /// `address` (an `in_addr` or `in6_addr`) as text.
  private static func ntop(family: Int32, _ address: UnsafeRawPointer, length: Int32) -> String? {
    var buffer = [CChar](repeating: 0, count: Int(length))
    guard inet_ntop(family, address, &buffer, socklen_t(length)) != nil else { return nil }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  /// 127.0.0.0/8, ::1, and IPv4-mapped loopback (::ffff:127.x.y.z).
  private static func isLoopback(_ canonical: String) -> Bool {
    canonical.hasPrefix("127.") || canonical == "::1" || canonical.hasPrefix("::ffff:127.")
  }

  /// The IPv4 and IPv6 addresses of this machine's interfaces (getifaddrs).
  static func interfaceAddresses() -> [String] {
    var list: UnsafeMutablePointer<ifaddrs>?
    guard getifaddrs(&list) == 0 else { return [] }
    defer { freeifaddrs(list) }
    var result: [String] = []
    var entry = list
    while let current = entry {
      defer { entry = current.pointee.ifa_next }
      guard let socket = current.pointee.ifa_addr else { continue }
      switch Int32(socket.pointee.sa_family) {
      case AF_INET:
        var address = socket.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
        if let text = ntop(family: AF_INET, &address, length: INET_ADDRSTRLEN) { result.append(text) }
      case AF_INET6:
        var address = socket.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
        if let text = ntop(family: AF_INET6, &address, length: INET6_ADDRSTRLEN) { result.append(text) }
      default:
        continue
      }
    }
    return result
  }
}
