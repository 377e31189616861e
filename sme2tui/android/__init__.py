"""The Android device layer: an ADB server client, device facts, safe command lines and a device session.

Talks to an ADB server through adbutils (never starting one itself), so it works with a local server, a
remote lab's server, or the loopback test double in tests/adb_double. No Textual, no torch.

Names are resolved lazily: importing adbutils costs ~0.2 s (it pulls in PIL), which commands that only
need `facts` or `errors` (a manifest writer, `--help`) should not pay.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sme2tui.android.client import AndroidClient, DeviceEntry, Timeouts
    from sme2tui.android.endpoint import AdbEndpoint
    from sme2tui.android.errors import AndroidDeviceError, Fault
    from sme2tui.android.facts import CoreInfo, DeviceFacts
    from sme2tui.android.report import list_devices_report, render_devices_text
    from sme2tui.android.session import TOOL_DIR, DeviceSession, RunResult

_WHERE = {
    "AdbEndpoint": "endpoint",
    "AndroidClient": "client",
    "DeviceEntry": "client",
    "Timeouts": "client",
    "AndroidDeviceError": "errors",
    "Fault": "errors",
    "CoreInfo": "facts",
    "DeviceFacts": "facts",
    "list_devices_report": "report",
    "render_devices_text": "report",
    "TOOL_DIR": "session",
    "DeviceSession": "session",
    "RunResult": "session",
}

__all__ = [
    "TOOL_DIR",
    "AdbEndpoint",
    "AndroidClient",
    "AndroidDeviceError",
    "CoreInfo",
    "DeviceEntry",
    "DeviceFacts",
    "DeviceSession",
    "Fault",
    "RunResult",
    "Timeouts",
    "list_devices_report",
    "render_devices_text",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
