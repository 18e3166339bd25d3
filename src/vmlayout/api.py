"""The stable library surface: configs in, layouts and firmware artifacts out, in memory.

A VMM's Python tooling should not have to shell out to the CLI or know which internal
module builds which view. Everything here takes plain values (a path, a mapping, keyword
arguments, a `ResolvedLayout`) and returns bytes or JSON-able objects; internal modules
stay importable but may change between versions, these functions do not.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vmlayout.errors import VmLayoutError
from vmlayout.policy import ResolvedLayout, VmConfig

ConfigSource = VmConfig | Mapping[str, Any] | str | Path | None


def _argument(value: Any, types: type | tuple[type, ...], what: str, expected: str) -> None:
    """Argument types checked where the library is entered, so a wrong one is the
    `VmLayoutError` docs/api.md promises, not a TypeError from deep inside."""
    allowed = types if isinstance(types, tuple) else (types,)
    if (isinstance(value, bool) and bool not in allowed) or not isinstance(value, allowed):
        raise VmLayoutError(
            "invalid_argument", f"{what}: expected {expected}, got {type(value).__name__}"
        )


def _layout(resolved: Any) -> ResolvedLayout:
    """`resolved` checked to be a layout."""
    _argument(resolved, ResolvedLayout, "resolved", "a ResolvedLayout (from vmlayout.resolve)")
    layout: ResolvedLayout = resolved
    return layout


def load_config(
    source: ConfigSource = None, /, *, arch: str | None = None, **fields: Any
) -> VmConfig:
    """A validated `VmConfig` from a file path, a mapping, keyword fields, or nothing.

    - `load_config()` is the built-in default VM (`vmlayout resolve` with no CONFIG);
    - `load_config("vm.toml")` reads a TOML or JSON file (as the CLI does);
    - `load_config({"node_mem_sizes": ["8G"]})` or `load_config(node_mem_sizes=["8G"])`
      validate a mapping of config fields; keyword fields override the mapping's.
    `arch` overrides the architecture. Invalid input raises `VmLayoutError` whose message
    names the field.
    """
    from vmlayout.config import config_from_dict, config_to_dict, default_vm
    from vmlayout.config import load_config as load_file

    expected = "a VmConfig, a mapping of config fields, a file path or None"
    _argument(source, (VmConfig, Mapping, str, Path, type(None)), "config", expected)
    if arch is not None:
        _argument(arch, str, "arch", "a string (x86_64 or aarch64)")
    if isinstance(source, VmConfig):
        if not fields and arch is None:
            return source
        source = config_to_dict(source)
    if isinstance(source, (str, Path)):
        if fields:
            source = {**config_to_dict(load_file(source, arch)), **fields}
        else:
            return load_file(source, arch)
    if source is None and not fields:
        return default_vm(arch)
    return config_from_dict({**(source or {}), **fields}, arch)


def resolve(config: ConfigSource = None, /, **fields: Any) -> ResolvedLayout:
    """Place everything: the same config always gives the same addresses."""
    from vmlayout.policy import resolve as resolve_config

    return resolve_config(load_config(config, **fields))


def layout_json(resolved: ResolvedLayout) -> dict[str, Any]:
    """Exactly what `vmlayout resolve --format json` prints (a resolver vector's
    `expect` object)."""
    from vmlayout.report import resolved_to_json

    return resolved_to_json(_layout(resolved))


def config_json(config: VmConfig) -> dict[str, Any]:
    """The config with every field explicit and sizes in bytes (loads back equal)."""
    from vmlayout.config import config_to_dict

    _argument(config, VmConfig, "config", "a VmConfig (from vmlayout.load_config)")
    return config_to_dict(config)


# --- device assignment -------------------------------------------------------------


def pci_assignment(resolved: ResolvedLayout) -> dict[str, Any]:
    """Root-complex name -> its PCI assignment (buses, BARs, bridge windows) as JSON,
    exactly the `"pci"` object `resolve --format json` adds, for root complexes that
    list devices. Raises `VmLayoutError` (e.g. `mmio_exhaustion`) when they do not fit."""
    from vmlayout.pci_layout import assign_resolved

    return {name: a.to_json() for name, a in assign_resolved(_layout(resolved)).items()}


# --- firmware views ----------------------------------------------------------------


def e820_map(
    resolved: ResolvedLayout, acpi_len: int = 0, smbios_len: int = 0
) -> list[tuple[int, int, int]]:
    """The Linux direct-boot E820 map as (address, size, type) entries (1 RAM,
    2 reserved, 3 ACPI); `e820_bytes` packs the same entries."""
    from vmlayout.firmware.e820 import build_e820

    _e820_lengths(acpi_len, smbios_len)
    return [
        (e.addr, e.size, e.type)
        for e in build_e820(_view(resolved, "e820").memory_layout, acpi_len, smbios_len)
    ]


def _e820_lengths(acpi_len: Any, smbios_len: Any) -> None:
    for name, value in (("acpi_len", acpi_len), ("smbios_len", smbios_len)):
        _argument(value, int, name, "a byte count (int)")
        if value < 0:
            raise VmLayoutError("invalid_argument", f"{name}: {value} is negative")


def e820_bytes(resolved: ResolvedLayout, acpi_len: int = 0, smbios_len: int = 0) -> bytes:
    """The packed 20-byte E820 entries a boot loader copies into `boot_params`."""
    from vmlayout.firmware.e820 import build_e820, encode_e820

    _e820_lengths(acpi_len, smbios_len)
    return encode_e820(build_e820(_view(resolved, "e820").memory_layout, acpi_len, smbios_len))


def reference_mtrrs(resolved: ResolvedLayout) -> list[tuple[int, int]]:
    """The reference VMM's variable MTRRs as (MSR, value) pairs, in its write order."""
    from vmlayout.firmware.mtrr import compute_variable_mtrrs

    writes = compute_variable_mtrrs(
        _view(resolved, "mtrr").memory_layout,
        resolved.config.physical_address_size,
        resolved.chipset,
    )
    return [(w.msr, w.value) for w in writes]


