"""Cells on Android phones over ADB: push what is missing, run pinned to the big cores, pull the ETDumps.

Per device, one cell at a time; several devices work in parallel (one thread each, events funnelled
back through a queue). A group's variants alternate between rounds (A B, B A, …) like on the host. Every
round records the thermal status before and after. A device fault fails the cell it hit with a classified
error; a lost device fails the rest of its cells the same way — completed cells are kept either way, and
`--resume` runs exactly what is missing.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sme2tui.config import AndroidTarget, RunConfig
from sme2tui.errors import ConfigError
from sme2tui.events import CellStatus, Checkpoint, Event, LogLine
from sme2tui.fileio import sha256_file
from sme2tui.run.cells import Cell, groups
from sme2tui.run.commands import flavour_of, round_overclaim, runner_argv, split_rounds
from sme2tui.run.folder import RunFolder, utc_now

if TYPE_CHECKING:
    from sme2tui.android.facts import DeviceFacts
    from sme2tui.android.session import DeviceSession

KERNEL_LOG = "kernel.log"  # the name the SME2 evidence reads in a cell folder (sme2tui.analysis.evidence)
TIMING_LIMIT = 16 << 20  # a timing JSON holds one number per iteration: 100k iterations are ~2 MiB
# Faults after which the device cannot take more cells in this run.
DEVICE_LOST = {"GONE", "UNAUTHORIZED", "OFFLINE", "NO_SERVER", "CONNECTION_LOST", "CONNECT_FAILED"}
ABI_ARCH = {"arm64-v8a": "arm64", "armeabi-v7a": "arm", "x86_64": "x86_64", "x86": "x86"}


@dataclass
class DeviceSlot:
    label: str  # serial, or serial@host:port for another ADB server
    serial: str
    session: DeviceSession
    facts: DeviceFacts
    cells: list[list[Cell]] = field(default_factory=list)  # groups assigned to this device


def android_runner(config: RunConfig, variant_name: str) -> Path:
    """The binary for a variant on Android: a built pair runner by name, or an explicit path."""
    from sme2tui.runners.pairs import find_pair_runner

    variant = config.variant(variant_name)
    where = f"variants[{[v.name for v in config.variants].index(variant_name)}].runner"
    if "/" in variant.runner:
        path = Path(variant.runner).expanduser()
        if not path.is_file():
            raise ConfigError(f"runner binary not found: {variant.runner}", where=where,
                              fix="build it with `sme2tui build android` or fix the path")
        return path.resolve()
    if variant.runner in ("auto", "native", "python"):
        raise ConfigError(f"variant `{variant_name}` uses runner `{variant.runner}`, which only exists on the host",
                          where=where, fix="name a built Android runner (sme2-on, sme2-off) or a binary path")
    binary = find_pair_runner(config.runners_path, "android", variant.runner)
    if binary is None:
        raise ConfigError(f"Android runner `{variant.runner}` is not built in {config.runners_path}", where=where,
                          fix=f"sme2tui setup executorch && sme2tui build android --variants {variant.runner}")
    return binary


def android_preflight(config: RunConfig) -> None:
    """Runners built and every device reachable, authorized and readable (its facts make sense) — before
    any export or run folder."""
    from sme2tui.android.client import AndroidClient, Timeouts
    from sme2tui.android.session import DeviceSession

    for variant in config.variants:
        android_runner(config, variant.name)
    assert isinstance(config.target, AndroidTarget)
    clients: dict[str | None, AndroidClient] = {}
    for serial, endpoint in _device_refs(config.target):
        client = clients.get(endpoint) or clients.setdefault(endpoint, AndroidClient(endpoint, timeouts=Timeouts()))
        for address in config.target.connect:
            client.connect(address)
        DeviceSession(client, client.select(serial), tool_dir=config.target.device_dir).facts()


def _device_refs(target: AndroidTarget) -> list[tuple[str | None, str | None]]:
    """(serial, endpoint) per requested device; serial None = pick the only/ANDROID_SERIAL device."""
    refs: list[tuple[str | None, str | None]] = []
    for text in target.serials:
        serial, _, endpoint = text.partition("@")
        refs.append((serial, endpoint or target.adb_server))
    if target.serial and target.serial not in [s for s, _ in refs]:
        refs.insert(0, (target.serial, target.adb_server))
    return refs or [(None, target.adb_server)]


def open_devices(target: AndroidTarget) -> list[DeviceSlot]:
    from sme2tui.android.client import AndroidClient, Timeouts
    from sme2tui.android.session import DeviceSession

    timeouts = Timeouts(run=target.timeout_s)
    clients: dict[str | None, AndroidClient] = {}
    slots = []
    for serial, endpoint in _device_refs(target):
        client = clients.get(endpoint) or clients.setdefault(endpoint, AndroidClient(endpoint, timeouts=timeouts))
        for address in target.connect:
            client.connect(address)
        chosen = client.select(serial)
        big = [int(c) for c in _mask_cores(target.cpu_mask)] if target.cpu_mask else None
        session = DeviceSession(client, chosen, timeouts=timeouts, big_cores=big, tool_dir=target.device_dir)
        label = chosen if endpoint == target.adb_server else f"{chosen}@{endpoint}"
        slots.append(DeviceSlot(label, chosen, session, session.facts()))
    return slots


def _mask_cores(mask: str) -> list[int]:
    value = int(mask, 16)
    return [i for i in range(64) if value >> i & 1]


def _check_arch(binary: Path, facts: DeviceFacts, target: AndroidTarget) -> str | None:
    """A problem sentence when the runner cannot run on this device's ABI (None when it can)."""
    from sme2tui.runners.binfmt import NotABinary, read_arch

    if target.allow_foreign_runner:
        return None
    try:
        arch = read_arch(binary).canonical
    except (NotABinary, OSError) as exc:
        return f"{binary.name} is not an executable program ({exc})"
    wanted = ABI_ARCH.get(facts.abi or "", facts.abi or "?")
    if arch == wanted:
        return None
    return f"{binary.name} is built for {arch}, but {facts.serial} runs {facts.abi}"


