"""Config files (TOML or JSON) and dicts -> `VmConfig`, rejecting anything doubtful.

The accepted keys are the fields `VmConfig` and its sections declare (`vmlayout.schema`),
so the loader, the serializer, the built-in VM and the docs cannot disagree about a
field or its default; every resolver vector's `config` object is a valid config file.
Errors name the key path (`pcie_root_complexes[1].colour`) so a user can find the line;
nothing invalid may reach the allocator as a crash.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from vmlayout.arch import ARCH_NAMES, Arch
from vmlayout.errors import VmLayoutError
from vmlayout.inputs import STDIN_NAME, parse_json, parse_toml, read_text, shown
from vmlayout.policy import (
    DynamicMmio,
    FixedMmio,
    IommuKind,
    MmioWindow,
    RootComplexConfig,
    VmConfig,
    Vtl2Layout,
    rc_name,
)
from vmlayout.schema import (
    check_keys,
    config_error,
    dump_field,
    expect_mapping,
    keys_of,
    parse_field,
    parse_int,
    parse_size_value,
)

#: Root complexes a config may list: every command's work grows with them, and no
#: real VM comes near (docs/config.md, input limits).
MAX_ROOT_COMPLEXES = 16_384

#: The keys a config file may use, from the dataclasses that declare them.
TOP_LEVEL_KEYS = keys_of(VmConfig)
RC_KEYS = keys_of(RootComplexConfig)


def default_vm(arch: Arch | str | None = None) -> VmConfig:
    """The built-in default VM (`vmlayout resolve` with no CONFIG, `load_config()` in the
    library): every field at its declared default plus one root complex with default
    windows, as `examples/default.toml` spells out."""
    chosen = VmConfig().arch if arch is None else Arch(arch)
    return VmConfig(arch=chosen, pcie_root_complexes=(RootComplexConfig(name=rc_name(0)),))


#: The x86_64 built-in default VM.
DEFAULT_VM = default_vm()

_error = config_error


def _fields(cls: type) -> tuple[dataclasses.Field[Any], ...]:
    return dataclasses.fields(cls)


def _window(value: object, path: str) -> MmioWindow:
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        return DynamicMmio(parse_size_value(value, path))
    data = expect_mapping(value, path)
    if "size" in data:
        check_keys(data, ("size",), path)
        return DynamicMmio(parse_size_value(data["size"], f"{path}.size"))
    check_keys(data, ("start", "end"), path)
    if "start" not in data or "end" not in data:
        raise _error(path, "expected {size} for a dynamic window or {start, end} for a fixed one")
    return FixedMmio(
        parse_size_value(data["start"], f"{path}.start"),
        parse_size_value(data["end"], f"{path}.end"),
    )


def _enum(value: object, path: str, choices: Mapping[str, Any]) -> Any:
    if not isinstance(value, str) or value not in choices:
        from vmlayout.schema import did_you_mean

        hint = did_you_mean(value, tuple(choices)) if isinstance(value, str) else ""
        raise _error(path, f"{value!r} is not one of {', '.join(choices)}{hint}")
    return choices[value]


def _cxl(value: object, path: str) -> int | None:
    if value is None:
        return None
    data = expect_mapping(value, path)
    check_keys(data, ("hdm_size",), path)
    if "hdm_size" not in data:
        raise _error(f"{path}.hdm_size", "missing")
    return parse_size_value(data["hdm_size"], f"{path}.hdm_size")


def _iommu(value: object, path: str, arch: Arch) -> IommuKind | None:
    if value is None:
        return None
    kind: IommuKind = _enum(value, path, {k.value: k for k in IommuKind})
    if kind.value not in arch.spec.iommu_kinds:
        raise _error(path, f"{kind.value} is not available on {arch.value}")
    return kind


def _devices(value: object, path: str) -> tuple[Any, ...]:
    """The device model loads only for configs that list devices (cold start)."""
    if value is None:
        return ()
    from vmlayout.devices import devices_from_data

    return devices_from_data(value, path)


def _name(value: object, path: str) -> str:
    if not isinstance(value, str) or not value or not value.isprintable() or " " in value:
        raise _error(path, f"{value!r} is not a non-empty name without spaces")
    if len(value) > 200:
        raise _error(path, "is longer than 200 characters")
    return value


def _root_complex(value: object, path: str, index: int, arch: Arch) -> RootComplexConfig:
    data = expect_mapping(value, path)
    check_keys(data, RC_KEYS, path)
    custom: dict[str, Callable[[object, str], Any]] = {
        "window": _window,
        "cxl": _cxl,
        "iommu": lambda v, p: _iommu(v, p, arch),
        "devices": _devices,
    }
    values: dict[str, Any] = {"name": rc_name(index)}
    for field in _fields(RootComplexConfig):
        key = field.metadata.get("key") or field.name
        if key not in data:
            continue
        where = f"{path}.{key}"
        kind = field.metadata.get("kind")
        if field.name == "name":
            values["name"] = _name(data[key], where)
        elif kind in custom:
            values[field.name] = custom[kind](data[key], where)
        else:
            values[field.name] = parse_field(field, data[key], where, "invalid_config")
    rc = RootComplexConfig(**values)
    if rc.end_bus < rc.start_bus:
        raise _error(f"{path}.end_bus", f"{rc.end_bus} is below start_bus {rc.start_bus}")
    return rc


def _claim_buses(
    claimed: list[tuple[int, int, int]],
    rc: RootComplexConfig,
    index: int,
    rcs: list[RootComplexConfig],
) -> None:
    """Add `rc`'s buses to its segment's sorted, disjoint (start, end, index) claims, or
    refuse naming the earliest root complex it overlaps.

    Claims stay disjoint and a segment has 256 buses, so each list holds at most 256
    entries: n root complexes cost O(n log 256), not the O(n²) of comparing pairs."""
    at = bisect.bisect_left(claimed, (rc.start_bus, -1, -1))
    if at and claimed[at - 1][1] >= rc.start_bus:
        at -= 1  # the claim starting before rc may reach into it
    hits = []
    while at < len(claimed) and claimed[at][0] <= rc.end_bus:
        if claimed[at][1] >= rc.start_bus:
            hits.append(claimed[at][2])
        at += 1
    if hits:
        other_index = min(hits)
        other = rcs[other_index]
        raise _error(
            f"pcie_root_complexes[{index}]",
            f"buses {rc.start_bus}..{rc.end_bus} overlap buses "
            f"{other.start_bus}..{other.end_bus} of pcie_root_complexes[{other_index}] "
            f"in segment {rc.segment}",
        )
    bisect.insort(claimed, (rc.start_bus, rc.end_bus, index))


def _check_root_complexes(rcs: list[RootComplexConfig]) -> None:
    names: dict[str, int] = {}
    kinds: dict[IommuKind, int] = {}
    claimed: dict[int, list[tuple[int, int, int]]] = {}
    for index, rc in enumerate(rcs):
        path = f"pcie_root_complexes[{index}]"
        if rc.name in names:
            raise _error(
                f"{path}.name",
                f"{rc.name!r} is already used by pcie_root_complexes[{names[rc.name]}]",
            )
        names[rc.name] = index
        if rc.iommu is not None:
            kinds.setdefault(rc.iommu, index)
            if len(kinds) > 1:
                first = next(iter(kinds))
                raise _error(
                    f"{path}.iommu",
                    f"{rc.iommu.value} differs from {first.value} of "
                    f"pcie_root_complexes[{kinds[first]}]; all IOMMUs must be one kind",
                )
        _claim_buses(claimed.setdefault(rc.segment, []), rc, index, rcs)


def _node_sizes(value: object, path: str) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise _error(path, f"expected a list of sizes, got {type(value).__name__}")
    return tuple(parse_size_value(n, f"{path}[{i}]") for i, n in enumerate(value))


def _root_complexes(value: object, path: str, arch: Arch) -> tuple[RootComplexConfig, ...]:
    if not isinstance(value, list):
        raise _error(path, "expected a list of tables")
    if len(value) > MAX_ROOT_COMPLEXES:
        raise _error(path, f"{len(value)} root complexes; at most {MAX_ROOT_COMPLEXES} are allowed")
    rcs = [_root_complex(rc, f"{path}[{i}]", i, arch) for i, rc in enumerate(value)]
    _check_root_complexes(rcs)
    if any(rc.devices for rc in rcs):
        from vmlayout.devices import check_function_total

        check_function_total([(f"{path}[{i}].devices", rc.devices) for i, rc in enumerate(rcs)])
    return tuple(rcs)


def _vtl2_layout(value: object, path: str) -> Vtl2Layout | None:
    if value is None:
        return None
    data = expect_mapping(value, path)
    check_keys(data, ("size", "alignment"), path)
    if "size" not in data:
        raise _error(f"{path}.size", "missing")
    return Vtl2Layout(
        parse_size_value(data["size"], f"{path}.size"),
        parse_size_value(data.get("alignment", 0x1000), f"{path}.alignment"),
    )


def config_from_dict(data: Mapping[str, Any], arch: str | None = None) -> VmConfig:
    """Build a `VmConfig`; `arch` (from `--arch`) overrides the file's architecture.
    Omitted keys take the defaults `VmConfig` declares (arch-dependent ones for the
    chosen architecture)."""
    data = expect_mapping(data, "config")
    check_keys(data, TOP_LEVEL_KEYS, "")
    arch_value: Arch = _enum(
        arch or data.get("arch", VmConfig().arch.value), "arch", {n: Arch(n) for n in ARCH_NAMES}
    )
    values: dict[str, Any] = {"arch": arch_value}
    custom: dict[str, Callable[[object, str], Any]] = {
        "node_sizes": _node_sizes,
        "root_complexes": lambda v, p: _root_complexes(v, p, arch_value),
        "vtl2_layout": _vtl2_layout,
    }
    for field in _fields(VmConfig):
        kind = field.metadata.get("kind")
        if field.name not in data or kind in ("arch", "numa_distances"):
            continue
        if kind in custom:
            values[field.name] = custom[kind](data[field.name], field.name)
        else:
            values[field.name] = parse_field(field, data[field.name], field.name, "invalid_config")
    node_count = len(values.get("node_mem_sizes", VmConfig().node_mem_sizes))
    if "numa_distances" in data:
        values["numa_distances"] = _numa_distances(data["numa_distances"], node_count)
    try:
        return VmConfig(**values)
    except VmLayoutError as error:  # a rule across sections (e.g. GIC frames vs VPs)
        if error.kind == "invalid_config":
            raise
        raise _error("config", error.message) from None


def _numa_distances(value: object, node_count: int) -> tuple[tuple[int, int, int], ...]:
    """`[[from, to, distance], ...]` or `[{from, to, distance}, ...]`: SLIT overrides.
    A node's distance to itself must stay 10 (ACPI); 0..9 are reserved, 255 means
    unreachable."""
    if not isinstance(value, list):
        raise _error("numa_distances", f"expected a list, got {type(value).__name__}")
    entries = []
    for index, item in enumerate(value):
        path = f"numa_distances[{index}]"
        if isinstance(item, Mapping):
            check_keys(item, ("from", "to", "distance"), path)
            missing = [k for k in ("from", "to", "distance") if k not in item]
            if missing:
                raise _error(f"{path}.{missing[0]}", "missing")
            triple = [item["from"], item["to"], item["distance"]]
        elif isinstance(item, list) and len(item) == 3:
            triple = item
        else:
            raise _error(path, "expected [from, to, distance] or {from, to, distance}")
        src = parse_int(triple[0], f"{path}.from", 0, node_count - 1)
        dst = parse_int(triple[1], f"{path}.to", 0, node_count - 1)
        distance = parse_int(triple[2], f"{path}.distance", 10, 255)
        if src == dst and distance != 10:
            raise _error(f"{path}.distance", f"{distance}: a node's distance to itself is 10")
        entries.append((src, dst, distance))
    return tuple(entries)


def parse_config_text(path: Path, text: str) -> tuple[Mapping[str, Any], str]:
    """(data, `"toml"` or `"json"`): TOML or JSON by suffix (other suffixes and stdin:
    TOML, then JSON); `fit -o` writes the format found. Every parser failure, however
    hostile the text, is one `invalid_config` error."""
    where = "<stdin>" if str(path) == STDIN_NAME else shown(path)
    suffix = "" if str(path) == STDIN_NAME else path.suffix.lower()
    if suffix == ".json":
        return expect_mapping(parse_json(text, where), where), "json"
    if suffix == ".toml":
        return expect_mapping(parse_toml(text, where), where), "toml"
    try:
        return expect_mapping(parse_toml(text, where), where), "toml"
    except VmLayoutError as toml_error:
        try:
            return expect_mapping(parse_json(text, where), where), "json"
        except VmLayoutError as json_error:
            # Report the parser the text looks meant for.
            raise json_error if text.lstrip()[:1] in ("{", "[") else toml_error from None


def load_config(path: str | Path, arch: str | None = None) -> VmConfig:
    """Read a `.toml` or `.json` config file (other suffixes: TOML, then JSON); `-` reads
    standard input. Only regular files up to the input size limit are read."""
    path = Path(path)
    text = read_text(path, "invalid_config")
    return config_from_dict(parse_config_text(path, text)[0], arch)


def _window_data(window: MmioWindow) -> dict[str, int]:
    if isinstance(window, DynamicMmio):
        return {"size": window.size}
    return {"start": window.start, "end": window.end}


def _devices_to_data(devices: tuple[Any, ...]) -> list[Any]:
    from vmlayout.devices import devices_to_data

    return devices_to_data(devices)


_DUMPERS: dict[str, Callable[[Any], Any]] = {
    "arch": lambda a: a.value,
    "node_sizes": list,
    "window": _window_data,
    "cxl": lambda size: None if size is None else {"hdm_size": size},
    "iommu": lambda kind: None if kind is None else kind.value,
    "devices": _devices_to_data,
    "vtl2_layout": lambda v: None if v is None else {"size": v.size, "alignment": v.alignment},
    "numa_distances": lambda entries: [list(d) for d in entries],
}


def _to_data(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in _fields(type(obj)):
        key = field.metadata.get("key") or field.name
        value = getattr(obj, field.name)
        kind = field.metadata.get("kind")
        if kind == "root_complexes":
            out[key] = [_to_data(rc) for rc in value]
        elif kind == "devices" and not value:
            continue  # most root complexes list none: keep records short
        elif kind in _DUMPERS:
            out[key] = _DUMPERS[kind](value)
        else:
            out[key] = dump_field(field, value)
    return out


def config_to_dict(config: VmConfig) -> dict[str, Any]:
    """The config with every field explicit (sizes in bytes), in the file schema:
    `config_from_dict(config_to_dict(c)) == c`."""
    return _to_data(config)
