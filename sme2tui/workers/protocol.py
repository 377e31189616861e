"""The worker side of the JSON-lines protocol: workers emit events on stdout, one per line.

Anything else a library prints goes to stderr (the worker redirects stdout at the fd level at start-up,
so C++ log lines cannot corrupt the stream).
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

from sme2tui.events import Event, to_json

_channel: TextIO | None = None


def open_channel() -> TextIO:
    """Keep a private copy of stdout for events and point fd 1 at stderr for everything else."""
    global _channel
    if _channel is None:
        sys.stdout.flush()
        private = os.dup(1)
        os.dup2(2, 1)
        _channel = os.fdopen(private, "w", buffering=1, encoding="utf-8")
        sys.stdout = sys.stderr
    return _channel


def emit(event: Event) -> None:
    channel = open_channel()
    channel.write(to_json(event) + "\n")
    channel.flush()