def _logs_to_android(binary: Path) -> bool:
    """Whether to collect the runner's Android log (logcat) after each round: yes for a kernel-log build
    (XNNPACK names its micro-kernels there on Android, the SME2 evidence), and for a runner without a
    build manifest (we cannot know; the log is cheap and often says why a run failed)."""
    from sme2tui.runners.manifest import read_manifest

    manifest = read_manifest(binary)
    return manifest is None or bool(manifest.get("kernel_log"))


def run_android(
    config: RunConfig,
    folder: RunFolder,
    cells: list[Cell],
    ptes: dict[str, Path],
    inputs: dict[str, list[str] | None],
    *,
    cancel: threading.Event | None,
) -> Generator[Event, None, int]:
    """Run `cells` on the configured devices; returns how many cells failed."""
    assert isinstance(config.target, AndroidTarget)
    target = config.target
    binaries = {c.id: android_runner(config, c.variant) for c in cells}
    for binary in set(binaries.values()):
        folder.record_runner(binary)
    slots = open_devices(target)
    devices = {s.label: s.facts.to_dict() for s in slots}
    folder.update(devices=devices, device=devices[slots[0].label])
    for slot in slots:
        yield from _device_checkpoints(config, slot)
    usable = []
    for slot in slots:
        problems = {p for c in cells if (p := _check_arch(binaries[c.id], slot.facts, target))}
        if problems:
            yield Checkpoint("run", "runner architecture", "fail", "; ".join(sorted(problems)),
                             "build the runners for Android (sme2tui build android): they must be arm64-v8a ELF",
                             subject=slot.label)
            continue
        if target.allow_foreign_runner:
            folder.add_warning(f"{slot.label}: allow_foreign_runner is on — the runner's architecture was not "
                               "checked against the device (test doubles only)")
        usable.append(slot)
    if not usable:
        for cell in cells:
            folder.set_cell(cell.id, status="failed", error={"kind": "UNSUPPORTED", "what": "no device can run "
                                                             "these runners (architecture mismatch)"})
        return len(cells)
    for index, group in enumerate(groups(cells)):
        usable[index % len(usable)].cells.append(group)

    events: queue.Queue[Event | None] = queue.Queue()
    stop = cancel or threading.Event()
    failures: list[int] = []
    threads = [threading.Thread(target=_device_worker, name=f"device-{s.label}", daemon=True,
                                args=(config, folder, s, binaries, ptes, inputs, events, stop, failures))
               for s in usable]
    for thread in threads:
        thread.start()
    finished = 0
    try:
        while finished < len(threads):
            try:
                event = events.get(timeout=0.2)
            except queue.Empty:
                continue
            if event is None:
                finished += 1
                continue
            yield event
    except BaseException:
        stop.set()  # the device threads stop after their current round...
        for slot in usable:  # ...and the round itself: adbd does not kill a command when its client leaves
            _kill_runners(slot)
        raise
    if cancel is not None and cancel.is_set():
        from sme2tui.errors import Interrupted

        raise Interrupted("cancelled", fix="resume with --resume RUN_DIR")
    return sum(failures)


