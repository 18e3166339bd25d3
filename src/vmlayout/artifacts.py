"""The `emit all` artifact set: every firmware view of one layout plus the record
(`config.json`) needed to re-derive and cross-check them later.

The record carries the config in vector-schema form and every emitter setting that is
not part of the layout (MTRR policy, E820 table sizes), so a directory stays
self-describing after it has been copied away from the command line that made it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vmlayout.arch import Arch
from vmlayout.errors import VmLayoutError

#: Marker in `config.json` that identifies an `emit all` directory.
ARTIFACT_SET_FORMAT = "vmlayout-artifact-set"
CONFIG_FILE = "config.json"


@dataclass(frozen=True, slots=True)
class EmitSettings:
    """Everything besides the config that shaped the artifacts, so the set can be
    re-derived and checked without guessing."""

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
    from vmlayout.inputs import parse_json, read_bytes, shown

    path = directory / CONFIG_FILE
    data = read_bytes(path, "invalid_artifact")
    record = parse_json(data, f"{shown(path)}: cannot read", "invalid_artifact")
    if not isinstance(record, dict) or record.get("format") != ARTIFACT_SET_FORMAT:
        raise VmLayoutError(
            "invalid_artifact", f"{path}: not a vmlayout artifact set (format field)"
        )
    settings = settings_from_json(record.get("settings"), path)
    config_data = _older_record(dict(_field(record, "config", dict, path)), record["settings"])
    try:
        config = config_from_dict(config_data)
    except VmLayoutError as error:
        raise VmLayoutError(
            "invalid_artifact", f"{shown(path)}: its config: {error.message}"
        ) from None
    files: dict[str, bytes] = {}
    for name in dict.fromkeys(settings.artifacts):  # a name listed twice is read once
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
        "e820": {"acpi_len": settings.e820_acpi_len, "smbios_len": settings.e820_smbios_len},
        "artifacts": list(settings.artifacts),
    }


def settings_from_json(value: Any, path: Path) -> EmitSettings:
    if not isinstance(value, dict):
        raise VmLayoutError("invalid_artifact", f"{path}: settings: missing or not an object")
    e820 = _field(value, "settings.e820", dict, path)
    artifacts = _field(value, "settings.artifacts", list, path)
    if not all(is_artifact_name(a) for a in artifacts):
        raise VmLayoutError("invalid_artifact", f"{path}: settings.artifacts: bad file name")
    return EmitSettings(
        e820_acpi_len=_field(e820, "settings.e820.acpi_len", int, path),
        e820_smbios_len=_field(e820, "settings.e820.smbios_len", int, path),
        artifacts=tuple(artifacts),
    )


def _older_record(config: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """A record from before the processors and platform sections kept the VP settings
    and the MTRR choices under `settings`: move them where they live now."""
    cpus, mtrr = settings.get("cpus"), settings.get("mtrr")
    if "processors" not in config and isinstance(cpus, dict):
        config = {**config, "processors": cpus}
    if isinstance(mtrr, dict) and "mtrr" not in config.get("platform", {}):
        platform = config.get("platform", {})
        if isinstance(platform, dict):
            config = {**config, "platform": {**platform, "mtrr": mtrr}}
    return config


@dataclass(frozen=True, slots=True)
class ViewKind:
    """One kind of artifact `emit all` writes: the one list (`VIEWS`) that `emit all`,
    `inspect` (sniffing and decoding), the cross-check, stale-file removal, the single
    `emit` commands' architecture check, the library and the README's table iterate.

    `build(resolved, settings, files)` returns the view's files (none when the layout
    cannot have it) and the settings it recorded; `files` holds the views built before
    it (E820 sizes its ACPI entry to the tables). `inspector` names the module with
    `sniff(path, data)` / `inspect(path, data, fmt)`; `columns` names the function in
    `vmlayout.inspect.crosscheck` giving its cross-check columns. Both are later stages,
    so they are named here and imported when used."""

    name: str
    #: File name, or a description for a family written as several files.
    files: str
    archs: tuple[Arch, ...]
    build: Callable[[Any, EmitSettings, Mapping[str, bytes]], tuple[dict[str, bytes], EmitSettings]]
    inspector: str | None
    columns: str | None
    what: str
    #: Sniffed after every other kind (raw binaries recognised only by their shape).
    sniff_last: bool = False

    def exists_on(self, arch: Arch) -> bool:
        return arch in self.archs

    def load_columns(self) -> tuple[Any, ...]:
        """The cross-check columns (`vmlayout.inspect.crosscheck.<columns>()`)."""
        import importlib

        if self.columns is None:
            return ()
        module = importlib.import_module(CROSSCHECK_MODULE)
        return tuple(getattr(module, self.columns)())


def _unchanged(
    files: dict[str, bytes], settings: EmitSettings
) -> tuple[dict[str, bytes], EmitSettings]:
    return files, settings


def _json_bytes(doc: Any) -> bytes:
    return (json.dumps(doc, indent=1) + "\n").encode()


def _build_layout(resolved: Any, settings: EmitSettings, _: Mapping[str, bytes]) -> Any:
    from vmlayout.report import resolved_to_json

    doc = {"format": LAYOUT_FORMAT, **resolved_to_json(resolved)}
    return _unchanged({"layout.json": _json_bytes(doc)}, settings)


def _build_acpi(resolved: Any, settings: EmitSettings, _: Mapping[str, bytes]) -> Any:
    from vmlayout.acpi.dsdt import build_acpi_tables

    return _unchanged(build_acpi_tables(resolved), settings)


def _build_uefi(resolved: Any, settings: EmitSettings, _: Mapping[str, bytes]) -> Any:
    from vmlayout.firmware.uefi import uefi_blob_of

    return _unchanged({"uefi-config.bin": uefi_blob_of(resolved)}, settings)


def _build_e820(resolved: Any, settings: EmitSettings, built: Mapping[str, bytes]) -> Any:
    """The Linux direct-boot map, its ACPI entry covering exactly the emitted tables;
    none when RAM does not start at 0 and reach 1 MiB (no Linux direct boot)."""
    from vmlayout.acpi.dsdt import tables_blob_size
    from vmlayout.firmware.e820 import build_e820, encode_e820

    settings = replace(settings, e820_acpi_len=tables_blob_size(dict(built)))
    layout = resolved.memory_layout
    first = layout.ram[0].range
    if not (first.start == 0 and first.end >= 0x100000):
        return {}, settings
    try:
        entries = build_e820(layout, settings.e820_acpi_len, settings.e820_smbios_len)
    except VmLayoutError as error:
        if error.kind in E820_REFUSALS:
            return {}, settings
        raise
    return {"e820.bin": encode_e820(entries)}, settings


#: Why the E820 map cannot describe a layout (then `emit all` writes no e820.bin): the
#: ACPI tables (and SMBIOS) do not fit below the 1 MiB BIOS area the map reserves.
E820_REFUSALS = ("low_tables_too_large",)


def _build_mtrr(resolved: Any, settings: EmitSettings, _: Mapping[str, bytes]) -> Any:
    return _unchanged({"mtrr.json": mtrr_json(resolved)}, settings)


def _build_pcat(resolved: Any, settings: EmitSettings, _: Mapping[str, bytes]) -> Any:
    pcat = pcat_json(resolved)
    return _unchanged({} if pcat is None else {"pcat.json": pcat}, settings)


def _build_smbios(resolved: Any, settings: EmitSettings, _: Mapping[str, bytes]) -> Any:
    from vmlayout.firmware.smbios import smbios_of

    blob = smbios_of(resolved)
    return _unchanged({} if blob is None else {"smbios.bin": blob}, settings)


def _build_paravisor(resolved: Any, settings: EmitSettings, _: Mapping[str, bytes]) -> Any:
    from vmlayout.devicetree.paravisor import paravisor_dtb_of

    return _unchanged({"paravisor.dtb": paravisor_dtb_of(resolved)}, settings)


def _build_igvm(resolved: Any, settings: EmitSettings, _: Mapping[str, bytes]) -> Any:
    from vmlayout.devicetree.paravisor import encode_mmio_ranges

    return _unchanged({"igvm-mmio-ranges.bin": encode_mmio_ranges(resolved.chipset)}, settings)


def _build_linux_dtb(resolved: Any, settings: EmitSettings, _: Mapping[str, bytes]) -> Any:
    from vmlayout.devicetree.linux import linux_dtb_of

    return _unchanged({"linux.dtb": linux_dtb_of(resolved)}, settings)


def _build_pci(resolved: Any, settings: EmitSettings, _: Mapping[str, bytes]) -> Any:
    from vmlayout.pci_layout.report import pci_json

    pci = pci_json(resolved)
    return _unchanged({} if pci is None else {"pci.json": pci}, settings)


BOTH = (Arch.X86_64, Arch.AARCH64)
X86 = (Arch.X86_64,)
ARM = (Arch.AARCH64,)
_INSPECT = "vmlayout.inspect."
#: Where the `columns` functions live.
CROSSCHECK_MODULE = "vmlayout.inspect.crosscheck"

#: Every artifact kind, in the order `emit all` builds them (the record comes last).
VIEWS: tuple[ViewKind, ...] = (
    ViewKind("layout", "layout.json", BOTH, _build_layout, _INSPECT + "views", "layout_columns",
             "every placed range and the chipset windows (`resolve --format json`)"),
    ViewKind("acpi", "`<SIG>.aml`, `RSDP.bin`", BOTH, _build_acpi, _INSPECT + "acpi",
             "acpi_columns", "the ACPI tables"),
    ViewKind("uefi", "uefi-config.bin", BOTH, _build_uefi, _INSPECT + "uefi", "uefi_columns",
             "the UEFI config blob"),
    ViewKind("e820", "e820.bin", X86, _build_e820, _INSPECT + "e820", "e820_columns",
             "the Linux direct-boot E820 map (RAM from 0 to 1 MiB needed)", sniff_last=True),
    ViewKind("mtrr", "mtrr.json", X86, _build_mtrr, _INSPECT + "views", "mtrr_columns",
             "the initial MTRR state"),
    ViewKind("pcat", "pcat.json", X86, _build_pcat, _INSPECT + "pcat", "pcat_columns",
             "PCAT BIOS items and CMOS (with a high window and first RAM below 64 GiB)"),
    ViewKind("smbios", "smbios.bin", X86, _build_smbios, "vmlayout.firmware.smbios", None,
             "SMBIOS entry point and BIOS date for 0xF0000 (with platform.x86.bios_date)"),
    ViewKind("paravisor-dt", "paravisor.dtb", X86, _build_paravisor, _INSPECT + "dtb",
             "paravisor_columns", "the paravisor's host device tree"),
    ViewKind("igvm", "igvm-mmio-ranges.bin", X86, _build_igvm, _INSPECT + "igvm",
             "igvm_columns", "the IGVM MmioRanges parameter", sniff_last=True),
    ViewKind("linux-dt", "linux.dtb", ARM, _build_linux_dtb, _INSPECT + "dtb",
             "linux_dt_columns", "the arm64 Linux direct-boot device tree"),
    ViewKind("pci", "pci.json", BOTH, _build_pci, _INSPECT + "pci", "pci_columns",
             "PCI assignment (root complexes that list devices)"),
)  # fmt: skip

#: `format` keys of the JSON artifacts (every JSON artifact carries one).
LAYOUT_FORMAT = "vmlayout-layout"
MTRR_FORMAT = "vmlayout-mtrr"
PCAT_FORMAT = "vmlayout-pcat"


def view_named(name: str) -> ViewKind:
    return next(v for v in VIEWS if v.name == name)


def require_view(resolved: Any, name: str) -> None:
    """Refuse a view the config's architecture does not have (`emit dt-linux` on an
    x86_64 config), naming where it exists."""
    view = view_named(name)
    if not view.exists_on(resolved.arch):
        where = ", ".join(a.value for a in view.archs)
        raise VmLayoutError("unsupported_arch", f"arch: {view.what} exists only on {where} configs")


def inspector_modules() -> tuple[str, ...]:
    """`inspect PATH`'s sniffing order: every view's inspector, raw binaries last."""
    order = [v for v in VIEWS if not v.sniff_last] + [v for v in VIEWS if v.sniff_last]
    return tuple(dict.fromkeys(v.inspector for v in order if v.inspector))


def emitter_files(resolved: Any, settings: EmitSettings) -> tuple[dict[str, bytes], EmitSettings]:
    """Every view of the config's architecture, in `VIEWS` order."""
    files: dict[str, bytes] = {}
    for view in VIEWS:
        if view.exists_on(resolved.arch):
            built, settings = view.build(resolved, settings, files)
            files.update(built)
    return files, settings


