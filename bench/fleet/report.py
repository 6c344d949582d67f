#!/usr/bin/python3
"""Turns bench/fleet/run's measurements into the markdown table and the DESIGN §5 verdicts.

Usage: report.py SAMPLES.tsv HEADER.txt TIMELINE-DIR N FANOUT
SAMPLES.tsv: case, tool, round, wall s, client CPU s, others' CPU % before the round, exit code,
and for the memory samples the peak RSS of cfi-sh (MiB), the peak of the sum of its ssh
processes' RSS (MiB) and the most ssh processes at once (tab-separated, one line per run).
TIMELINE-DIR: NAME.K files from events.py (run K of a cfi-sh --json runbook NAME).
"""

import glob
import os
import statistics
import sys

samples_file, header_file, timeline_dir = sys.argv[1:4]
hosts, fanout = int(sys.argv[4]), int(sys.argv[5])
# With more hosts than the fan-out, hosts of a block take turns for the slots (a host keeps its
# slot for the whole block), so "each step's last host" no longer measures a step.
steps_comparable = hosts <= fanout
walls, cpus, busies, codes, mems = {}, {}, {}, {}, {}
for line in open(samples_file):
    case, tool, rnd, wall, cpu, busy, code, own, ssh, most = (line.rstrip("\n").split("\t") + [""] * 10)[:10]
    key = (case, tool)
    try:
        walls.setdefault(key, []).append(float(wall))
    except ValueError:
        continue
    if cpu not in ("", "-"):
        cpus.setdefault(key, []).append(float(cpu))
    if busy not in ("", "-"):
        busies.setdefault(key, []).append(int(busy))
    codes.setdefault(key, []).append(code)
    if own not in ("", "-"):
        mems.setdefault(key, []).append((float(own), float(ssh), int(most)))
med = {key: statistics.median(v) for key, v in walls.items()}
ORDER = ["pdsh", "clush", "pssh", "ansible", "sshloop", "cfish", "cfish-nohist", "cfish-path1", "cfish-as-bash", "pdsh-wrapped", "pssh-wrapped", "cmloop",
         "cfish-ten", "cfish-tenblocks", "cfish-first-push", "cfish-copy", "rsync-masters", "rsync-cold",
         "cfish-first", "cfish-second", "cfish-nodisc", "cfish-disc", "cfish-repl1", "cfish-repl2"]
CASE_ORDER = ["a", "k", "m", "b", "f", "h", "g", "c", "d", "e-all", "e-deadonly"]
rows = []
for key in sorted(walls, key=lambda k: (CASE_ORDER.index(k[0]) if k[0] in CASE_ORDER else 99,
                                        ORDER.index(k[1]) if k[1] in ORDER else 99)):
    v = walls[key]
    exits = sorted(set(codes[key]))
    note = "" if exits == ["0"] or key[0].startswith("e") else "exit " + ",".join(exits)
    rows.append((key[0], key[1], "%.3f" % med[key], "%.3f" % min(v), "%.3f" % max(v), len(v),
                 str(max(busies[key])) if key in busies else "", note,
                 "%.2f" % statistics.median(cpus[key]) if key in cpus else ""))


def memory(key):
    """(cfi-sh's peak RSS, the ssh processes' summed RSS at their peak, most ssh at once):
    medians over the runs, and the largest of each; None without memory samples."""
    m = mems.get(key)
    if not m:
        return None
    cols = list(zip(*m))
    return [statistics.median(c) for c in cols], [max(c) for c in cols]

# Timelines: name -> list of runs, each {"key": value, "blocks": {n: (start, end)}}.
timelines = {}
for path in sorted(glob.glob(os.path.join(timeline_dir, "*.[0-9]*"))):
    name = os.path.basename(path).rsplit(".", 1)[0]
    run = {"blocks": {}}
    for line in open(path):
        if not line.startswith("#"):
            continue
        parts = line[1:].split()
        if parts[0] == "block":
            run["blocks"][int(parts[1])] = (float(parts[2]), float(parts[3]))
        else:
            run[parts[0]] = float(parts[1])
    if run["blocks"] or len(run) > 1:
        timelines.setdefault(name, []).append(run)


def tl_median(name, fn):
    """Median over the runs of `name` of fn(run), skipping runs where fn gives None."""
    values = [v for v in (fn(r) for r in timelines.get(name, [])) if v is not None]
    return (statistics.median(values), min(values), max(values), len(values)) if values else None


def span(run, n):
    b = run["blocks"].get(n)
    return None if b is None else b[1] - b[0]


def later_blocks(run):
    spans = [span(run, n) for n in run["blocks"] if n > 1]
    return statistics.median(spans) if spans else None


