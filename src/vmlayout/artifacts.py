"""The `emit all` artifact set: every firmware view of one layout plus the record
(`config.json`) needed to re-derive and cross-check them later.

The record carries the config in vector-schema form and every emitter setting that is
not part of the layout (MTRR policy, E820 table sizes), so a directory stays
self-describing after it has been copied away from the command line that made it.
"""

from __future__ import annotations

import json
import os
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
    #: Exact policy over budget: the most WB RAM, never WB non-RAM (`--mtrr-approximate`).
    mtrr_approximate: bool = False
    e820_acpi_len: int = 0
    e820_smbios_len: int = 0
    artifacts: tuple[str, ...] = ()
    #: Processors and socket size (which vNUMA node each VP sits in): SRAT, MADT.
    vp_count: int = 2
    vps_per_socket: int | None = None


@dataclass(frozen=True, slots=True)
class ArtifactSet:
    config: Any  # VmConfig
    settings: EmitSettings
    files: Mapping[str, bytes]


def load_artifact_set(directory: Path) -> ArtifactSet:
    from vmlayout.config import config_from_dict
    from vmlayout.inputs import parse_json, read_bytes, shown

    path = directory / CONFIG_FILE
    data = read_bytes(path, "invalid_artifact")
    record = parse_json(data, f"{shown(path)}: cannot read", "invalid_artifact")
    if not isinstance(record, dict) or record.get("format") != ARTIFACT_SET_FORMAT:
        raise VmLayoutError(
            "invalid_artifact", f"{path}: not a vmlayout artifact set (format field)"
        )
    settings = settings_from_json(record.get("settings"), path)
    config = config_from_dict(_field(record, "config", dict, path))
    files: dict[str, bytes] = {}
    for name in settings.artifacts:
        if not os.path.exists(directory / name):
            continue  # reported as a ✗ cell by the views that need it
        files[name] = read_bytes(directory / name, "invalid_artifact")
    return ArtifactSet(config=config, settings=settings, files=files)


def previous_artifact_names(directory: Path) -> tuple[str, ...]:
    """The files an earlier `emit all` wrote into `directory`, from its record, so a new
    run can remove those it does not write again (and nothing it did not write).

    No record: nothing is known to be ours. A `config.json` that is not a set record is
    someone else's file, which `emit all` refuses to overwrite."""
    from vmlayout.inputs import parse_json, read_bytes, shown

    path = directory / CONFIG_FILE
    if not os.path.lexists(path):
        return ()
    try:
        record = parse_json(read_bytes(path, "output_error"), shown(path), "output_error")
    except VmLayoutError as error:
        raise VmLayoutError(
            "output_error",
            f"{error.message}; not overwriting a config.json that is not a vmlayout "
            "artifact set record",
        ) from None
    if not isinstance(record, dict) or record.get("format") != ARTIFACT_SET_FORMAT:
        raise VmLayoutError(
            "output_error",
            f"{shown(path)}: not a vmlayout artifact set record; not overwriting it",
        )
    settings = record.get("settings")
    names = settings.get("artifacts") if isinstance(settings, dict) else None
    if not isinstance(names, list):
        return ()
    return tuple(name for name in names if is_artifact_name(name) and name != CONFIG_FILE)


def _field(record: Mapping[str, Any], key: str, kind: type, path: Path) -> Any:
    """`record[last part of key]`, type-checked; `key` is the full dotted path for errors."""
    value = record.get(key.rsplit(".", 1)[-1])
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise VmLayoutError("invalid_artifact", f"{path}: {key}: missing or not a {kind.__name__}")
    return value


def is_artifact_name(name: object) -> bool:
    """A plain file name inside the set's directory: no separator, NUL or control
    character, not `.`/`..` (a record is user input and must not point elsewhere)."""
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and "/" not in name
        and "\\" not in name
        and name.isprintable()
        and len(name) <= 255
    )


def settings_to_json(settings: EmitSettings) -> dict[str, Any]:
    return {
        "mtrr": {
            "policy": settings.mtrr_policy,
            "count": settings.mtrr_count,
            "loader": settings.mtrr_loader,
            "approximate": settings.mtrr_approximate,
        },
        "e820": {"acpi_len": settings.e820_acpi_len, "smbios_len": settings.e820_smbios_len},
        "artifacts": list(settings.artifacts),
        "cpus": {"vp_count": settings.vp_count, "vps_per_socket": settings.vps_per_socket},
    }


def _cpus_from_json(value: Any, path: Path) -> dict[str, Any]:
    """`settings.cpus` (absent in sets written before it existed: the defaults)."""
    from vmlayout.topology import VpTopology

    if not isinstance(value, dict):
        raise VmLayoutError("invalid_artifact", f"{path}: settings.cpus: not an object")
    count, per_socket = value.get("vp_count", 2), value.get("vps_per_socket")
    if type(count) is not int or (per_socket is not None and type(per_socket) is not int):
        raise VmLayoutError("invalid_artifact", f"{path}: settings.cpus: not integers")
    try:
        VpTopology(count, per_socket)
    except VmLayoutError as error:
        raise VmLayoutError("invalid_artifact", f"{path}: settings.cpus: {error.message}") from None
    return {"vp_count": count, "vps_per_socket": per_socket}


