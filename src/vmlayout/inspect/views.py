"""`vmlayout inspect` for the JSON files of an `emit all` set: `mtrr.json`, `layout.json`
and the `config.json` record, each recognised by its keys (`pcat.json`: `inspect/pcat.py`).

Every file vmlayout writes must decode back on its own (a team handed one file, or
bisecting a corrupted set, needs more than "unrecognised"), so each view is explained,
not just echoed: MTRR pairs as types and covered ranges with lint, the layout under
its one range naming, the record with which of its files are present.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vmlayout.errors import VmLayoutError
from vmlayout.inspect.binaries import json_document, range_line, sniffed_object
from vmlayout.ranges import format_address, format_size


def kind_of(doc: Any) -> str | None:
    if not isinstance(doc, dict):
        return None
    if doc.get("format") == "vmlayout-artifact-set":
        return "config"
    if "msrs" in doc:
        return "mtrr"
    if "placed" in doc and "chipset" in doc:
        return "layout"
    return None


def sniff(path: Path, data: bytes | None) -> bool:
    return kind_of(sniffed_object(data, path.name)) is not None


def _bad(where: str, what: str) -> VmLayoutError:
    return VmLayoutError("invalid_artifact", f"{where}: {what}")


def _pairs(doc: dict[str, Any], key: str, where: str) -> list[tuple[int, int]]:
    value = doc.get(key)
    try:
        if not isinstance(value, list):
            raise TypeError
        out = []
        for item in value:
            a, b = item
            if (
                isinstance(a, bool)
                or isinstance(b, bool)
                or not (isinstance(a, int) and isinstance(b, int))
            ):
                raise TypeError
            out.append((a, b))
        return out
    except (TypeError, ValueError):
        raise _bad(where, f"{key} is not a list of integer pairs") from None


# --- mtrr.json ----------------------------------------------------------------------------


def _width_from_masks(variable: tuple[tuple[int, int], ...]) -> int:
    """MAXPHYADDR as the masks spell it (their set bits run up to it); 46 otherwise."""
    widths = [mask.bit_length() for _, mask in variable if mask & 0x800 and mask >> 12]
    return max(widths) if widths else 46


def mtrr_view(doc: dict[str, Any], where: str) -> dict[str, Any]:
    from vmlayout.firmware.memtype import (
        MtrrState,
        decode_variable_pairs,
        effective_intervals,
        lint_mtrr_state,
    )
    from vmlayout.firmware.mtrr import MsrWrite

    msrs = _pairs(doc, "msrs", where)
    state = MtrrState.from_msrs([MsrWrite(a, b) for a, b in msrs])
    width = _width_from_masks(state.variable)
    return {
        "kind": "mtrr",
        "loader": doc.get("loader"),
        "policy": doc.get("policy"),
        "msrs": msrs,
        "physical_address_size": width,
        "pairs": decode_variable_pairs(state, width),
        "intervals": effective_intervals(state, width),
        "lint": lint_mtrr_state(state, width),
    }


def _mtrr_text(view: dict[str, Any], name: str) -> list[str]:
    from vmlayout.firmware.memtype import msr_name
    from vmlayout.ranges import readable_size

    lines = [
        f"{name}: MTRR state, loader {view['loader']}, policy {view['policy']}, "
        f"{len(view['msrs'])} MSRs (MAXPHYADDR {view['physical_address_size']} from the masks)"
    ]
    lines += [
        f"  {msr:#06x}  {msr_name(msr):<14}  {format_address(value)}" for msr, value in view["msrs"]
    ]
    lines.append("variable pairs (as the hardware reads them):")
    lines += [f"  {pair.describe()}" for pair in view["pairs"]]
    lines.append("effective memory types:")
    lines += [
        f"  {format_address(i.range.start):>22} - {format_address(i.range.end):<22} "
        f"{readable_size(i.range.size):>10}  {i.name}"
        for i in view["intervals"]
    ]
    lines += [f"lint: {finding}" for finding in view["lint"]]
    return lines


def _mtrr_json(view: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "mtrr",
        "loader": view["loader"],
        "policy": view["policy"],
        "msrs": [list(p) for p in view["msrs"]],
        "physical_address_size": view["physical_address_size"],
        "pairs": [
            {
                "index": p.index,
                "type": p.type_name,
                "valid": p.valid,
                "covers": [[r.start, r.end] for r in p.covers],
                "ignored_base_bits": p.ignored_base_bits,
            }
            for p in view["pairs"]
        ],
        "intervals": [[i.range.start, i.range.end, i.name] for i in view["intervals"]],
        "lint": view["lint"],
    }


# --- layout.json ----------------------------------------------------------------------------


def layout_view(doc: dict[str, Any], where: str) -> dict[str, Any]:
    from vmlayout.inspect.diff import check_saved_layout
    from vmlayout.report import named_ranges

    try:
        check_saved_layout(doc, where)
    except VmLayoutError as error:
        raise VmLayoutError("invalid_artifact", error.message) from None
    return {"kind": "layout", "ranges": named_ranges(doc), "doc": doc}


def _layout_text(view: dict[str, Any], name: str) -> list[str]:
    doc = view["doc"]
    ram = sum(int(r["end"]) - int(r["start"]) for r in doc["ram"])
    lines = [f"{name}: resolved layout, {len(view['ranges'])} ranges, {format_size(ram)} RAM"]
    for n in view["ranges"]:
        notes = [n.kind]
        if n.vnode is not None:
            notes.append(f"vnode {n.vnode}")
        if n.window:
            notes.append(f"= {n.window}")
        width = max(len(x.name) for x in view["ranges"])
        lines.append(range_line(n.name, n.range, ", ".join(notes), width))
    return lines


def _layout_json(view: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "layout",
        "ranges": [
            {
                "name": n.name,
                "kind": n.kind,
                "start": n.range.start,
                "end": n.range.end,
                "vnode": n.vnode,
                "window": n.window or None,
            }
            for n in view["ranges"]
        ],
    }


# --- config.json ----------------------------------------------------------------------------


def config_view(doc: dict[str, Any], where: str, directory: Path) -> dict[str, Any]:
    from vmlayout.artifacts import settings_from_json
    from vmlayout.config import config_from_dict, config_to_dict

    settings = settings_from_json(doc.get("settings"), Path(where))
    raw = doc.get("config")
    if not isinstance(raw, dict):
        raise _bad(where, "config: missing or not an object")
    config = config_from_dict(raw)
    present = {name: (directory / name).is_file() for name in settings.artifacts}
    return {
        "kind": "artifact-set-record",
        "vmlayout_version": doc.get("vmlayout_version"),
        "config": config_to_dict(config),
        "settings": settings,
        "present": present,
    }


def _config_text(view: dict[str, Any], name: str) -> list[str]:
    s = view["settings"]
    mtrr = view["config"]["platform"]["mtrr"]
    lines = [
        f"{name}: vmlayout artifact set record (written by vmlayout {view['vmlayout_version']})",
        f"  config: {json.dumps(view['config'])}",
        f"  mtrr: policy {mtrr['policy']}, loader {mtrr['loader']}, count {mtrr['count']}, "
        f"approximate {str(mtrr['approximate']).lower()}",
        f"  e820: acpi_len {s.e820_acpi_len:#x}, smbios_len {s.e820_smbios_len:#x}",
        f"  artifacts ({len(s.artifacts)}):",
    ]
    lines += [
        f"    {artifact:<24} {'present' if ok else 'MISSING'}"
        for artifact, ok in view["present"].items()
    ]
    return lines


def _config_json(view: dict[str, Any]) -> dict[str, Any]:
    from vmlayout.artifacts import settings_to_json

    return {
        "kind": view["kind"],
        "vmlayout_version": view["vmlayout_version"],
        "config": view["config"],
        "settings": settings_to_json(view["settings"]),
        "present": view["present"],
    }


def inspect(path: Path, data: bytes | None, fmt: str) -> tuple[str, int]:
    assert data is not None
    doc = json_document(data, path.name)
    kind = kind_of(doc)
    if kind == "mtrr":
        view = mtrr_view(doc, path.name)
        text, as_json = _mtrr_text(view, path.name), _mtrr_json(view)
    elif kind == "layout":
        view = layout_view(doc, path.name)
        text, as_json = _layout_text(view, path.name), _layout_json(view)
    elif kind == "config":
        view = config_view(doc, path.name, path.parent)
        text, as_json = _config_text(view, path.name), _config_json(view)
    else:
        raise VmLayoutError("unrecognised_input", f"{path.name}: not a vmlayout JSON view")
    if fmt == "json":
        return json.dumps(as_json) + "\n", 0
    return "\n".join(text) + "\n", 0