NAMES = {
    "pdsh": "pdsh", "clush": "ClusterShell (clush)", "pssh": "parallel-ssh", "ansible": "Ansible `-m raw`",
    "sshloop": "plain `ssh &` loop", "cfish": "**cfi-sh**",
    "cfish-nohist": "cfi-sh `--no-history` (no run history written)",
    "cfish-path1": "cfi-sh with PATH=/usr/bin:/bin (ssh found on the first try)",
    "cfish-as-bash": "cfi-sh's ssh calls done by bash (`ssh -f -N` master, command over it, `-O exit`)",
    "pdsh-wrapped": "pdsh sending cfi-sh's remote line for `run \"true\"` (timeout, sh, exit report)",
    "pssh-wrapped": "parallel-ssh sending cfi-sh's remote line for `run \"true\"`",
    "cmloop": "`ssh` loop over open ControlMasters",
    "cfish-ten": "**cfi-sh**, 10 × `run \"true\"` in one `on all` block (`--json`)",
    "cfish-tenblocks": "**cfi-sh**, 10 blocks `on all < run \"true\" >` (`--json`)",
    "cfish-first-push": "**cfi-sh** `copy`, first push (10 MiB to every host; 1 run)",
    "cfish-copy": "**cfi-sh** `copy`, no change: a whole run (connect + copy)",
    "rsync-masters": "`rsync` over open masters, all hosts at once",
    "rsync-cold": "`rsync`, a new ssh connection per host",
    "cfish-first": "cfi-sh `--persist 5m`, the first run (cold; keeps its masters)",
    "cfish-second": "**cfi-sh** `--persist 5m`, the second run (reuses the first's masters)",
    "cfish-nodisc": "cfi-sh `--no-discovery`",
    "cfish-disc": "**cfi-sh**, discovery on (browses the lab's avahi)",
    "cfish-repl1": "cfi-sh's shell, first entry `on all < run \"true\" >` (cold)",
    "cfish-repl2": "**cfi-sh's shell, second entry** (on the session's masters)",
}
MEMORY_NAMES = {"cfish": "**cfi-sh** under `procmem.py` (wall time includes the sampling)"}
PEERS = ["pdsh", "clush", "pssh", "ansible"]
CASES = {
    "a": "a. one command, cold",
    "k": "k. one command, cold, curve25519 for every tool",
    "b": "b. one command over open masters",
    "c": "c. ten steps",
    "d": "d. no-change push, 10 MiB",
    "e-all": "e. all hosts, 5 unplugged, 2 s timeout",
    "e-deadonly": "e. only the 5 unplugged, 2 s timeout",
    "f": "f. second run within the persist window",
    "g": "g. one command, discovery on / off",
    "h": "h. the shell's second entry",
    "m": "m. memory, one command cold",
}


def g(case, tool):
    return med.get((case, tool))


def fastest(case):
    found = [(med[(case, p)], p) for p in PEERS if (case, p) in med]
    return min(found) if found else (None, None)


def fmt(x, digits=2):
    return "–" if x is None else ("%.*f" % (digits, x))


