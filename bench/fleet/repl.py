#!/usr/bin/python3
"""Drives cfi-sh's interactive shell through a pseudo-terminal and times two entries.

Usage: repl.py TIMEOUT LINE COMMAND [ARG…]
COMMAND is cfi-sh without a runbook or -c (the shell: it needs a terminal). Waits for its
prompt `cfi> `, sends LINE, waits for the entry's recap and the prompt after it, sends LINE
again, the same, then `:quit`. Prints one line: the first and the second entry's latency in
seconds (from sending the line to the prompt after its recap) and the shell's exit code.
Exits 1, saying what it last saw, when a prompt does not come within TIMEOUT seconds.
"""

import fcntl
import os
import pty
import select
import struct
import sys
import termios
import time

timeout, line, argv = float(sys.argv[1]), sys.argv[2], sys.argv[3:]
PROMPT = b"cfi> "

pid, fd = pty.fork()
if pid == 0:
    os.environ["TERM"] = "xterm-256color"
    os.execvp(argv[0], argv)
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
seen = b""


def expect(*marks):
    """Reads until the marks have appeared in order in what came since the last call."""
    global seen
    seen, deadline, at = b"", time.monotonic() + timeout, 0
    for mark in marks:
        while (found := seen.find(mark, at)) < 0:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                sys.exit("repl.py: no %r within %g s; last output: %r" % (mark, timeout, seen[-300:]))
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                sys.exit("repl.py: the shell ended before %r; last output: %r" % (mark, seen[-300:]))
            seen += chunk
        at = found + len(mark)


def entry():
    start = time.monotonic()
    os.write(fd, line.encode() + b"\r")
    expect(b"recap", PROMPT)
    return time.monotonic() - start


expect(PROMPT)
first = entry()
second = entry()
os.write(fd, b":quit\r")
deadline = time.monotonic() + timeout
while time.monotonic() < deadline:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    if select.select([fd], [], [], 0.1)[0]:
        try:
            os.read(fd, 65536)
        except OSError:
            pass
else:
    os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
print("%.3f %.3f %d" % (first, second, os.waitstatus_to_exitcode(status)))
