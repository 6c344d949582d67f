// DescriptorLimit: the fan-out that the process's file descriptors allow, and the soft limit
// raised to the hard one. The arithmetic on values; the process's own limit read and raised.

import Runtime
import Testing

@Suite struct DescriptorLimitTests {
  @Test func aLimitThatLastsKeepsTheRequestedFanOut() {
    let limit = DescriptorLimit(soft: 20_000, hard: 20_000)
    #expect(limit.fanOut(1000, hosts: 1000) == (1000, nil))
    #expect(limit.fanOut(64, hosts: 1000) == (64, nil))
  }

  @Test func fewerHostsThanTheLimitWouldNeedAreNotLowered() {
    // 1,024 descriptors: (1024 - 64) / 10 = 96 hosts at once.
    let limit = DescriptorLimit(soft: 1024, hard: 1024)
    #expect(limit.hostsAtOnce == 96)
    #expect(limit.fanOut(1000, hosts: 96) == (1000, nil))
    #expect(limit.fanOut(64, hosts: 1000) == (64, nil))
  }

  @Test func aLimitTooLowLowersTheFanOutAndSaysSo() throws {
    let limit = DescriptorLimit(soft: 1024, hard: 1024)
    let (hosts, notice) = limit.fanOut(1000, hosts: 500)
    #expect(hosts == 96)
    let text = try #require(notice)
    #expect(text.contains("500 hosts at once need about \(DescriptorLimit.needed(hosts: 500)) file descriptors"))
    #expect(text.contains("this process may open 1024 (ulimit -n; hard limit 1024)"))
    #expect(text.contains("96 hosts run at once, the others take turns"))
  }

  @Test func aTinyLimitStillRunsOneHostAtATime() {
    let limit = DescriptorLimit(soft: 20, hard: 20)
    #expect(limit.hostsAtOnce == 1)
    #expect(limit.fanOut(64, hosts: 30).limit == 1)
  }

  @Test func neededCountsTheReserveAndEachHost() {
    #expect(DescriptorLimit.needed(hosts: 0) == DescriptorLimit.reserve)
    #expect(DescriptorLimit.needed(hosts: 10) == DescriptorLimit.reserve + 10 * DescriptorLimit.perHost)
  }

  @Test func raisingGoesToTheHardLimitAndNeverLowers() {
    #expect(DescriptorLimit(soft: 1024, hard: 524_288).raised() == DescriptorLimit(soft: 524_288, hard: 524_288))
    #expect(DescriptorLimit(soft: 4096, hard: 4096).raised() == DescriptorLimit(soft: 4096, hard: 4096))
    // unlimited: up to the ceiling (the kernel's nr_open default)
    #expect(DescriptorLimit(soft: 1024, hard: Int.max).raised(ceiling: 1 << 20).soft == 1 << 20)
    #expect(DescriptorLimit(soft: 2048, hard: Int.max).raised(ceiling: 1000).soft == 2048)
  }

  @Test func theProcessLimitIsRaisedToItsHardLimit() {
    let before = DescriptorLimit.current()
    let after = DescriptorLimit.raise()
    #expect(after.hard == before.hard)
    #expect(after.soft == before.raised().soft)
    #expect(DescriptorLimit.current() == after)
  }
}