out = []
header = open(header_file).read().strip().splitlines()
out.append(header[0] + "  ")
out += [h + "  " for h in header[1:]]
out.append("")
out.append("| case | tool | median s | min–max s | ratio | client CPU s | others' CPU % (max) | cfi-sh peak RSS MiB | its ssh processes' RSS MiB |")
out.append("|---|---|---|---|---|---|---|---|---|")
fa, ft = fastest("a")
cm = g("b", "cmloop")
rm = g("d", "rsync-masters")
for case, tool, median, lo, hi, runs, load, note, cpu in rows:
    ratio = ""
    base, base_tool = fastest(case)
    if note:
        ratio = note
    elif case == "a" and tool == "cfish-nohist" and g("a", "cfish"):
        ratio = "cfi-sh with history: %.3f× this (client CPU %s×)" % (
            g("a", "cfish") / float(median),
            "%.3f" % (statistics.median(cpus[("a", "cfish")]) / float(cpu)) if cpu and ("a", "cfish") in cpus and float(cpu) else "–")
    elif case in ("a", "k") and tool.endswith("-wrapped") and g(case, "cfish"):
        ratio = "cfi-sh: %.3f× this" % (g(case, "cfish") / float(median))
    elif case in ("a", "k", "e-all", "e-deadonly") and base:
        ratio = "%.2f× fastest peer (%s)" % (float(median) / base, base_tool)
        if case in ("a", "k") and tool == "cfish" and cpu and (case, base_tool) in cpus:
            ratio += "; client CPU %.2f× its" % (float(cpu) / statistics.median(cpus[(case, base_tool)]))
    elif case == "c" and tool.startswith("cfish") and fa:
        ratio = "%.1f× faster than %s run 10× (10 × %.2f = %.1f s)" % (10 * fa / float(median), ft, fa, 10 * fa)
    elif case == "d" and tool in ("cfish-copy", "rsync-cold") and rm:
        ratio = "%.1f× rsync over masters" % (float(median) / rm)
    elif tool in ("cfish-second", "cfish-repl2") and cm:
        ratio = "%.2f× the open-master loop%s" % (float(median) / cm,
                                                  "; %.1f× faster than %s cold" % (fa / float(median), ft) if fa else "")
    elif tool in ("cfish-first", "cfish-repl1") and fa:
        ratio = "%.2f× fastest peer cold (%s)" % (float(median) / fa, ft)
    elif tool == "cfish-disc" and g("g", "cfish-nodisc"):
        ratio = "%.3f× without discovery" % (float(median) / g("g", "cfish-nodisc"))
    mem = memory((case, tool))
    own = ssh = ""
    if mem:
        (m_own, m_ssh, m_most), (x_own, x_ssh, x_most) = mem
        own = "%.1f (max %.1f)" % (m_own, x_own)
        ssh = "%.0f (max %.0f; up to %d ssh at once)" % (m_ssh, x_ssh, x_most)
    spread = "" if not lo else "%s–%s" % (fmt(float(lo)), fmt(float(hi)))
    name = MEMORY_NAMES.get(tool, tool) if case == "m" else NAMES.get(tool, tool)
    out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (CASES.get(case, case), name,
                                                                   fmt(float(median)) if median else "–", spread, ratio,
                                                                   fmt(float(cpu)) if cpu else "", load, own, ssh))
    if case == "b" and tool == "cmloop":
        later = tl_median("ten-blocks", later_blocks)
        if later and cm:
            out.append("| b. one command over open masters | **cfi-sh**, a later block `on all < run \"true\" >` "
                       "(blocks 2–10 of a ten-block run, from its events) | %.3f | %.3f–%.3f | %.2f× the open-master loop | | | | |"
                       % (later[0], later[1], later[2], later[0] / cm))
        inc = tl_median("ten-steps", lambda r: r.get("step_increment_median"))
        if inc and cm and steps_comparable:
            out.append("| b. one command over open masters | **cfi-sh**, a later step in one block "
                       "(each step's last host, steps 2–10, from its events) | %.3f | %.3f–%.3f | %.2f× the open-master loop | | | | |"
                       % (inc[0], inc[1], inc[2], inc[0] / cm))
    if case == "d" and tool == "cfish-copy":
        copy = tl_median("run-then-copy", lambda r: span(r, 2))
        if copy and rm:
            out.append("| d. no-change push, 10 MiB | **cfi-sh** `copy` on open connections "
                       "(block 2 of `on all < run \"true\" >; on all < copy … >`, from its events) | %.2f | %.2f–%.2f | %.2f× rsync over masters | | | | |"
                       % (copy[0], copy[1], copy[2], copy[0] / rm) if rm else "")
out.append("")

# Where the time goes.
ts = timelines.get("ten-steps")
if ts:
    def m(key):
        r = tl_median("ten-steps", lambda run: run.get(key))
        return r[0] if r else 0
    if steps_comparable:
        out.append("Where a ten-step cfi-sh run spends its time (medians of %d runs with `--json`, events stamped as they arrive): "
                   "the first host is through step 1 (connect + command) at %.2f s, the last at %.2f s; each later step "
                   "adds %.3f s for all hosts (one host's step takes %d ms); closing the masters after the last step %.2f s; "
                   "exit at %.2f s."
                   % (len(ts), m("connect_first"), m("connect_last"), m("step_increment_median"),
                      m("later_step_host_median_ms"), m("shutdown"), m("exit")))
    else:
        out.append("Where a ten-step cfi-sh run spends its time (medians of %d runs with `--json`, events stamped as they arrive; "
                   "%d hosts > fan-out %d, so the hosts of the block take turns for the slots): the first host is through "
                   "step 1 at %.2f s, the last at %.2f s; one host's later step takes %d ms; closing the masters after the "
                   "last step %.2f s; exit at %.2f s."
                   % (len(ts), hosts, fanout, m("connect_first"), m("connect_last"),
                      m("later_step_host_median_ms"), m("shutdown"), m("exit")))
    out.append("")

