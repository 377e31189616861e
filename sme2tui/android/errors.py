"""Every way talking to a phone can fail, as one `DeviceError` subclass with a machine-readable `kind`.

Callers branch on `kind` (retry on CONNECTION_LOST, stop the run on GONE, ...); people read `what`/`fix`.
"""

from __future__ import annotations

from enum import StrEnum

from sme2tui.errors import DeviceError


class Fault(StrEnum):
    BAD_ENDPOINT = "bad-endpoint"  # an ADB server address that does not parse
    NO_SERVER = "no-server"  # nothing answers at the ADB server address
    CONNECT_FAILED = "connect-failed"  # `adb connect host:port` was refused
    NO_DEVICE = "no-device"
    SEVERAL_DEVICES = "several-devices"  # more than one device and no serial chosen
    NOT_FOUND = "not-found"  # the chosen serial is not listed
    UNAUTHORIZED = "unauthorized"  # the RSA key prompt was not accepted
    OFFLINE = "offline"
    UNSUPPORTED = "unsupported"  # the device lacks something we need (e.g. shell_v2)
    GONE = "gone"  # the device vanished during an operation
    CONNECTION_LOST = "connection-lost"  # the connection dropped but the device is still listed
    TIMEOUT = "timeout"
    KILLED_BY_SIGNAL = "killed-by-signal"
    COMMAND_FAILED = "command-failed"
    STORAGE_FULL = "storage-full"
    REMOTE_MISSING = "remote-missing"  # a file to pull does not exist on the device
    TRANSFER_FAILED = "transfer-failed"  # adbd refused a push/pull for another reason
    UNSAFE = "unsafe"  # a path or argument we refuse to send (outside the tool dir, NUL, ...)
    PROTOCOL = "protocol"  # the server answered something that is not ADB
    OVERSIZED = "oversized"  # the device sent far more than a real one would (huge output, endless stream)
    IMPLAUSIBLE = "implausible"  # the device reported a value no real device has (a 5000-digit clock)


class AndroidDeviceError(DeviceError):
    """A `DeviceError` that also says which `Fault` it is and during which phase (push, run, pull...)."""

    def __init__(
        self,
        kind: Fault,
        what: str,
        *,
        where: str | None = None,
        fix: str | None = None,
        phase: str | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(what, where=where, fix=fix)
        self.kind = kind
        self.phase = phase
        # Raw evidence (adb's own message, the tail of stderr): for logs and --json, not the headline.
        self.detail = detail

    def to_dict(self) -> dict[str, str | int | None]:
        data = super().to_dict()
        data.update(kind=self.kind.value, phase=self.phase, detail=self.detail)
        return data