def _kill_runners(slot: DeviceSlot) -> None:
    """Best effort, a few seconds at most: stop any runner sme2tui started on this device."""
    from sme2tui.android.errors import AndroidDeviceError

    with contextlib.suppress(AndroidDeviceError):  # an unreachable device: nothing more to do from here
        slot.session.run(["pkill", "-f", f"{slot.session.tool_dir}/runners/"], timeout=5)


def _device_checkpoints(config: RunConfig, slot: DeviceSlot) -> Iterator[Event]:
    facts = slot.facts
    claims = any(v.sme2 == "on" for v in config.variants)
    if facts.emulator:
        yield Checkpoint("run", "device SME2", "warn", f"{slot.label} is an emulator: {facts.sme_summary}",
                         "measure on a real SME2 phone; emulator numbers say nothing about SME2", subject=slot.label)
    elif facts.sme == "sme2":
        yield Checkpoint("run", "device SME2", "pass", f"{slot.label} ({facts.model}, {facts.soc}): "
                         f"{facts.sme_summary}", subject=slot.label)
    else:
        yield Checkpoint("run", "device SME2", "warn" if claims else "pass",
                         f"{slot.label} ({facts.model}): {facts.sme_summary}",
                         "this device cannot show SME2 speedups; use an Arm C1 phone (vivo X300, OPPO Find X9)"
                         if claims else "", subject=slot.label)
    if facts.thermal_status is not None and facts.thermal_status >= 2:
        yield Checkpoint("run", "thermal", "warn", f"{slot.label} starts at thermal status {facts.thermal_status}",
                         "let the phone cool down (and unplug fast charging) before measuring", subject=slot.label)


@dataclass
class _Upload:
    runner: str
    pte: str
    inputs: list[str] | None
    lib_dir: str


def _upload(slot: DeviceSlot, binary: Path, pte: Path, inputs: list[str] | None, variant: str,
            stats: dict[str, int]) -> _Upload:
    """Push what the cell needs into the tool folder, skipping files whose sha256 already matches."""
    session, base = slot.session, slot.session.tool_dir
    runner_dir = f"{base}/runners/{variant}"
    session.ensure_dir(runner_dir)
    stats["bytes"] += session.push_if_changed(binary, f"{runner_dir}/{binary.name}", mode=0o755)
    libcxx = binary.parent / "libc++_shared.so"
    if libcxx.is_file():  # NDK builds with ANDROID_STL=c++_shared need it beside the runner
        stats["bytes"] += session.push_if_changed(libcxx, f"{runner_dir}/libc++_shared.so")
    session.ensure_dir(f"{base}/programs")
    remote_pte = f"{base}/programs/{sha256_file(pte)[:16]}.pte"
    stats["bytes"] += session.push_if_changed(pte, remote_pte)
    remote_inputs = None
    if inputs:
        remote_inputs = []
        for local in map(Path, inputs):
            remote = f"{base}/inputs/{sha256_file(local)[:16]}.bin"
            session.ensure_dir(f"{base}/inputs")
            stats["bytes"] += session.push_if_changed(local, remote)
            remote_inputs.append(remote)
    return _Upload(f"{runner_dir}/{binary.name}", remote_pte, remote_inputs, runner_dir)