# Verdicts (DESIGN.md §5).
out.append("Targets (DESIGN.md §5):")
one = g("a", "cfish")
if one and fa:
    loop = g("a", "sshloop")
    out.append("- one command, cold, no slower than the fastest tool: **%s** — cfi-sh %.2f s vs %s %.2f s (%.2f×)%s."
               % ("met" if one <= fa else "not met", one, ft, fa, one / fa,
                  "; plain ssh loop %.2f s (%.2f×)" % (loop, one / loop) if loop else ""))
kx, fk = g("k", "cfish"), fastest("k")
if kx and fk[0]:
    out.append("- (diagnostic) the same with curve25519 for every tool, where the key exchange costs the client far less: "
               "cfi-sh %.2f s vs %s %.2f s (%.2f×)." % (kx, fk[1], fk[0], kx / fk[0]))
later = tl_median("ten-blocks", later_blocks)
inc = tl_median("ten-steps", lambda r: r.get("step_increment_median")) if steps_comparable else None
if cm and later:
    out.append("- a later command on open connections ≤ 1.5× the open-master loop: **%s** — a later block %.3f s (%.2f×)%s, "
               "loop %.3f s."
               % ("met" if later[0] <= 1.5 * cm else "not met", later[0], later[0] / cm,
                  ", a later step within a block %.3f s (%.2f×)" % (inc[0], inc[0] / cm) if inc else "", cm))
ten = g("c", "cfish-ten")
if ten and fa:
    sp = 10 * fa / ten
    tb = g("c", "cfish-tenblocks")
    out.append("- a ten-step runbook ≥ 4× faster than the fastest tool run ten times: **%s** — %.2f s vs 10 × %.2f s = %.1f s (%.1f×)%s."
               % ("met" if sp >= 4 else "not met", ten, fa, 10 * fa, sp,
                  "; as ten blocks %.2f s (%.1f×)" % (tb, 10 * fa / tb) if tb else ""))
copy = tl_median("run-then-copy", lambda r: span(r, 2))
if rm and copy:
    whole = g("d", "cfish-copy")
    out.append("- a no-change push ≤ 1.5× rsync over open masters: **%s** — on open connections %.2f s vs %.2f s (%.2f×); "
               "a whole cfi-sh run that only pushes also opens its connections: %.2f s (%.1f×; rsync opening new connections: %s s)."
               % ("met" if copy[0] <= 1.5 * rm else "not met", copy[0], rm, copy[0] / rm,
                  whole or 0, (whole or 0) / rm, fmt(g("d", "rsync-cold"))))
ea, eo = g("e-all", "cfish"), g("e-deadonly", "cfish")
if ea and eo and one:
    fe, fte = fastest("e-all")
    out.append("- dead hosts cost at most the connect timeout, never a sum: **%s** — with 5 of the hosts unplugged %.2f s "
               "(the same command with none unplugged: %.2f s); only the 5 unplugged hosts: %.2f s for a 2 s timeout%s."
               % ("met" if eo <= 3.0 and ea <= one + 2.5 else "not met", ea, one, eo,
                  "; fastest peer with dead hosts: %s %.2f s" % (fte, fe) if fe else ""))
second = g("f", "cfish-second")
if second and cm and fa:
    out.append("- a second run within the persist window ≤ 1.5× the open-master loop and ≥ 8× faster than the fastest "
               "tool cold: **%s** — %.3f s (%.2f× the loop's %.3f s; %.1f× faster than %s's %.2f s)."
               % ("met" if second <= 1.5 * cm and fa / second >= 8 else "not met", second, second / cm, cm, fa / second, ft, fa))
entry = g("h", "cfish-repl2")
if entry and cm:
    out.append("- the shell's second entry ≤ 1.5× the open-master loop: **%s** — %.3f s (%.2f×), loop %.3f s."
               % ("met" if entry <= 1.5 * cm else "not met", entry, entry / cm, cm))
on, off = g("g", "cfish-disc"), g("g", "cfish-nodisc")
if on and off:
    out.append("- one command with discovery on (every host announced and known) ≤ 1.15× the same with "
               "`--no-discovery`: **%s** — %.2f s vs %.2f s (%.3f×)." % ("met" if on <= 1.15 * off else "not met", on, off, on / off))
mem = memory(("m", "cfish"))
if mem:
    (m_own, m_ssh, m_most), (x_own, x_ssh, x_most) = mem
    verdict = ("met" if x_own <= 64 else "not met") if hosts == 200 else "measured at %d hosts, the target is at 200" % hosts
    out.append("- peak RSS of cfi-sh at 200 hosts ≤ 64 MiB: **%s** — %.1f MiB (median; at most %.1f) at %d hosts; its ssh "
               "processes together %.0f MiB at their peak (at most %.0f, up to %d at once), apart."
               % (verdict, m_own, x_own, hosts, m_ssh, x_ssh, x_most))
print("\n".join(out))
