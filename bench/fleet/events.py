#!/usr/bin/python3
"""Stamps cfi-sh's --json events as they arrive and says where a run's time went.

Usage: cfi-sh --json … | events.py T0
T0 is the run's start (bash $EPOCHREALTIME). Prints a readable timeline, then `#key value…`
lines for report.py (`#block N START END` per block). A host's k-th step_finished is its
step k (a host runs its steps in order; the hosts of a block do not wait for each other, the
next block starts when every host is done with the last one).
"""

import json
import statistics
import sys
import time

t0 = float(sys.argv[1])
first_started = None
finished = {}          # step index -> [arrival times]
durations = {}         # step index -> [duration_ms]
per_host = {}          # host -> steps finished so far
marks = {}
blocks = {}            # block number -> [started, finished]
for line in sys.stdin:
    now = time.time() - t0
    try:
        event = json.loads(line)
    except ValueError:
        continue
    kind = event.get("event")
    if kind == "step_started" and first_started is None:
        first_started = now
    elif kind == "step_finished":
        host = event.get("host", "")
        k = per_host.get(host, 0) + 1
        per_host[host] = k
        finished.setdefault(k, []).append(now)
        durations.setdefault(k, []).append(event.get("duration_ms", 0))
    elif kind in ("run_started", "block_finished", "run_finished"):
        marks.setdefault(kind, now)
    if kind == "block_started":
        blocks.setdefault(event.get("block"), [now, None])
    elif kind == "block_finished" and event.get("block") in blocks:
        blocks[event.get("block")][1] = now
exit_time = time.time() - t0   # standard output closed: cfi-sh is exiting

if not finished:
    print("(no step events: the run failed)")
    sys.exit(0)
print("first event %.3f s, first step started %.3f s" % (marks.get("run_started", 0), first_started or 0))
previous_last = None
increments = []
for k in sorted(finished):
    times = finished[k]
    last = max(times)
    inc = "" if previous_last is None else "  (+%.3f s)" % (last - previous_last)
    if previous_last is not None:
        increments.append(last - previous_last)
    print("step %2d: %3d hosts done between %.3f and %.3f s%s; per-host step time median %d ms, max %d ms"
          % (k, len(times), min(times), last, inc, statistics.median(durations[k]), max(durations[k])))
    previous_last = last
block = max([b[1] for b in blocks.values() if b[1] is not None] or [previous_last])
run = marks.get("run_finished", block)
if len(blocks) > 1:
    print("blocks (start–end, s): " + ", ".join("%d: %.3f–%.3f" % (n, b[0], b[1] or 0) for n, b in sorted(blocks.items())))
print("last block finished %.3f s, run_finished %.3f s (+%.3f s: closing the masters), exit %.3f s"
      % (block, run, run - block, exit_time))
first = finished[min(finished)]
print("#connect_first %.3f" % min(first))
print("#connect_last %.3f" % max(first))
print("#step1_median_ms %d" % statistics.median(durations[min(finished)]))
if increments:
    print("#step_increment_median %.3f" % statistics.median(increments))
    later = [d for k in finished if k > 1 for d in durations[k]]
    print("#later_step_host_median_ms %d" % statistics.median(later))
for number in sorted(blocks):
    start, end = blocks[number]
    if end is not None:
        print("#block %d %.3f %.3f" % (number, start, end))
print("#shutdown %.3f" % (run - block))
print("#exit %.3f" % exit_time)