def _device_worker(config: RunConfig, folder: RunFolder, slot: DeviceSlot, binaries: dict[str, Path],
                   ptes: dict[str, Path], inputs: dict[str, list[str] | None], out: queue.Queue[Event | None],
                   stop: threading.Event, failures: list[int]) -> None:
    from sme2tui.android.errors import AndroidDeviceError

    assert isinstance(config.target, AndroidTarget)
    target = config.target
    stats = {"bytes": 0}
    failed = 0
    lost: AndroidDeviceError | None = None
    try:
        mask = slot.session.big_cores_mask(_mask_cores(target.cpu_mask) if target.cpu_mask else None)
        perf_on = slot.session.set_fixed_performance_mode(True) if target.fixed_performance_mode else False
        out.put(LogLine("run", f"{slot.label}: pinned to CPU mask {mask}"
                        + (", fixed performance mode on" if perf_on else ""), "info", slot.label))
        for group in slot.cells:
            if stop.is_set():
                break
            if lost is not None:
                for cell in group:
                    _fail(folder, cell, lost, slot, out, note="device lost earlier in this run")
                    failed += 1
                continue
            try:
                failed += _run_group(config, folder, slot, group, binaries, ptes, inputs, mask, stats, out, stop)
            except AndroidDeviceError as exc:
                if exc.kind.name in DEVICE_LOST:
                    lost = exc
                for cell in group:
                    if folder.manifest["cells"][cell.id].get("status") != "done":
                        _fail(folder, cell, exc, slot, out)
                        failed += 1
        if lost is None:
            if target.fixed_performance_mode:
                slot.session.restore()
            if target.cleanup:
                slot.session.cleanup()
    except AndroidDeviceError as exc:
        out.put(Checkpoint("run", "device", "fail", exc.what, exc.fix or "", subject=slot.label))
        for group in slot.cells:
            for cell in group:
                if folder.manifest["cells"][cell.id].get("status") not in ("done", "failed"):
                    _fail(folder, cell, exc, slot, out)
                    failed += 1
    except Exception as exc:  # a bug must not hang the consumer waiting for this thread's sentinel
        out.put(LogLine("run", f"{slot.label}: internal error {type(exc).__name__}: {exc}", "error", slot.label))
        failed += sum(len(g) for g in slot.cells)
    finally:
        with folder._lock:
            folder.manifest.setdefault("pushed_bytes", {})[slot.label] = stats["bytes"]
        folder.save()
        failures.append(failed)
        out.put(None)


def _fail(folder: RunFolder, cell: Cell, exc: Any, slot: DeviceSlot, out: queue.Queue[Event | None],
          note: str = "") -> None:
    error = exc.to_dict() if hasattr(exc, "to_dict") else {"what": str(exc)}
    if note:
        error["note"] = note
    folder.set_cell(cell.id, status="failed", device=slot.label, finished_utc=utc_now(), error=error)
    out.put(CellStatus(cell.id, "failed", f"{error.get('kind', 'error')}: {error.get('what', '')}"[:200]))


