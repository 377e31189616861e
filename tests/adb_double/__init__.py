"""A loopback ADB host-protocol server with fake devices, for testing `sme2tui.android` over real adbutils.

    from tests.adb_double import AdbDoubleServer, FakeDevice, SME2_PHONE
    with AdbDoubleServer() as server:
        server.add_device(FakeDevice.from_fixture(SME2_PHONE, "X300SME2", tmp_path))
        client = AdbClient("127.0.0.1", server.port)   # never the default 5037

See device.py for how commands run "on the device", server.py for the services spoken.
"""

from tests.adb_double.device import (
    EMULATOR,
    FIXTURES_DIR,
    SME1_ONLY,
    SME2_PHONE,
    FakeDevice,
    Faults,
    ReceivedFile,
    ShellFault,
    TransferFault,
)
from tests.adb_double.server import AdbDoubleServer

__all__ = [
    "EMULATOR",
    "FIXTURES_DIR",
    "SME1_ONLY",
    "SME2_PHONE",
    "AdbDoubleServer",
    "FakeDevice",
    "Faults",
    "ReceivedFile",
    "ShellFault",
    "TransferFault",
]