def settings_from_json(value: Any, path: Path) -> EmitSettings:
    if not isinstance(value, dict):
        raise VmLayoutError("invalid_artifact", f"{path}: settings: missing or not an object")
    mtrr = _field(value, "settings.mtrr", dict, path)
    e820 = _field(value, "settings.e820", dict, path)
    artifacts = _field(value, "settings.artifacts", list, path)
    if not all(is_artifact_name(a) for a in artifacts):
        raise VmLayoutError("invalid_artifact", f"{path}: settings.artifacts: bad file name")
    settings = EmitSettings(
        mtrr_policy=_field(mtrr, "settings.mtrr.policy", str, path),
        mtrr_count=_field(mtrr, "settings.mtrr.count", int, path),
        mtrr_loader=_field(mtrr, "settings.mtrr.loader", str, path),
        # absent in sets written before the option existed
        mtrr_approximate=mtrr.get("approximate", False) is True,
        e820_acpi_len=_field(e820, "settings.e820.acpi_len", int, path),
        e820_smbios_len=_field(e820, "settings.e820.smbios_len", int, path),
        artifacts=tuple(artifacts),
        **_cpus_from_json(value.get("cpus", {}), path),
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
    if not isinstance(mtrr.get("approximate", False), bool):
        raise VmLayoutError("invalid_artifact", f"{path}: settings.mtrr.approximate: not a bool")
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
    from vmlayout.pci_layout.report import pci_json

    pci = pci_json(resolved)
    if pci is not None:
        files["pci.json"] = pci
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
        resolved,
        Loader(settings.mtrr_loader),
        settings.mtrr_policy,
        settings.mtrr_count,
        settings.mtrr_approximate,
    )
    doc = {
        "loader": settings.mtrr_loader,
        "policy": settings.mtrr_policy,
        "msrs": [[w.msr, w.value] for w in state.to_msrs()],
    }
    return (json.dumps(doc, indent=1) + "\n").encode()


def pcat_json(resolved: Any) -> bytes | None:
    """The PCAT items and CMOS image, or None for a layout the PCAT BIOS cannot run
    (`PcatConfig` refuses it: no high window, or a first RAM range of 64 GiB or more)."""
    from vmlayout.firmware.pcat import PcatConfig

    try:
        pcat = PcatConfig(resolved.memory_layout, resolved.chipset)
    except VmLayoutError as error:
        if error.kind in ("incorrect_mmio_holes", "pcat_first_ram_too_large"):
            return None
        raise
    doc = {
        "items": [[int(item), value] for item, value in pcat.items().items()],
        "cmos": pcat.cmos_image().hex(),
    }
    return (json.dumps(doc, indent=1) + "\n").encode()


def emitter_files(resolved: Any, settings: EmitSettings) -> tuple[dict[str, bytes], EmitSettings]:
    """The firmware artifacts; E820's ACPI size is taken from the emitted tables so the
    E820 ACPI entry covers exactly the table blob."""
    from vmlayout.acpi.dsdt import AcpiOptions, build_acpi_tables, tables_blob_size
    from vmlayout.devicetree.linux import linux_dtb_of
    from vmlayout.devicetree.paravisor import (
        ParavisorDtOptions,
        encode_mmio_ranges,
        paravisor_dtb_of,
    )
    from vmlayout.firmware.e820 import build_e820, encode_e820
    from vmlayout.firmware.uefi import UefiOptions, encode_config_blob
    from vmlayout.platform import DEFAULT_GIC

    layout = resolved.memory_layout
    acpi_options = AcpiOptions(vp_count=settings.vp_count, vps_per_socket=settings.vps_per_socket)
    files = dict(build_acpi_tables(resolved, acpi_options))
    if resolved.arch.value == "aarch64":
        options = UefiOptions(gic=(DEFAULT_GIC.distributor_base, DEFAULT_GIC.redistributors_base))
        files["uefi-config.bin"] = encode_config_blob(layout.ram, resolved.chipset, options)
        files["linux.dtb"] = linux_dtb_of(resolved)
        return files, settings
    files["uefi-config.bin"] = encode_config_blob(layout.ram, resolved.chipset)
    settings = replace(settings, e820_acpi_len=tables_blob_size(files))
    first = layout.ram[0].range
    if first.start == 0 and first.end >= 0x100000:  # else no Linux direct boot, no E820
        files["e820.bin"] = encode_e820(
            build_e820(layout, settings.e820_acpi_len, settings.e820_smbios_len)
        )
    files["mtrr.json"] = mtrr_json(resolved, settings)
    pcat = pcat_json(resolved)
    if pcat is not None:
        files["pcat.json"] = pcat
    files["paravisor.dtb"] = paravisor_dtb_of(
        resolved,
        ParavisorDtOptions(vp_count=settings.vp_count, vps_per_socket=settings.vps_per_socket),
    )
    files["igvm-mmio-ranges.bin"] = encode_mmio_ranges(resolved.chipset)
    return files, settings