def _run_group(config: RunConfig, folder: RunFolder, slot: DeviceSlot, group: list[Cell], binaries: dict[str, Path],
               ptes: dict[str, Path], inputs: dict[str, list[str] | None], mask: str, stats: dict[str, int],
               out: queue.Queue[Event | None], stop: threading.Event) -> int:
    session = slot.session
    uploads = {c.id: _upload(slot, binaries[c.id], ptes[c.id], inputs[c.id], c.variant, stats) for c in group}
    android_log = {c.id: _logs_to_android(binaries[c.id]) for c in group}
    plan = split_rounds(config.iterations, config.rounds)
    records: dict[str, dict[str, Any]] = {}
    for cell in group:
        folder.cell_dir(cell).mkdir(parents=True, exist_ok=True)
        (folder.cell_dir(cell) / KERNEL_LOG).unlink(missing_ok=True)  # an earlier attempt's log is not this one's
        records[cell.id] = {"runner": f"android:{binaries[cell.id].name}", "device": slot.label, "cpu_mask": mask,
                            "threads": cell.threads, "warmup": config.warmup, "iterations": config.iterations,
                            "rounds": [], "warmup_ns": [], "iterations_ns": [],
                            "interleaved_with": [c.id for c in group if c is not cell]}
        folder.set_cell(cell.id, status="running", device=slot.label, runner=f"android:{binaries[cell.id].name}",
                        started_utc=utc_now(), warmup=config.warmup, iterations=config.iterations,
                        profile=config.profile, rounds=len(plan), cpu_mask=mask)
    out.put(LogLine("run", f"{slot.label}: {group[0].model}/{group[0].dtype}/t{group[0].threads}: "
                    f"{', '.join(c.variant for c in group)}, {len(plan)} round(s) alternating", "info", slot.label))
    failed: set[str] = set()
    done = dict.fromkeys(records, 0)
    for index, count in enumerate(plan):
        if stop.is_set():
            return len(failed)
        for cell in group if index % 2 == 0 else list(reversed(group)):
            if cell.id in failed:
                continue
            up, cell_dir = uploads[cell.id], folder.cell_dir(cell)
            remote_dir = f"{session.tool_dir}/cells/{cell.id}"
            session.ensure_dir(remote_dir, owned=True)
            flavour = flavour_of(binaries[cell.id].name)
            etdump = f"{remote_dir}/etdump-r{index}.etdp" if config.profile else None
            timing = f"{remote_dir}/timing-r{index}.json" if flavour == "sme2_runner" else None
            argv = runner_argv(flavour, up.runner, pte=up.pte, threads=cell.threads, warmup=config.warmup,
                               iterations=count, etdump=etdump, timing_json=timing, inputs=up.inputs)
            pid_record = f"{remote_dir}/runner-r{index}.pid" if android_log[cell.id] else None
            thermal_before = session.thermal_status()
            doing = f"round {index + 1}/{len(plan)} on {slot.label}"
            out.put(CellStatus(cell.id, "running", doing, done[cell.id], config.iterations, {"device": slot.label}))
            with _heartbeat(out, cell.id, doing, done[cell.id], config.iterations, {"device": slot.label}):
                result = session.run(argv, env={"LD_LIBRARY_PATH": up.lib_dir}, cwd=remote_dir, cpu_mask=mask,
                                     pid_record=pid_record)
            thermal_after = session.thermal_status()
            (cell_dir / f"stdout-r{index}.log").write_text(result.stdout)
            (cell_dir / f"stderr-r{index}.log").write_text(result.stderr)
            log_pid = _save_android_log(session, pid_record, cell_dir, index) if pid_record else None
            if not result.ok:
                what = (f"runner killed by {result.signal_name}" if result.signal is not None
                        else f"runner exited with {result.exit_code}")
                failed.add(cell.id)
                folder.set_cell(cell.id, status="failed", finished_utc=utc_now(), error={
                    "kind": "KILLED_BY_SIGNAL" if result.signal is not None else "COMMAND_FAILED", "what": what,
                    "stderr_tail": result.stderr[-2000:], "command": argv,
                    "fix": f"see cells/{cell.id}/stderr-r{index}.log; rerun with --resume"})
                out.put(CellStatus(cell.id, "failed", what))
                continue
            entry: dict[str, Any] = {"round": index, "warmup": config.warmup, "iterations": count, "command": argv,
                                     "seconds": round(result.duration, 3), "thermal_before": thermal_before,
                                     "thermal_after": thermal_after}
            if log_pid is not None:
                entry.update(pid=log_pid, android_log=KERNEL_LOG)
            if result.dropped:
                entry["output_left_out_bytes"] = result.dropped
            if etdump:
                session.pull(etdump, cell_dir / f"etdump-r{index}.etdp")
                entry["etdump"] = f"etdump-r{index}.etdp"
            if timing:
                session.pull(timing, cell_dir / f"timing-r{index}.json", max_bytes=TIMING_LIMIT)
                try:
                    warmup_ns, measured_ns = read_timing(cell_dir / f"timing-r{index}.json", expected=count,
                                                           round_seconds=result.duration)
                except ValueError as exc:
                    failed.add(cell.id)
                    folder.set_cell(cell.id, status="failed", finished_utc=utc_now(), error={
                        "kind": "RUNNER_OUTPUT", "what": f"the runner's timing file is unusable: {exc}",
                        "where": f"cells/{cell.id}/timing-r{index}.json", "command": argv,
                        "fix": "rebuild the runner (sme2tui build android) and rerun with --resume; a runner that "
                               "writes this is broken"})
                    out.put(CellStatus(cell.id, "failed", f"unusable timing file: {exc}"[:200]))
                    continue
                entry["timing"] = f"timing-r{index}.json"
                records[cell.id]["warmup_ns"] += warmup_ns
                records[cell.id]["iterations_ns"] += measured_ns
            records[cell.id]["rounds"].append(entry)
            done[cell.id] += count
            out.put(CellStatus(cell.id, "running", f"round {index + 1}/{len(plan)} measured", done[cell.id],
                               config.iterations, {"device": slot.label, "thermal": thermal_after}))
        cooldown = config.target.cooldown_s if isinstance(config.target, AndroidTarget) else 0.0
        if cooldown and index < len(plan) - 1:
            stop.wait(cooldown)  # between rounds, i.e. between cells: every round runs each cell once
    for cell in group:
        if cell.id in failed:
            continue
        cell_dir = folder.cell_dir(cell)
        (cell_dir / "timing.json").write_text(json.dumps(records[cell.id], indent=1))
        thermal = [(r["thermal_before"], r["thermal_after"]) for r in records[cell.id]["rounds"]]
        folder.set_cell(cell.id, status="done", finished_utc=utc_now(), thermal=thermal,
                        files=sorted(folder.rel(p) for p in cell_dir.iterdir()))
        out.put(CellStatus(cell.id, "done", f"measured on {slot.label}", config.iterations, config.iterations))
    return len(failed)


