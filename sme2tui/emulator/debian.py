"""Fetch a static `qemu-aarch64` from Debian unstable's `qemu-user` package into the cache, without touching
the system: a private apt source list, lists and archive folders, then `apt-get download` and `dpkg-deb`.

Integrity: apt verifies the signed `InRelease` with Debian's archive keyring, the package index against it, and
the .deb against the index's SHA256; the SHA256 is checked here once more and recorded. Only the one binary is
unpacked; the 72 MB package and the 20 MB index are deleted afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sme2tui.errors import EnvironmentProblem
from sme2tui.events import Event, LogLine
from sme2tui.fileio import sha256_file
from sme2tui.runners.proc import CommandFailed, stream_command

if TYPE_CHECKING:
    import threading
    from collections.abc import Generator

MIRROR = "http://deb.debian.org/debian"
SUITE = "sid"
PACKAGE = "qemu-user"
MEMBER = "./usr/bin/qemu-aarch64"
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
ELSEWHERE = ("install a QEMU 10.1 or newer with user mode yourself and put `qemu-aarch64` on PATH: Ubuntu 25.10+ "
             "`apt-get install qemu-user`, Fedora 43+ `dnf install qemu-user`, Arch `pacman -S qemu-user`; "
             "macOS has no QEMU user mode (use a Linux machine or VM)")


def can_fetch() -> str | None:
    """Why this machine cannot fetch from Debian (None when it can)."""
    missing = [tool for tool in ("apt-get", "apt-cache", "dpkg-deb") if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not found (not a Debian-family system)"
    if not KEYRING.is_file():
        return f"Debian's archive keyring is missing ({KEYRING})"
    return None


def _apt_options(work: Path) -> list[str]:
    options = [
        "-o", f"Dir::Etc::sourcelist={work / 'sources.list'}",
        "-o", "Dir::Etc::sourceparts=-",
        "-o", f"Dir::State::Lists={work / 'lists'}",
        "-o", f"Dir::Cache={work / 'cache'}",
        "-o", "APT::Get::List-Cleanup=0",
        "-o", "Acquire::Languages=none",
        "-o", "APT::Architecture=amd64",
    ]
    if os.geteuid() == 0:
        # apt drops to the `_apt` user for downloads, who cannot write into a root-owned cache folder.
        options += ["-o", "APT::Sandbox::User=root"]
    return options


def _stream(argv: list[str], cwd: Path, cancel: threading.Event | None, what: str) -> Generator[Event, None, None]:
    try:
        yield from stream_command(argv, cwd=cwd, cancel=cancel, source="apt")
    except CommandFailed as failed:
        raise EnvironmentProblem(f"{what} failed (exit {failed.returncode}): {(failed.tail or ['no output'])[-1]}",
                                 where=" ".join(argv[:2]),
                                 fix="check the network (deb.debian.org must be reachable) and retry; "
                                 f"or {ELSEWHERE}") from failed


def _index_entry(work: Path) -> dict[str, str]:
    result = subprocess.run(["apt-cache", *_apt_options(work), "show", PACKAGE], capture_output=True, text=True,
                            timeout=120, check=False)
    entry: dict[str, str] = {}
    for line in result.stdout.splitlines():
        if not line.strip():
            break  # the first (newest) stanza only
        key, sep, value = line.partition(":")
        if sep and not line.startswith(" "):
            entry[key.strip()] = value.strip()
    if "SHA256" not in entry:
        raise EnvironmentProblem(f"Debian {SUITE}'s index has no {PACKAGE}", where=MIRROR,
                                 fix=f"retry later; or {ELSEWHERE}")
    return entry


def fetch_qemu(dest_dir: Path, cancel: threading.Event | None = None) -> Generator[Event, None, dict[str, Any]]:
    """Download and unpack `qemu-aarch64` into `dest_dir/qemu-<version>/`; returns what was fetched."""
    reason = can_fetch()
    if reason:
        raise EnvironmentProblem(f"cannot fetch QEMU from Debian: {reason}", where="this system", fix=ELSEWHERE)
    work = dest_dir / "apt-work"
    shutil.rmtree(work, ignore_errors=True)
    for sub in ("lists/partial", "cache/archives/partial"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    (work / "sources.list").write_text(f"deb [signed-by={KEYRING}] {MIRROR} {SUITE} main\n")
    try:
        yield LogLine("build", f"reading Debian {SUITE}'s signed package index (private apt lists, system untouched)",
                      source="apt")
        yield from _stream(["apt-get", *_apt_options(work), "update"], work, cancel, "apt-get update")
        entry = _index_entry(work)
        yield LogLine("build", f"downloading {PACKAGE} {entry.get('Version', '?')} "
                      f"({int(entry.get('Size', '0')) // 2**20} MiB)", source="apt")
        yield from _stream(["apt-get", *_apt_options(work), "download", PACKAGE], work, cancel, "apt-get download")
        debs = sorted(work.glob(f"{PACKAGE}_*.deb"))
        if not debs:
            raise EnvironmentProblem("apt-get download left no package file", where=str(work),
                                     fix=f"retry; or {ELSEWHERE}")
        digest = sha256_file(debs[0])
        if digest != entry["SHA256"]:
            raise EnvironmentProblem(f"{debs[0].name} does not match Debian's signed index (sha256 {digest[:16]}… "
                                     f"≠ {entry['SHA256'][:16]}…)", where=str(debs[0]),
                                     fix="retry (a broken mirror or proxy); the file was not used")
        target = dest_dir / f"qemu-{entry['Version'].split(':')[-1]}"
        binary = _unpack(debs[0], target)
        return {"path": str(binary), "package": PACKAGE, "version": entry["Version"], "suite": SUITE,
                "mirror": MIRROR, "deb": debs[0].name, "deb_sha256": digest,
                "verified": "apt checked InRelease (Debian archive keyring), the Packages index and the .deb; "
                "sha256 re-checked against the index"}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _unpack(deb: Path, target: Path) -> Path:
    """Extract only qemu-aarch64 from the package's data archive (streamed through dpkg-deb)."""
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    found = False
    with tarfile.open(fileobj=proc.stdout, mode="r|") as archive:
        for member in archive:
            if member.name == MEMBER and member.isfile():
                source = archive.extractfile(member)
                assert source is not None
                with (partial / "qemu-aarch64").open("wb") as out:
                    shutil.copyfileobj(source, out)
                found = True
                break
    proc.stdout.close()
    proc.kill()
    proc.wait()
    if not found:
        shutil.rmtree(partial, ignore_errors=True)
        raise EnvironmentProblem(f"{deb.name} has no {MEMBER}", where=str(deb), fix=ELSEWHERE)
    (partial / "qemu-aarch64").chmod(0o755)
    shutil.rmtree(target, ignore_errors=True)
    partial.replace(target)
    return target / "qemu-aarch64"