def mtrr_msrs(resolved: ResolvedLayout) -> list[tuple[int, int]]:
    """The complete initial MTRR state (DEF_TYPE, fixed-range and variable MSRs) the
    config's `platform.mtrr` section asks for (loader `linux`/`uefi`/`pcat`, policy
    `reference`/`exact`, register count, approximation)."""
    from vmlayout.artifacts import mtrr_state_of

    return [(w.msr, w.value) for w in mtrr_state_of(_view(resolved, "mtrr")).to_msrs()]


def pcat_config(resolved: ResolvedLayout) -> dict[str, Any]:
    """PCAT BIOS config items, INT 15h E820 helper replies and the 256-byte initial CMOS
    image (hex), exactly `emit pcat --format json`."""
    from vmlayout.firmware.pcat import PcatConfig

    return PcatConfig(_view(resolved, "pcat").memory_layout, resolved.chipset).to_json()


def _view(resolved: ResolvedLayout, name: str) -> ResolvedLayout:
    """`resolved`, checked to be a layout whose architecture has view `name` (the
    refusal the CLI gives)."""
    from vmlayout.artifacts import require_view

    require_view(_layout(resolved), name)
    return resolved


def uefi_config_blob(resolved: ResolvedLayout, *, layout_only: bool = False) -> bytes:
    """The UEFI config blob of the VM (processors and platform from its config).
    `layout_only` gives just the three layout-bearing structures."""
    from vmlayout.firmware.uefi import encode_layout_blob, uefi_blob_of

    _argument(layout_only, bool, "layout_only", "True or False")
    if layout_only:
        resolved = _layout(resolved)
        return encode_layout_blob(resolved.memory_layout.ram, resolved.chipset)
    return uefi_blob_of(_view(resolved, "uefi"))


def acpi_tables(resolved: ResolvedLayout) -> dict[str, bytes]:
    """File name (`DSDT.aml`, `APIC.aml`, …, `RSDP.bin`) -> table bytes, as `emit acpi`
    writes them for the VM (processors and platform from its config)."""
    from vmlayout.acpi.dsdt import build_acpi_tables

    return dict(build_acpi_tables(_view(resolved, "acpi")))


def linux_device_tree(resolved: ResolvedLayout) -> bytes:
    """The arm64 Linux direct-boot DTB (aarch64 configs)."""
    from vmlayout.devicetree.linux import linux_dtb_of

    return linux_dtb_of(_view(resolved, "linux-dt"))


def paravisor_device_tree(resolved: ResolvedLayout) -> bytes:
    """The DTB an IGVM host hands the paravisor (x86_64 configs)."""
    from vmlayout.devicetree.paravisor import paravisor_dtb_of

    return paravisor_dtb_of(_view(resolved, "paravisor-dt"))