def build_artifact_set(resolved: Any, settings: EmitSettings) -> dict[str, bytes]:
    """Every artifact for the layout's architecture plus the `config.json` record, as
    file name -> bytes (written atomically by the caller)."""
    from vmlayout import __version__
    from vmlayout.config import config_to_dict

    files, settings = emitter_files(resolved, settings)
    record = {
        "format": ARTIFACT_SET_FORMAT,
        "vmlayout_version": __version__,
        "config": config_to_dict(resolved.config),
        "settings": settings_to_json(replace(settings, artifacts=tuple(sorted(files)))),
    }
    files[CONFIG_FILE] = (json.dumps(record, indent=2) + "\n").encode()
    return files


def mtrr_state_of(resolved: Any) -> Any:
    """The initial MTRR state the config's `platform.mtrr` section asks for."""
    from vmlayout.firmware.memtype import Loader, mtrr_state

    mtrr = resolved.config.platform.mtrr
    return mtrr_state(resolved, Loader(mtrr.loader), mtrr.policy, mtrr.count, mtrr.approximate)


def mtrr_json(resolved: Any) -> bytes:
    state = mtrr_state_of(resolved)
    mtrr = resolved.config.platform.mtrr
    doc = {
        "format": MTRR_FORMAT,
        "loader": mtrr.loader,
        "policy": mtrr.policy,
        "msrs": [[w.msr, w.value] for w in state.to_msrs()],
    }
    return _json_bytes(doc)


def pcat_json(resolved: Any) -> bytes | None:
    """The PCAT items and CMOS image, or None for a layout the PCAT BIOS cannot
    describe (`PcatConfig` refuses it: no high window, a first RAM range of 64 GiB or
    more, or a value that overflows its item, e.g. a high window below 1 MiB)."""
    from vmlayout.firmware.pcat import PcatConfig

    try:
        pcat = PcatConfig(resolved.memory_layout, resolved.chipset)
        doc = {
            "format": PCAT_FORMAT,
            "items": [[int(item), value] for item, value in pcat.items().items()],
            "cmos": pcat.cmos_image().hex(),
        }
    except VmLayoutError as error:
        if error.kind in PCAT_REFUSALS:
            return None
        raise
    return _json_bytes(doc)


#: The reasons PCAT cannot describe a layout (then `emit all` writes no pcat.json).
PCAT_REFUSALS = ("incorrect_mmio_holes", "pcat_first_ram_too_large", "pcat_value_overflow")
