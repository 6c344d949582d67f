// cfi-bench-parse: how fast CFIScript reads a large runbook.
//
// Generates a realistic runbook of 10,000 lines (every statement kind, comments, nested
// blocks, multi-line lists, long strings, an include), then times loading it (lexing +
// parsing, the include included), loading + resolving it (the static checks `cfi-sh -n`
// runs) and resolving alone, N times each, and prints min / median / max in milliseconds,
// of wall-clock and of CPU time. The target (DESIGN.md §5): parse 10,000 lines in under
// 100 ms. Not a test: run it in release mode,
//
//   swift build -c release --product cfi-bench-parse
//   .build/release/cfi-bench-parse [--iterations N] [--lines N] [--write FILE]
//
// `--write FILE` also saves the generated runbook, to look at or to feed to `cfi-sh -n`
// (with a store holding the groups `lab` and `office`). See bench/README.md.

import CFIScript
import CFISyntax
import Foundation
import Runtime

// MARK: - Options

struct Options {
  var iterations = 20
  var lines = 10_000
  var write: String?

  init(_ arguments: [String]) {
    var rest = arguments[...]
    func value(_ flag: String) -> String {
      guard let value = rest.popFirst() else { fail("\(flag) needs a value") }
      return value
    }
    while let argument = rest.popFirst() {
      switch argument {
      case "--iterations", "-n":
        guard let count = Int(value(argument)), count >= 1 else { fail("--iterations takes a number >= 1") }
        iterations = count
      case "--lines":
        guard let count = Int(value(argument)), count >= 100 else { fail("--lines takes a number >= 100") }
        lines = count
      case "--write":
        write = value(argument)
      case "-h", "--help":
        print("usage: cfi-bench-parse [--iterations N (20)] [--lines N (10000)] [--write FILE]")
        exit(0)
      default:
        fail("unknown argument '\(argument)' (try --help)")
      }
    }
  }
}

func fail(_ message: String) -> Never {
  FileHandle.standardError.write(Data("cfi-bench-parse: \(message)\n".utf8))
  exit(64)
}

// MARK: - The generated runbook

/// The file the runbook includes, served from memory.
let includedName = "common.cfi"
let includedText = """
  # common.cfi -- shared definitions (generated for the benchmark)
  let admin = env("CFI_ADMIN", "root")
  let mirror = "http://deb.debian.org/debian"
  def banner(title) <
    print "== $title =="
  >

  """

/// One section of the runbook: 79 lines using every statement kind. `i` makes its
/// names unique, so the resolver sees thousands of distinct bindings.
func section(_ i: Int) -> [String] {
  let group = "rack\(i)"
  let release = "1.\(i % 7).\(i % 13)"
  return """
    # ---------------------------------------------------------------------------
    # Section \(i): rack \(i) -- packages, a release of myapp, configuration files.
    # Comments like these make up a good part of real runbooks.
    # ---------------------------------------------------------------------------
    banner("section \(i)")
    let name_\(i) = "rack \(i)"
    let release_\(i) = "\(release)"
    let pkgs_\(i) = [
      "htop", "vim", "tmux", "git", "curl",
      "rsync", "less", "lsof", "strace",   # debugging tools
      "openssh-server",
    ]
    let extra_\(i) = ["ntpsec", pkgs_\(i), "jq"]
    let motd_\(i) = "Welcome to ${name_\(i)}: managed by cfi-sh from the server; local changes to this machine are overwritten every night at 02:00 -- ask $admin before editing \\"/etc\\" by hand.\\n"
    let hash_\(i) = '$y$j9T$BKfOL4C3AfCj3FKVq4PxZ.$RH/tQxS1JtqRP4ckxCVmEU6dWsYeYJQ8VH6id2dG8cB'
    let limit_\(i) = 30s
    group \(group) = \(group)-n[01-16], web\(i)-[01-08,10], "db\(i)-1, db\(i)-2"
    group \(group) = @\(group), \(group)-spare[1-2]
    set parallel = 32; set timeout = 5m
    set max_fail = 10%
    set serial = 25%

    def deploy_\(i)(pkg, version) <
      install pkg
      script "install-myapp.sh" version "--quiet" "--prefix=/opt/myapp"
      if host.group == "lab" and not (version in ["0.0.0", "0.0.1"]) <
        print "deploying $pkg $version on ${host.name} (${host.address})"
      > else if host.group != "office" or version == "" <
        fail "unexpected group ${host.group} for $pkg"
      > else <
        print "nothing to do on ${host.name}"
      >
    >

    on group lab, office except pc[03-05], @\(group) <
      let kernel = run "uname -r"
      if kernel not in ["6.1.0-28-amd64", "6.1.0-26-amd64"] <
        print "${host.name}: unexpected kernel $kernel"
      >
      install lines("packages.list") pkgs_\(i)
      remove "telnetd" "rsh-server" \\
        "talkd"
      upgrade
      try <
        run "test -x /usr/sbin/pkgsync && /usr/sbin/pkgsync -s >/dev/null 2>&1 || echo 'pkgsync not installed; skipping the simulation on this machine'"
        pkgsync
      >
      for p in extra_\(i) <
        if p == "jq" < print "jq on ${host.name}" >
      >
      deploy_\(i)("myapp", release_\(i))
    >

    on host \(group)-n[01-16], web\(i)-[01-08] except web\(i)-03 <
      copy "etc/dpkg/dpkg.cfg.d/cfi"
      copy "etc/debconf.conf"
      copy "etc/motd" to "/etc/motd.cfi"
      let uptime = run "cut -d' ' -f1 /proc/uptime"
      if uptime == "" < fail "no uptime on ${host.name}" >
    >

    on all except @office <
      password "root" hash_\(i)
      sync
      run "printf '%s' \\"$motd_\(i)\\" > /etc/motd"
    >

    if len(pkgs_\(i)) != 0 and not false <
      print "section \(i): " len(pkgs_\(i)) "packages, limit" limit_\(i)
    > else <
      fail "section \(i) has no packages"
    >
    for g in ["lab", "office"] <
      on group "$g" <
        try < run "systemctl is-active --quiet ssh" >
        print "${host.name} is in $g"
      >
    >

    """.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
}

