"""Ready-made labs for tests. Import the context manager and wrap it in a local pytest fixture:

    @pytest.fixture
    def lab(tmp_path: Path) -> Iterator[Lab]:
        with double_lab(tmp_path) as lab:
            yield lab

(Kept out of a root conftest.py on purpose: other test suites share tests/.)
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tests.adb_double.device import EMULATOR, SME1_ONLY, SME2_PHONE, FakeDevice
from tests.adb_double.server import AdbDoubleServer

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

SME2_SERIAL = "X300SME2A1"
SME1_SERIAL = "SME1REF0001"
EMULATOR_SERIAL = "emulator-5554"


@dataclass
class Lab:
    server: AdbDoubleServer
    base: Path

    def add(self, fixture: str, serial: str, *, state: str = "device") -> FakeDevice:
        return self.server.add_device(FakeDevice.from_fixture(fixture, serial, self.base, state=state))

    @property
    def port(self) -> int:
        return self.server.port


@contextmanager
def double_lab(tmp_path: Path, *devices: tuple[str, str], version: int = 41) -> Iterator[Lab]:
    """A started server holding `devices` ((fixture, serial) pairs); stopped on exit, whatever happens."""
    server = AdbDoubleServer(version=version, io_timeout=10.0)
    server.start()
    try:
        lab = Lab(server, tmp_path / f"devices-{server.port}")
        lab.base.mkdir(parents=True)
        for fixture, serial in devices:
            lab.add(fixture, serial)
        yield lab
    finally:
        server.stop()


STANDARD_DEVICES = ((SME2_PHONE, SME2_SERIAL), (SME1_ONLY, SME1_SERIAL), (EMULATOR, EMULATOR_SERIAL))