def artifact_set(resolved: ResolvedLayout, settings: Any = None) -> dict[str, bytes]:
    """Every artifact `emit all` writes (file name -> bytes, `config.json` included);
    `settings` is a `vmlayout.artifacts.EmitSettings`. Write them with
    `vmlayout.output.write_directory_atomic` to get what `emit all -o DIR` leaves."""
    from vmlayout.artifacts import EmitSettings, build_artifact_set

    if settings is not None:
        _argument(settings, EmitSettings, "settings", "a vmlayout.artifacts.EmitSettings or None")
    return build_artifact_set(_layout(resolved), settings or EmitSettings())


# --- tools: where, explain, diff, fit, inspect ----------------------------------------
# Each returns a frozen dataclass holding what the command's `--format json` prints
# (its `to_json()` is exactly that object), and raises `VmLayoutError` on bad input.


def where(address: int | str, config: ConfigSource = None, /) -> Any:
    """What lives at a guest physical address (`vmlayout where`): a
    `vmlayout.inspect.where.WhereResult` with the range or gap, the architectural zone
    and the chain of windows. The config's `processors` and `platform` place the zones
    (a redistributor per VP, the IO-APIC, the GIC's frames)."""
    from vmlayout.inspect.where import parse_address
    from vmlayout.inspect.where import where as where_in

    _argument(address, (int, str), "address", "an integer or a string such as 0xfee0_0000")
    value = parse_address(address if isinstance(address, str) else str(address))
    return where_in(value, load_config(config))


def explain(name: str, config: ConfigSource = None, /) -> Any:
    """Why a range sits where it does (`vmlayout explain`): an
    `vmlayout.inspect.explain.Explanation` for a range name, a `PciExplanation` for a
    BAR or bridge window (`rc0 3:0.0 bar1`), a `WhereResult` for an address."""
    from vmlayout.inspect.explain import explain as explain_range
    from vmlayout.inspect.explain import explain_pci_name
    from vmlayout.inspect.where import looks_like_address

    _argument(name, str, "name", "a range, BAR or window name, or an address")
    if looks_like_address(name):
        return where(name, config)
    loaded = load_config(config)
    return explain_pci_name(name, loaded) or explain_range(name, loaded)


def diff(
    before: ConfigSource | Mapping[str, Any],
    after: ConfigSource | Mapping[str, Any],
    /,
    *,
    strict: bool = False,
    arch: str | None = None,
) -> Any:
    """The compatibility verdict between two configs or saved layouts (`vmlayout diff`):
    a `vmlayout.inspect.diff.DiffResult`. Each side is anything `load_config` accepts,
    a saved `layout_json` mapping, or the path of a saved layout JSON; firmware-only
    settings are compared when both sides are configs."""
    from vmlayout.inspect.diff import DiffResult, diff_layouts

    sides = [_diff_side(before, arch, "A"), _diff_side(after, arch, "B")]
    (old, old_config), (new, new_config) = sides
    configs = None if old_config is None or new_config is None else (old_config, new_config)
    return DiffResult.of(diff_layouts(old, new, strict, configs), strict)


def _diff_side(
    source: ConfigSource | Mapping[str, Any], arch: str | None, side: str
) -> tuple[dict[str, Any], VmConfig | None]:
    from vmlayout.inspect.diff import check_saved_layout, load_side
    from vmlayout.report import resolved_to_json

    if isinstance(source, Mapping) and "placed" in source and "chipset" in source:
        return check_saved_layout(dict(source), f"side {side}"), None
    if isinstance(source, (str, Path)):
        return load_side(source, arch, side)
    try:
        config = load_config(source, arch=arch)
        return resolved_to_json(resolve(config)), config
    except VmLayoutError as error:
        raise VmLayoutError(error.kind, f"side {side}: {error.message}") from None


def fit(config: ConfigSource, /, *, host_phys_bits: int | None = None) -> Any:
    """The smallest root-complex windows that hold every BAR (`vmlayout fit`): a
    `vmlayout.pci_layout.fit.FitResult` (the fitted config, each window before and after,
    the layout top and whether it fits `host_phys_bits`)."""
    from vmlayout.pci_layout.fit import fit_config

    if host_phys_bits is not None:
        _argument(host_phys_bits, int, "host_phys_bits", "an integer or None")
    return fit_config(load_config(config), host_phys_bits)


def inspect(path: str | Path, /, *, strict: bool = False) -> Any:
    """Recognise any file (or `emit all` directory) vmlayout writes and decode it back
    (`vmlayout inspect`), cross-checking a directory's views: a
    `vmlayout.inspect.dispatch.InspectResult`."""
    from vmlayout.inspect.dispatch import inspect_artifacts

    return inspect_artifacts(path, strict=strict)
