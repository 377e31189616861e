"""Reaching an ADB server (local or a remote lab's) and choosing a device on it, through adbutils.

Two deliberate differences from adbutils' defaults:
- adbutils runs `adb start-server` (its bundled adb!) whenever nothing listens on the port. We never do:
  starting a server behind someone's back hides a wrong port, and in tests it would talk to real USB.
  A missing server is an error that says how to start one.
- Every socket gets a timeout: adbutils' default is ten minutes or none at all.
"""

from __future__ import annotations

import os
import re
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from adbutils import AdbClient, AdbConnection, AdbDevice, AdbError, AdbTimeout

from sme2tui.android import wire
from sme2tui.android.endpoint import AdbEndpoint
from sme2tui.android.errors import AndroidDeviceError, Fault

if TYPE_CHECKING:
    from collections.abc import Mapping

START_SERVER_FIX = (
    "start one with `adb start-server` (Android platform-tools), or point sme2tui at a running server: "
    "ADB_SERVER_SOCKET=tcp:HOST:PORT, ANDROID_ADB_SERVER_ADDRESS/ANDROID_ADB_SERVER_PORT, or the adb "
    "server setting in the config"
)
UNAUTHORIZED_FIX = (
    "unlock the phone and accept the 'Allow USB debugging?' prompt (tick 'Always allow from this "
    "computer'); no prompt? replug the cable, or revoke USB debugging authorizations and run "
    "`adb kill-server`"
)
OFFLINE_FIX = "replug the cable or run `adb reconnect`; if it stays offline, `adb kill-server` then `adb devices`"


@dataclass(frozen=True)
class Timeouts:
    """Seconds. `transfer` bounds silence on a push/pull socket, not the whole transfer."""

    connect: float = 3.0
    query: float = 15.0
    transfer: float = 120.0
    run: float = 3600.0
    settle: float = 3.0  # after a cut: how long a device may stay "offline" before we call it that


@dataclass(frozen=True)
class DeviceEntry:
    """One line of `adb devices -l`."""

    serial: str
    state: str
    tags: dict[str, str] = field(default_factory=dict)


class _NoSpawnConnection(AdbConnection):  # type: ignore[misc]  # adbutils ships no type information
    def _safe_connect(self) -> socket.socket:
        # adbutils falls back to `adb start-server` here; we report the missing server instead.
        sock: socket.socket = self._create_socket()
        return sock


class _Adb(AdbClient):  # type: ignore[misc]
    def __init__(self, host: str, port: int, io_timeout: float) -> None:
        super().__init__(host, port, socket_timeout=io_timeout)
        self._io_timeout = io_timeout

    def make_connection(self, timeout: float | None = None) -> AdbConnection:
        conn = _NoSpawnConnection(self.host, self.port)
        conn.conn.settimeout(timeout or self._io_timeout)
        return conn


def parse_device_listing(short: str, long: str = "") -> list[DeviceEntry]:
    """Entries from `host:devices` (`SERIAL\tSTATE` lines) with tags from `host:devices-l`, matched by serial.

    A long line is `SERIAL` padded to 22 columns, a space, `STATE`, then ` key:value` tags ending with
    `transport_id:N`; with spaces allowed in serials only the short listing says where a serial ends. A
    device that appears between the two requests simply has no tags."""
    entries: list[tuple[str, str]] = []
    for line in short.split("\n"):
        serial, tab, state = line.rpartition("\t")
        if tab and serial:
            entries.append((serial, state.strip()))
    by_length = sorted(entries, key=lambda e: len(e[0]), reverse=True)
    tags: dict[str, dict[str, str]] = {}
    for line in long.split("\n"):
        for serial, state in by_length:  # the longest serial that fits: "a b" before "a"
            rest = line[len(serial) :] if line.startswith(serial) else ""
            m = re.match(r" +" + re.escape(state) + r"(?: |$)", rest)
            if m:
                tags.setdefault(serial, _tags(rest[m.end() :]))
                break
    return [DeviceEntry(serial, state, tags.get(serial, {})) for serial, state in entries]


