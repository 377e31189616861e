"""Hand-built ETDumps (plain flatbuffers, forward offsets only) for shapes no runtime writes.

`shared`: n event slots that all point at one Method::execute event table — 4 bytes of file per "iteration",
the amplification a crafted file can attempt. `distinct`: n operators, each with its own tables, then a total —
the smallest honest layout, which must still be read. (From the red-team finding that the shared form cost
36 bytes of memory per file byte.)
"""

from __future__ import annotations

import struct

import numpy as np


def build(mode: str, n: int) -> bytes:
    b = bytearray(struct.pack("<I4s", 0, b"ED00"))

    def pad() -> None:
        while len(b) % 4:
            b.append(0)

    vroot = len(b)
    b += struct.pack("<4H", 8, 12, 4, 8)
    vrun = len(b)
    b += struct.pack("<6H", 12, 8, 0, 0, 0, 4)
    vevent = len(b)
    b += struct.pack("<4H", 6, 8, 4, 0)
    vprofile = len(b)
    b += struct.pack("<10H", 20, 28, 4, 0, 8, 0, 0, 0, 12, 20)
    root = len(b)
    b += struct.pack("<iII", root - vroot, 0, 0)
    struct.pack_into("<I", b, 0, root)
    runs = len(b)
    struct.pack_into("<I", b, root + 8, runs - (root + 8))
    b += struct.pack("<II", 1, 4)
    run = len(b)
    b += struct.pack("<iI", run - vrun, 0)
    events = len(b)
    struct.pack_into("<I", b, run + 4, events - (run + 4))
    if mode == "shared":
        b += struct.pack("<I", n)
        slots = len(b)
        b += bytes(4 * n)
        event = len(b)
        b += struct.pack("<iI", event - vevent, 4)
        profile = len(b)
        b += struct.pack("<iIiQQ", profile - vprofile, 24, 0, 1000, 2000)
        name = b"Method::execute"
        b += struct.pack("<I", len(name)) + name + b"\0"
        positions = slots + 4 * np.arange(n, dtype=np.int64)
        b[slots:slots + 4 * n] = (event - positions).astype("<u4").tobytes()
    elif mode == "distinct":
        rows = [(b"op%d" % i, i, 1000 + i, 1001 + i) for i in range(n)]
        rows.append((b"Method::execute", -1, 1000, 1000 + 2 * n + 10))
        b += struct.pack("<I", len(rows))
        slots = len(b)
        b += bytes(4 * len(rows))
        for index, (name, instruction, start, end) in enumerate(rows):
            event = len(b)
            struct.pack_into("<I", b, slots + 4 * index, event - (slots + 4 * index))
            b += struct.pack("<iI", event - vevent, 4)
            profile = len(b)
            b += struct.pack("<iIiQQ", profile - vprofile, 24, instruction, start, end)
            b += struct.pack("<I", len(name)) + name + b"\0"
            pad()
    else:
        raise ValueError(mode)
    return bytes(b)
