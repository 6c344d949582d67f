#!/usr/bin/python3
"""Runs a command and samples the memory of its own process and of the ssh processes under it.

Usage: procmem.py INTERVAL COMMAND [ARG…]
Prints one line: wall s, client CPU s (the command and every process under it, ssh masters
included), the command's peak RSS (its VmHWM, MiB: the kernel's high-water mark, read at each
sample, so at most INTERVAL of growth before its exit is missed), the peak over the samples of
the sum of VmRSS of the ssh processes under it (MiB; shared pages count in each, as `ps` adds
them), the most ssh processes at once, the command's exit code.

It becomes a child subreaper first (prctl PR_SET_CHILD_SUBREAPER): an ssh master with
ControlPersist forks itself into the background and its ssh client exits, which would move
the master to init, out of the tree; here it stays under this process, is sampled, and is
reaped when it exits. Standard input, output and error of the command go to /dev/null.
"""

import ctypes
import os
import resource
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024

interval = float(sys.argv[1])
argv = sys.argv[2:]
ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def descendants(root):
    """Every process under root (a thread's children are in its task's children file)."""
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        try:
            tasks = os.listdir("/proc/%d/task" % pid)
        except OSError:
            continue
        for tid in tasks:
            for child in read("/proc/%d/task/%s/children" % (pid, tid)).split():
                found.append(int(child))
                stack.append(int(child))
    return found


def hwm(pid):
    for line in read("/proc/%d/status" % pid).splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


null = [(os.POSIX_SPAWN_OPEN, fd, "/dev/null", os.O_RDWR, 0) for fd in (0, 1, 2)]
start = time.monotonic()
command = os.posix_spawnp(argv[0], argv, os.environ, file_actions=null)
wall = code = None
peak_own = peak_ssh = most_ssh = 0
while True:
    if code is None:
        peak_own = max(peak_own, hwm(command))
    ssh = [p for p in descendants(os.getpid()) if p != command and read("/proc/%d/comm" % p).strip() == "ssh"]
    rss = 0
    for pid in ssh:
        fields = read("/proc/%d/statm" % pid).split()
        rss += int(fields[1]) * PAGE if len(fields) > 1 else 0
    peak_ssh, most_ssh = max(peak_ssh, rss), max(most_ssh, len(ssh))
    # Reap whatever ended: the command, and the masters that moved here.
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            pid = 0
        if pid == 0:
            break
        if pid == command:
            wall, code = time.monotonic() - start, os.waitstatus_to_exitcode(status)
    if code is not None and (not ssh or time.monotonic() - start > wall + 30):
        break
    time.sleep(interval)
cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
print("%.3f %.2f %.1f %.1f %d %d" % (wall, cpu.ru_utime + cpu.ru_stime, peak_own / MIB, peak_ssh / MIB, most_ssh, code))
