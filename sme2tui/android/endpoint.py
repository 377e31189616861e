"""Where an ADB server listens (`HOST:PORT`, `tcp:HOST:PORT`, adb's environment variables), without importing
adbutils: the doctor and `--help` need this much and nothing more."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sme2tui.android.errors import AndroidDeviceError, Fault

if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5037


@dataclass(frozen=True)
class AdbEndpoint:
    """Where the ADB server listens. A remote lab is just another endpoint."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> AdbEndpoint:
        """`HOST:PORT`, `tcp:HOST:PORT`, `tcp:PORT`, `PORT` or `[v6]:PORT`."""
        raw = text.strip()
        spec = raw.removeprefix("tcp:")
        m = re.fullmatch(
            r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\s]*)):(?P<port>[0-9]{1,6})|(?P<only>[0-9]{1,6})", spec
        )
        if not m:
            raise AndroidDeviceError(
                Fault.BAD_ENDPOINT,
                f"cannot read ADB server address {text[:80]!r}",
                fix="write it as HOST:PORT (e.g. 127.0.0.1:5037 or lab-host:5037) or tcp:HOST:PORT",
            )
        port = int(m.group("port") or m.group("only"))
        if not 0 < port < 65536:
            raise AndroidDeviceError(
                Fault.BAD_ENDPOINT, f"ADB server port {port} is out of range", fix="use a port 1-65535"
            )
        host = m.group("v6") or m.group("host") or DEFAULT_HOST
        return cls(host, port)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AdbEndpoint:
        """adb's own variables first (ADB_SERVER_SOCKET, ANDROID_ADB_SERVER_ADDRESS/PORT), then adbutils'."""
        env = os.environ if environ is None else environ
        if env.get("ADB_SERVER_SOCKET"):
            return cls.parse(env["ADB_SERVER_SOCKET"])
        host = env.get("ANDROID_ADB_SERVER_ADDRESS") or env.get("ANDROID_ADB_SERVER_HOST") or DEFAULT_HOST
        port_text = env.get("ANDROID_ADB_SERVER_PORT") or str(DEFAULT_PORT)
        if not re.fullmatch(r"[0-9]{1,6}", port_text):
            raise AndroidDeviceError(
                Fault.BAD_ENDPOINT,
                f"ANDROID_ADB_SERVER_PORT={port_text[:20]!r} is not a port number",
                where="environment",
                fix="set it to a number such as 5037, or unset it",
            )
        return cls.parse(f"[{host}]:{port_text}" if ":" in host else f"{host}:{port_text}")
