"""The Android device layer: an ADB server client, device facts, safe command lines and a device session.

Talks to an ADB server through adbutils (never starting one itself), so it works with a local server, a
remote lab's server, or the loopback test double in tests/adb_double. No Textual, no torch.
"""

from sme2tui.android.client import AdbEndpoint, AndroidClient, DeviceEntry, Timeouts
from sme2tui.android.errors import AndroidDeviceError, Fault
from sme2tui.android.facts import CoreInfo, DeviceFacts
from sme2tui.android.report import list_devices_report, render_devices_text
from sme2tui.android.session import TOOL_DIR, DeviceSession, RunResult

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