# How often a running round says it is alive (the device says nothing until the runner exits).
HEARTBEAT_S = 1.0


@contextlib.contextmanager
def _heartbeat(out: queue.Queue[Event | None], cell_id: str, doing: str, done: int, total: int,
               extra: dict[str, Any]) -> Iterator[None]:
    """While the block runs, put `doing: N s` for the cell on `out` about once a second (a slow round on a
    phone must never look stuck)."""
    stop = threading.Event()
    started = time.monotonic()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_S):
            out.put(CellStatus(cell_id, "running", f"{doing}: {time.monotonic() - started:.0f} s", done, total, extra))

    thread = threading.Thread(target=beat, name=f"heartbeat {cell_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _save_android_log(session: DeviceSession, pid_record: str, cell_dir: Path, index: int) -> int | None:
    """Append this round's Android log of the runner (by its pid) to the cell's kernel.log; returns the pid.
    What the log proves (SME2 kernel names) is read by the analysis like the host's stderr."""
    pid, text = session.log_of(pid_record)
    if pid is None:
        return None
    with (cell_dir / KERNEL_LOG).open("a", errors="replace") as log:
        log.write(f"--- round {index}: logcat -d -v threadtime --pid={pid} on {session.serial} ---\n")
        log.write(text if text.endswith("\n") or not text else text + "\n")
    return pid


def read_timing(path: Path, *, expected: int, round_seconds: float | None = None) -> tuple[list[int], list[int]]:
    """(warmup_ns, measured_ns) from a runner's timing JSON, which must time `expected` iterations;
    ValueError saying what is wrong with it."""
    try:
        data = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(f"not JSON ({str(exc)[:120]})") from None
    if not isinstance(data, dict):
        raise ValueError(f"expected an object with warmup_ns and measured_ns, got {type(data).__name__}")
    lists = []
    for key in ("warmup_ns", "measured_ns"):
        values = data.get(key, [])
        if not isinstance(values, list) or not all(type(v) is int and 0 <= v < 1 << 63 for v in values):
            raise ValueError(f"{key} must be a list of non-negative integer nanoseconds")
        lists.append(values)
    if len(lists[1]) != expected:
        raise ValueError(f"it times {len(lists[1])} iteration(s), the round ran {expected}")
    # The host's clock around the whole adb shell command.
    overclaim = round_overclaim(lists[0], lists[1], round_seconds) if round_seconds is not None else None
    if overclaim:
        raise ValueError(overclaim)
    return lists[0], lists[1]