def _tags(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for word in text.split():
        key, sep, value = word.partition(":")
        if sep and key.isidentifier() and len(found) < 32:
            found[key] = value[:200]
    return found


def readiness_error(serial: str, state: str) -> AndroidDeviceError | None:
    """None when a device in `state` takes commands; otherwise the error that says how to make it ready."""
    if state == "device":
        return None
    if state == "unauthorized":
        return AndroidDeviceError(
            Fault.UNAUTHORIZED, f"device {serial} has not authorized this computer", where=serial,
            fix=UNAUTHORIZED_FIX,
        )  # fmt: skip
    if state == "offline":
        return AndroidDeviceError(Fault.OFFLINE, f"device {serial} is offline", where=serial, fix=OFFLINE_FIX)
    return AndroidDeviceError(
        Fault.OFFLINE,
        f"device {serial} is in state {state!r}, not ready for commands",
        where=serial,
        fix="boot it into Android (not recovery/bootloader/sideload) and check `adb devices`",
    )


def _is_cut(exc: BaseException) -> bool:
    """A connection that ended early (as opposed to adb saying no)."""
    if isinstance(exc, EOFError | ConnectionError):
        return True
    text = str(exc)
    return isinstance(exc, AdbError) and ("Unknown data: b''" in text or "connection closed" in text)


class AndroidClient:
    """A connection-less handle on one ADB server; every call opens its own short-lived socket."""

    def __init__(
        self,
        endpoint: AdbEndpoint | str | None = None,
        *,
        timeouts: Timeouts | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        if isinstance(endpoint, str):
            endpoint = AdbEndpoint.parse(endpoint)
        self.endpoint = endpoint or AdbEndpoint.from_env(environ)
        self.timeouts = timeouts or Timeouts()
        self._environ = os.environ if environ is None else environ
        self.adb = _Adb(self.endpoint.host, self.endpoint.port, self.timeouts.query)

    # ---- server -------------------------------------------------------------------------------------
    def server_version(self) -> int:
        """The server's protocol version (41 for adb 1.0.41); DeviceError(NO_SERVER) if nobody answers."""
        self._probe()
        try:
            version: int = self.adb.server_version()
        except (AdbError, OSError, EOFError, ValueError) as exc:
            raise self.translate(exc, phase="server") from exc
        return version

    def _probe(self) -> None:
        try:
            with socket.create_connection((self.endpoint.host, self.endpoint.port), timeout=self.timeouts.connect):
                pass
        except OSError as exc:
            raise self._no_server(str(exc)) from exc

    def _no_server(self, detail: str) -> AndroidDeviceError:
        return AndroidDeviceError(
            Fault.NO_SERVER,
            f"no ADB server answers at {self.endpoint}",
            where=str(self.endpoint),
            fix=START_SERVER_FIX,
            detail=detail,
        )

    # ---- devices ------------------------------------------------------------------------------------
    def list_devices(self) -> list[DeviceEntry]:
        """Every device the server knows, in any state (device, unauthorized, offline, ...).

        Serials may hold spaces or quotes and states may be several words ("no permissions (…)"), so
        serial and state come from `host:devices` (tab-separated), and only the tags from `host:devices-l`
        (whose columns are padded with spaces)."""
        self._probe()
        short = self._host_text("host:devices", "list")
        long = self._host_text("host:devices-l", "list")
        return parse_device_listing(short, long)

    def _host_text(self, service: str, phase: str) -> str:
        """One host service's text answer (`host:devices` ...)."""
        try:
            conn = self.adb.make_connection()
            try:
                wire.request(conn.conn, service)
                return wire.read_block(conn.conn).decode(errors="replace")
            finally:
                conn.close()
        except wire.Refused as exc:
            raise self.translate(AdbError(str(exc)), phase=phase) from exc
        except (AdbError, OSError, EOFError) as exc:
            raise self.translate(exc, phase=phase) from exc

    def state_of(self, serial: str) -> str | None:
        """The listed state of `serial`, or None when it is not listed."""
        for entry in self.list_devices():
            if entry.serial == serial:
                return entry.state
        return None

    def connect(self, address: str) -> str:
        """`adb connect HOST:PORT` (a phone on Wi-Fi or in a lab); returns the serial to use."""
        target = AdbEndpoint.parse(address)
        self._probe()
        try:
            answer: str = self.adb.connect(str(target), timeout=self.timeouts.query)
        except (AdbError, OSError, EOFError) as exc:
            raise self.translate(exc, phase="connect") from exc
        if not answer.startswith(("connected to", "already connected to")):
            # adb 29+ waits for the handshake: "failed to authenticate" (the phone has not accepted this
            # computer) or "failed to connect" after 10 s while it stays listed offline. The listed state
            # says what a person should do; "could not connect" would send them to check the network.
            state = self.state_of(str(target))
            not_ready = readiness_error(str(target), state) if state is not None else None
            if not_ready is not None:
                not_ready.detail = answer
                raise not_ready
            raise AndroidDeviceError(
                Fault.CONNECT_FAILED,
                f"the ADB server could not connect to {target}",
                where=str(self.endpoint),
                fix="check the device's IP and port, that wireless debugging (or `adb tcpip 5555`) is on, "
                "and that the server's network can reach it",
                detail=answer,
            )
        return str(target)

    def disconnect(self, address: str) -> None:
        self._probe()
        try:
            self.adb.disconnect(str(AdbEndpoint.parse(address)), raise_error=True)
        except AdbError as exc:
            if "no such device" in str(exc):
                raise AndroidDeviceError(
                    Fault.NOT_FOUND, f"{address} is not connected", where=str(self.endpoint), detail=str(exc),
                    fix="nothing to disconnect; `adb devices` lists what is connected",
                ) from exc  # fmt: skip
            raise self.translate(exc, serial=address, phase="disconnect") from exc
        except (OSError, EOFError) as exc:
            raise self.translate(exc, serial=address, phase="disconnect") from exc

    def select(self, serial: str | None = None) -> str:
        """Choose the device: `serial`, else $ANDROID_SERIAL, else the only one; it must be ready."""
        chosen = serial or self._environ.get("ANDROID_SERIAL") or None
        entries = self.list_devices()
        listing = ", ".join(f"{e.serial} ({e.state})" for e in entries) or "none"
        if chosen is None:
            if not entries:
                raise AndroidDeviceError(
                    Fault.NO_DEVICE,
                    "no Android device is connected",
                    where=f"ADB server {self.endpoint}",
                    fix="plug in a phone with USB debugging on (Settings → Developer options), or "
                    "`adb connect HOST:PORT` for a network device; check with `adb devices`",
                )
            if len(entries) > 1:
                raise AndroidDeviceError(
                    Fault.SEVERAL_DEVICES,
                    f"{len(entries)} devices are connected and none was chosen",
                    where=f"ADB server {self.endpoint}: {listing}",
                    fix="pick one: set `target.serial` (or `target.serials`) in the config, or export ANDROID_SERIAL",
                )
            chosen = entries[0].serial
        entry = next((e for e in entries if e.serial == chosen), None)
        if entry is None:
            raise AndroidDeviceError(
                Fault.NOT_FOUND,
                f"device {chosen!r} is not connected",
                where=f"ADB server {self.endpoint}: {listing}",
                fix="check the serial against `adb devices` (a network device needs `adb connect` first)",
            )
        self._require_ready(entry.serial, entry.state)
        return entry.serial

    def _require_ready(self, serial: str, state: str) -> None:
        error = readiness_error(serial, state)
        if error is not None:
            raise error

    def device(self, serial: str) -> AdbDevice:
        """The adbutils handle for `serial` (no round trip; errors surface on first use)."""
        return AdbDevice(self.adb, serial=serial)

    def open_transport(self, serial: str, timeout: float) -> AdbConnection:
        """A socket already switched to `serial`'s transport, ready for one device service."""
        self._probe()
        conn: AdbConnection = self.device(serial).open_transport(timeout=timeout)
        return conn

    # ---- errors -------------------------------------------------------------------------------------
    def translate(self, exc: BaseException, *, serial: str | None = None, phase: str) -> AndroidDeviceError:
        """Turn an adbutils/socket exception into a classified error, asking the server what happened."""
        if isinstance(exc, AndroidDeviceError):
            return exc
        text = str(exc)
        where = serial or str(self.endpoint)
        if isinstance(exc, ConnectionRefusedError) or "connect to adb server" in text:
            return self._no_server(text)
        if isinstance(exc, wire.Garbled):
            return AndroidDeviceError(
                Fault.PROTOCOL, f"the device answered something adbd never sends during {phase}", where=where,
                phase=phase, detail=text,
                fix="retry; if it repeats, this device (or whatever answers at the server address) does not "
                "behave like an Android phone: check it with `adb shell` or use another one",
            )  # fmt: skip
        if isinstance(exc, AdbTimeout | TimeoutError):
            return AndroidDeviceError(
                Fault.TIMEOUT, f"{phase} timed out", where=where, phase=phase, detail=text,
                fix="raise the timeout for this step, or check that the device is awake and not hung",
            )  # fmt: skip
        if "unauthorized" in text:
            return AndroidDeviceError(
                Fault.UNAUTHORIZED, f"device {serial} has not authorized this computer", where=where,
                fix=UNAUTHORIZED_FIX, phase=phase, detail=text,
            )  # fmt: skip
        if "offline" in text:
            return AndroidDeviceError(
                Fault.OFFLINE, f"device {serial} is offline", where=where, fix=OFFLINE_FIX, phase=phase,
                detail=text,
            )  # fmt: skip
        if "not found" in text and serial is not None:
            return self._gone(serial, phase, text)
        if _is_cut(exc) or isinstance(exc, OSError):
            return self._after_cut(serial, phase, text)
        return AndroidDeviceError(
            Fault.PROTOCOL, f"unexpected answer from the ADB server during {phase}", where=where,
            phase=phase, detail=text, fix="check that the address is an ADB server (`adb devices` works)",
        )  # fmt: skip

    def _gone(self, serial: str, phase: str, detail: str) -> AndroidDeviceError:
        return AndroidDeviceError(
            Fault.GONE, f"device {serial} disconnected during {phase}", where=serial, phase=phase,
            detail=detail,
            fix="reconnect it (cable, Wi-Fi, `adb connect`) and resume; completed work is kept",
        )  # fmt: skip

    def _settled_state(self, serial: str) -> str | None:
        """The device's state once it stops being "offline", or "offline" after `Timeouts.settle` seconds.

        The real server lists a network device as offline while it reconnects after a cut; a moment later
        it is back ("device"), waiting for authorization ("unauthorized") or dropped (not listed). Asking
        once, at once, would call every blip "offline" and hide the reason a person can act on."""
        deadline = time.monotonic() + self.timeouts.settle
        while True:
            state = self.state_of(serial)
            if state != "offline" or time.monotonic() >= deadline:
                return state
            time.sleep(0.1)

    def _after_cut(self, serial: str | None, phase: str, detail: str) -> AndroidDeviceError:
        """The socket died: was it the device (gone/offline/unauthorized), the server, or just this connection?"""
        try:
            state = self._settled_state(serial) if serial is not None else "device"
        except AndroidDeviceError as exc:
            if exc.kind is Fault.NO_SERVER:
                return self._no_server(detail)
            state = "device"
        if serial is not None and state is None:
            return self._gone(serial, phase, detail)
        if serial is not None and state not in (None, "device"):
            try:
                self._require_ready(serial, state)
            except AndroidDeviceError as exc:
                return AndroidDeviceError(
                    exc.kind, f"{exc.what} (it changed during {phase})", where=serial, fix=exc.fix,
                    phase=phase, detail=detail,
                )  # fmt: skip
        return AndroidDeviceError(
            Fault.CONNECTION_LOST, f"the ADB connection dropped during {phase}",
            where=serial or str(self.endpoint), phase=phase, detail=detail,
            fix="retry; if it keeps happening check the cable/USB hub or the network to the lab server",
        )  # fmt: skip
