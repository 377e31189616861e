"""`sme2tui devices`: every device on the server with its facts, as data and as text for people."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sme2tui.android.client import readiness_error
from sme2tui.android.errors import AndroidDeviceError
from sme2tui.android.facts import DeviceFacts, _ranges, clean_text, cpu_mask
from sme2tui.android.session import DeviceSession

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sme2tui.android.client import AndroidClient

_THERMAL = {0: "none", 1: "light", 2: "moderate", 3: "severe", 4: "critical", 5: "emergency", 6: "shutdown"}


def list_devices_report(client: AndroidClient) -> list[DeviceFacts]:
    """Facts for every listed device. A device that is not ready, or fails while being read, still gets an
    entry (with `error` saying why) so one bad device never hides the others."""
    report: list[DeviceFacts] = []
    for entry in client.list_devices():
        not_ready = readiness_error(entry.serial, entry.state)
        if not_ready is not None:
            reason = f"{not_ready.what}; fix: {not_ready.fix}"
            report.append(DeviceFacts(entry.serial, entry.state, model=entry.tags.get("model"), error=reason))
            continue
        try:
            report.append(DeviceSession(client, entry.serial).facts())
        except AndroidDeviceError as exc:
            report.append(DeviceFacts(entry.serial, entry.state, error=f"{exc.what}; fix: {exc.fix}"))
    return report


def _clusters(facts: DeviceFacts) -> str:
    """ "0-3 C1-Pro 2.70 GHz · 4-6 C1-Premium 3.50 GHz · 7 C1-Ultra 4.21 GHz"."""
    groups: dict[tuple[str, int | None], list[int]] = {}
    for core in facts.cores:
        name = core.part_name or (f"part {core.part}" if core.part else "cores")
        groups.setdefault((name, core.max_freq_khz), []).append(core.index)
    parts = []
    for (name, khz), cores in groups.items():
        clock = f" {khz / 1e6:.2f} GHz" if khz else ""
        parts.append(f"{_ranges(cores)} {name}{clock}")
    return " · ".join(parts)


def _name(facts: DeviceFacts) -> str | None:
    """ "vivo X300", not "vivo vivo X300" (market names often start with the maker)."""
    maker, model = facts.manufacturer, facts.model
    if maker and model and not model.lower().startswith(maker.lower()):
        return f"{maker} {model}"
    return model or maker


def render_devices_text(facts_list: Sequence[DeviceFacts]) -> str:
    if not facts_list:
        return "no devices (check `adb devices`; network devices need `adb connect HOST:PORT`)"
    blocks = []
    for f in facts_list:
        serial, state = clean_text(f.serial), clean_text(f.state, 60)  # from the server: no escapes on screen
        if f.error is not None:
            model = f" {clean_text(f.model)}" if f.model else ""
            blocks.append(f"{serial}  {state}{model}\n  not readable: {clean_text(f.error, 2000)}")
            continue
        android = f"Android {f.android_version}" + (f" (SDK {f.sdk})" if f.sdk else "") if f.android_version else None
        head = " · ".join(
            x
            for x in (
                _name(f),
                f.soc,
                android,
                f.abi,
                f"kernel {f.kernel}" if f.kernel else None,
                "EMULATOR" if f.emulator else None,
            )
            if x
        )
        lines = [f"{serial}  {state}  {head}", f"  SME: {f.sme} — {f.sme_summary}"]
        if f.cores:
            big = f"big cores {_ranges(list(f.big_cores))} (mask {cpu_mask(list(f.big_cores))})" if f.big_cores else ""
            lines.append(f"  cores: {_clusters(f)}" + (f"; {big}" if big else ""))
        governors = sorted({c.governor for c in f.cores if c.governor})
        thermal = (
            "unknown" if f.thermal_status is None else f"{f.thermal_status} ({_THERMAL.get(f.thermal_status, '?')})"
        )
        lines.append(f"  thermal status: {thermal}" + (f"; governor: {', '.join(governors)}" if governors else ""))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
