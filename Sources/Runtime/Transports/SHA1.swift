// SHA-1 and HMAC-SHA1, only for what OpenSSH hashes with them: the host names of a hashed
// known_hosts line (`|1|salt|HMAC-SHA1(salt, name)`, HashKnownHosts). Not for anything that
// needs SHA-1 to resist collisions.

/// HMAC-SHA1 of `message` under `key` (RFC 2104).
func hmacSHA1(key: [UInt8], message: [UInt8]) -> [UInt8] {
  let blockSize = 64
  var block = key.count > blockSize ? sha1(key) : key
  block += [UInt8](repeating: 0, count: blockSize - block.count)
  let inner = sha1(block.map { $0 ^ 0x36 } + message)
  return sha1(block.map { $0 ^ 0x5c } + inner)
}

/// The SHA-1 digest of `message` (FIPS 180-4), 20 bytes.
func sha1(_ message: [UInt8]) -> [UInt8] {
  var h: [UInt32] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0]
  var padded = message + [0x80]
  padded += [UInt8](repeating: 0, count: (64 - (padded.count + 8) % 64) % 64)
  let bits = UInt64(message.count) &* 8
  padded += (0..<8).map { UInt8(truncatingIfNeeded: bits >> (56 - 8 * UInt64($0))) }
  var w = [UInt32](repeating: 0, count: 80)
  for chunk in stride(from: 0, to: padded.count, by: 64) {
    for t in 0..<16 {
      w[t] = (0..<4).reduce(UInt32(0)) { $0 << 8 | UInt32(padded[chunk + 4 * t + $1]) }
    }
    for t in 16..<80 {
      let x = w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16]
      w[t] = x << 1 | x >> 31
    }
    var (a, b, c, d, e) = (h[0], h[1], h[2], h[3], h[4])
    for t in 0..<80 {
      let (f, k): (UInt32, UInt32) =
        switch t {
        case 0..<20: (b & c | ~b & d, 0x5A82_7999)
        case 20..<40: (b ^ c ^ d, 0x6ED9_EBA1)
        case 40..<60: (b & c | b & d | c & d, 0x8F1B_BCDC)
        default: (b ^ c ^ d, 0xCA62_C1D6)
        }
      let temp = (a << 5 | a >> 27) &+ f &+ e &+ k &+ w[t]
      (e, d, c, b, a) = (d, c, b << 30 | b >> 2, a, temp)
    }
    h[0] = h[0] &+ a
    h[1] = h[1] &+ b
    h[2] = h[2] &+ c
    h[3] = h[3] &+ d
    h[4] = h[4] &+ e
  }
  return h.flatMap { word in (0..<4).map { UInt8(truncatingIfNeeded: word >> (24 - 8 * UInt32($0))) } }
}
