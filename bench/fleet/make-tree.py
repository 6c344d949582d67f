#!/usr/bin/python3
"""Writes the pushed tree of bench/fleet/run: FILES files of random bytes, TOTAL bytes in all
(sizes spread log-normally, as in a real configuration tree: many small files, a few large),
in 36 directories; modes 0644 / 0755. The same tree every time (a fixed seed).

Usage: make-tree.py DIR FILES TOTAL
"""

import os
import random
import sys

root, files, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(42)
weights = [rng.lognormvariate(0, 1.2) for _ in range(files)]
scale = total / sum(weights)
sizes = [max(1, int(w * scale)) for w in weights]
sizes[-1] += total - sum(sizes)
for i, size in enumerate(sizes):
    directory = os.path.join(root, "d%02d" % (i % 12), "s%d" % (i % 3))
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "f%03d.dat" % i), "wb") as f:
        f.write(rng.randbytes(size))
for dirpath, dirs, names in os.walk(root):
    os.chmod(dirpath, 0o755)
    for name in names:
        os.chmod(os.path.join(dirpath, name), 0o644)
