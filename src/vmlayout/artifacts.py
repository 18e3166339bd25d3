"""The `emit all` artifact set: every firmware view of one layout plus the record
(`config.json`) needed to re-derive and cross-check them later.

The record carries the config in vector-schema form and every emitter setting that is
not part of the layout (MTRR policy, E820 table sizes), so a directory stays
self-describing after it has been copied away from the command line that made it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vmlayout.errors import VmLayoutError

#: Marker in `config.json` that identifies an `emit all` directory.
ARTIFACT_SET_FORMAT = "vmlayout-artifact-set"
CONFIG_FILE = "config.json"
MTRR_POLICIES = ("reference", "exact")
MTRR_LOADERS = ("linux", "uefi", "pcat")


@dataclass(frozen=True, slots=True)
class EmitSettings:
    """Everything besides the config that shaped the artifacts, so the set can be
    re-derived and checked without guessing."""

    mtrr_policy: str = "reference"
    mtrr_count: int = 8
    mtrr_loader: str = "uefi"
    e820_acpi_len: int = 0
    e820_smbios_len: int = 0
    artifacts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ArtifactSet:
    config: Any  # VmConfig
    settings: EmitSettings
    files: Mapping[str, bytes]


def load_artifact_set(directory: Path) -> ArtifactSet:
    from vmlayout.config import config_from_dict

    path = directory / CONFIG_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VmLayoutError("invalid_artifact", f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise VmLayoutError("invalid_artifact", f"{path}: cannot read: {error}") from None
    if not isinstance(record, dict) or record.get("format") != ARTIFACT_SET_FORMAT:
        raise VmLayoutError(
            "invalid_artifact", f"{path}: not a vmlayout artifact set (format field)"
        )
    settings = settings_from_json(record.get("settings"), path)
    config = config_from_dict(_field(record, "config", dict, path))
    files: dict[str, bytes] = {}
    for name in settings.artifacts:
        try:
            files[name] = (directory / name).read_bytes()
        except FileNotFoundError:
            continue  # reported as a ✗ cell by the views that need it
        except OSError as error:
            raise VmLayoutError("invalid_artifact", f"{directory / name}: {error}") from None
    return ArtifactSet(config=config, settings=settings, files=files)


def _field(record: Mapping[str, Any], key: str, kind: type, path: Path) -> Any:
    """`record[last part of key]`, type-checked; `key` is the full dotted path for errors."""
    value = record.get(key.rsplit(".", 1)[-1])
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise VmLayoutError("invalid_artifact", f"{path}: {key}: missing or not a {kind.__name__}")
    return value


def settings_to_json(settings: EmitSettings) -> dict[str, Any]:
    return {
        "mtrr": {
            "policy": settings.mtrr_policy,
            "count": settings.mtrr_count,
            "loader": settings.mtrr_loader,
        },
        "e820": {"acpi_len": settings.e820_acpi_len, "smbios_len": settings.e820_smbios_len},
        "artifacts": list(settings.artifacts),
    }


def settings_from_json(value: Any, path: Path) -> EmitSettings:
    if not isinstance(value, dict):
        raise VmLayoutError("invalid_artifact", f"{path}: settings: missing or not an object")
    mtrr = _field(value, "settings.mtrr", dict, path)
    e820 = _field(value, "settings.e820", dict, path)
    artifacts = _field(value, "settings.artifacts", list, path)
    if not all(isinstance(a, str) and a and "/" not in a and a != ".." for a in artifacts):
        raise VmLayoutError("invalid_artifact", f"{path}: settings.artifacts: bad file name")
    settings = EmitSettings(
        mtrr_policy=_field(mtrr, "settings.mtrr.policy", str, path),
        mtrr_count=_field(mtrr, "settings.mtrr.count", int, path),
        mtrr_loader=_field(mtrr, "settings.mtrr.loader", str, path),
        e820_acpi_len=_field(e820, "settings.e820.acpi_len", int, path),
        e820_smbios_len=_field(e820, "settings.e820.smbios_len", int, path),
        artifacts=tuple(artifacts),
    )
    for key, value, allowed in (
        ("mtrr.policy", settings.mtrr_policy, MTRR_POLICIES),
        ("mtrr.loader", settings.mtrr_loader, MTRR_LOADERS),
    ):
        if value not in allowed:
            raise VmLayoutError(
                "invalid_artifact",
                f"{path}: settings.{key}: {value!r} is not one of {', '.join(allowed)}",
            )
    if not 1 <= settings.mtrr_count <= 255:
        raise VmLayoutError("invalid_artifact", f"{path}: settings.mtrr.count: not in 1..255")
    return settings


def build_artifact_set(resolved: Any, settings: EmitSettings) -> dict[str, bytes]:
    """Every artifact for the layout's architecture, plus `layout.json` and the
    `config.json` record, as file name -> bytes (written atomically by the caller)."""
    from vmlayout import __version__
    from vmlayout.config import config_to_dict
    from vmlayout.report import resolved_to_json

    files: dict[str, bytes] = {
        "layout.json": (json.dumps(resolved_to_json(resolved), indent=1) + "\n").encode(),
    }
    emitted, settings = emitter_files(resolved, settings)
    files.update(emitted)
    record = {
        "format": ARTIFACT_SET_FORMAT,
        "vmlayout_version": __version__,
        "config": config_to_dict(resolved.config),
        "settings": settings_to_json(replace(settings, artifacts=tuple(sorted(files)))),
    }
    files[CONFIG_FILE] = (json.dumps(record, indent=2) + "\n").encode()
    return files


def mtrr_json(resolved: Any, settings: EmitSettings) -> bytes:
    from vmlayout.firmware.memtype import Loader, mtrr_state

    state = mtrr_state(
        resolved, Loader(settings.mtrr_loader), settings.mtrr_policy, settings.mtrr_count
    )
    doc = {
        "loader": settings.mtrr_loader,
        "policy": settings.mtrr_policy,
        "msrs": [[w.msr, w.value] for w in state.to_msrs()],
    }
    return (json.dumps(doc, indent=1) + "\n").encode()


def pcat_json(resolved: Any) -> bytes:
    from vmlayout.firmware.pcat import PcatConfig

    items = PcatConfig(resolved.memory_layout, resolved.chipset).items()
    doc = {"items": [[int(item), value] for item, value in items.items()]}
    return (json.dumps(doc, indent=1) + "\n").encode()


def emitter_files(resolved: Any, settings: EmitSettings) -> tuple[dict[str, bytes], EmitSettings]:
    """The firmware artifacts; E820's ACPI size is taken from the emitted tables so the
    E820 ACPI entry covers exactly the table blob."""
    from vmlayout.acpi.dsdt import build_acpi_tables, tables_blob_size
    from vmlayout.devicetree.linux import GICD_BASE, GICR_BASE, build_linux_dtb
    from vmlayout.devicetree.paravisor import (
        build_paravisor_dtb,
        encode_mmio_ranges,
        memory_map,
    )
    from vmlayout.firmware.e820 import build_e820, encode_e820
    from vmlayout.firmware.uefi import UefiOptions, encode_config_blob

    layout = resolved.memory_layout
    files = dict(build_acpi_tables(resolved))
    if resolved.arch.value == "aarch64":
        options = UefiOptions(gic=(GICD_BASE, GICR_BASE))
        files["uefi-config.bin"] = encode_config_blob(layout.ram, resolved.chipset, options)
        files["linux.dtb"] = build_linux_dtb(layout.ram, resolved.chipset)
        return files, settings
    files["uefi-config.bin"] = encode_config_blob(layout.ram, resolved.chipset)
    settings = replace(settings, e820_acpi_len=tables_blob_size(files))
    first = layout.ram[0].range
    if first.start == 0 and first.end >= 0x100000:  # else no Linux direct boot, no E820
        files["e820.bin"] = encode_e820(
            build_e820(layout, settings.e820_acpi_len, settings.e820_smbios_len)
        )
    files["mtrr.json"] = mtrr_json(resolved, settings)
    if not resolved.chipset.high.is_empty():  # PCAT cannot run without a high window
        files["pcat.json"] = pcat_json(resolved)
    files["paravisor.dtb"] = build_paravisor_dtb(memory_map(layout.ram), resolved.chipset)
    files["igvm-mmio-ranges.bin"] = encode_mmio_ranges(resolved.chipset)
    return files, settings