/// A runbook of exactly `lineCount` lines.
func generateRunbook(lines lineCount: Int) -> String {
  var lines = [
    "#!/usr/bin/env cfi-sh",
    "# Generated by bench/parse for cfi-bench-parse: \(lineCount) lines of CFIScript.",
    "include \"\(includedName)\"",
    "set connect_timeout = 5s; set discovery = off",
    "",
  ]
  var i = 1
  while true {
    let next = section(i)
    if lines.count + next.count > lineCount { break }
    lines += next
    i += 1
  }
  while lines.count < lineCount { lines.append("# padding") }
  return lines.joined(separator: "\n") + "\n"
}

// MARK: - Measuring

func readIncluded(_ path: String) throws -> FileContents {
  guard path.hasSuffix("/" + includedName) else { throw CocoaError(.fileNoSuchFile) }
  return FileContents(bytes: Array(includedText.utf8))
}

func load(_ text: [UInt8]) -> LoadedRunbook {
  Loader.load(text: text, name: "bench.cfi", readFile: readIncluded)
}

let context = ResolverContext(knownGroups: ["lab", "office", GroupName.unknown.rawValue])

func milliseconds(_ duration: Duration) -> Double {
  Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
}

/// The CPU time this thread has used so far; unlike wall time, it hardly moves when other
/// processes compete for the cores.
func threadCPUTime() -> Double {
  var spec = timespec()
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
  return Double(spec.tv_sec) * 1000 + Double(spec.tv_nsec) / 1e6
}

/// Wall-clock and CPU milliseconds of each run, each sorted.
struct Times {
  var wall: [Double] = []
  var cpu: [Double] = []
}

/// Runs `body` `iterations` times after one warm-up run.
func measure(_ iterations: Int, _ body: () -> Int) -> Times {
  var sink = body()
  var times = Times()
  let clock = ContinuousClock()
  for _ in 0..<iterations {
    let cpuStart = threadCPUTime()
    let start = clock.now
    sink &+= body()
    times.wall.append(milliseconds(clock.now - start))
    times.cpu.append(threadCPUTime() - cpuStart)
  }
  if sink == Int.min { print("") }  // keep the work observable
  times.wall.sort()
  times.cpu.sort()
  return times
}

func median(_ sorted: [Double]) -> Double {
  sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

func summary(_ label: String, _ times: Times) -> String {
  func line(_ kind: String, _ values: [Double]) -> String {
    label.padding(toLength: 14, withPad: " ", startingAt: 0) + kind
      + String(format: "min %7.2f ms   median %7.2f ms   max %7.2f ms", values.first!, median(values), values.last!)
  }
  return line("wall  ", times.wall) + "\n" + line("cpu   ", times.cpu)
}

let options = Options(Array(CommandLine.arguments.dropFirst()))
let text = generateRunbook(lines: options.lines)
if let path = options.write {
  do {
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    let directory = (path as NSString).deletingLastPathComponent
    try includedText.write(
      toFile: (directory.isEmpty ? "." : directory) + "/" + includedName, atomically: true, encoding: .utf8)
  } catch { fail("cannot write \(path): \(error)") }
}
let bytes = Array(text.utf8)

// The runbook must be valid: a benchmark of error recovery would measure something else.
let checked = load(bytes)
let problems = checked.diagnostics + Resolver.check(checked, context: context)
if !problems.isEmpty {
  FileHandle.standardError.write(Data(DiagnosticRenderer(files: checked.files).render(problems).utf8))
  fail("the generated runbook has \(problems.count) diagnostics")
}
let statements = checked.program.statements.count

#if DEBUG
  print("warning: a debug build; measure with `swift build -c release`")
#endif
print("runbook: \(options.lines) lines, \(bytes.count) bytes, \(statements) top-level statements; \(options.iterations) runs each")
let parse = measure(options.iterations) { load(bytes).program.statements.count }
print(summary("parse", parse))
let resolve = measure(options.iterations) {
  let runbook = load(bytes)
  return Resolver.check(runbook, context: context).count + runbook.program.statements.count
}
print(summary("parse+resolve", resolve))
let resolveOnly = measure(options.iterations) { Resolver.check(checked, context: context).count }
print(summary("resolve only", resolveOnly))
