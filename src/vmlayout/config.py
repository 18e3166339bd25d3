"""Config files (TOML or JSON) and dicts -> `VmConfig`, rejecting anything doubtful.

The accepted fields are exactly those of a resolver vector's `config` object, so every
vector is a valid config file. Errors name the key path (`pcie_root_complexes[1].colour`)
so a user can find the line; nothing invalid may reach the allocator as a crash.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vmlayout.errors import VmLayoutError
from vmlayout.inputs import STDIN_NAME, parse_json, parse_toml, read_text, shown
from vmlayout.policy import (
    Arch,
    DynamicMmio,
    FixedMmio,
    IommuKind,
    MmioWindow,
    RootComplexConfig,
    VmConfig,
    Vtl2Layout,
)
from vmlayout.ranges import GIB, MIB, parse_size

U64_LIMIT = 1 << 64
#: Root complexes a config may list: every command's work grows with them, and no
#: real VM comes near (docs/config.md, input limits).
MAX_ROOT_COMPLEXES = 16_384

TOP_LEVEL_KEYS = (
    "arch",
    "node_mem_sizes",
    "chipset_low_mmio_size",
    "chipset_high_mmio_size",
    "vtl2_chipset_mmio_size",
    "pcie_root_complexes",
    "virtio_mmio_count",
    "pcie_ecam_below_4gb",
    "vtl2_layout",
    "ram_start_address",
    "vtl2_framebuffer_size",
    "physical_address_size",
    "numa_distances",
)
RC_KEYS = (
    "name",
    "segment",
    "start_bus",
    "end_bus",
    "low_mmio",
    "high_mmio",
    "cxl",
    "iommu",
    "numa_node",
    "preserve_bars",
    "devices",
)

#: The built-in default VM (`vmlayout resolve` with no CONFIG); `examples/default.toml`
#: spells out the same machine.
DEFAULT_VM = VmConfig(
    arch=Arch.X86_64,
    node_mem_sizes=(4 * GIB,),
    chipset_low_mmio_size=128 * MIB,
    chipset_high_mmio_size=512 * MIB,
    pcie_root_complexes=(
        RootComplexConfig(
            name="rc0",
            segment=0,
            start_bus=0,
            end_bus=255,
            low_mmio=DynamicMmio(64 * MIB),
            high_mmio=DynamicMmio(GIB),
        ),
    ),
    physical_address_size=46,
)


def _error(path: str, reason: str) -> VmLayoutError:
    return VmLayoutError("invalid_config", f"{path}: {reason}")


def _check_keys(data: Mapping[str, Any], allowed: tuple[str, ...], path: str) -> None:
    for key in data:
        if key not in allowed:
            prefix = f"{path}." if path else ""
            raise _error(
                f"{prefix}{shown(key)}", f"unknown key (expected one of: {', '.join(allowed)})"
            )


def _size(value: object, path: str, limit: int = U64_LIMIT) -> int:
    size = parse_size(value, path)
    if size >= limit:
        raise _error(path, f"{size:#x} is too large (must be below {limit:#x})")
    return size


def _int(value: object, path: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _error(path, f"expected an integer, got {type(value).__name__}")
    if not low <= value <= high:
        raise _error(path, f"{value} is out of range {low}..{high}")
    return value


def _mapping(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _error(path, f"expected a table/object, got {type(value).__name__}")
    return value


def _window(value: object, path: str) -> MmioWindow:
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        return DynamicMmio(_size(value, path))
    data = _mapping(value, path)
    if "size" in data:
        _check_keys(data, ("size",), path)
        return DynamicMmio(_size(data["size"], f"{path}.size"))
    _check_keys(data, ("start", "end"), path)
    if "start" not in data or "end" not in data:
        raise _error(path, "expected {size} for a dynamic window or {start, end} for a fixed one")
    return FixedMmio(_size(data["start"], f"{path}.start"), _size(data["end"], f"{path}.end"))


def _enum(value: object, path: str, choices: Mapping[str, Any]) -> Any:
    if not isinstance(value, str) or value not in choices:
        raise _error(path, f"{value!r} is not one of {', '.join(choices)}")
    return choices[value]


def _root_complex(value: object, path: str, index: int, arch: Arch) -> RootComplexConfig:
    data = _mapping(value, path)
    _check_keys(data, RC_KEYS, path)
    name = data.get("name", f"rc{index}")
    if not isinstance(name, str) or not name or not name.isprintable() or " " in name:
        raise _error(f"{path}.name", f"{name!r} is not a non-empty name without spaces")
    start_bus = _int(data.get("start_bus", 0), f"{path}.start_bus", 0, 255)
    end_bus = _int(data.get("end_bus", 255), f"{path}.end_bus", 0, 255)
    if end_bus < start_bus:
        raise _error(f"{path}.end_bus", f"{end_bus} is below start_bus {start_bus}")
    cxl = data.get("cxl")
    hdm_size = None
    if cxl is not None:
        cxl_data = _mapping(cxl, f"{path}.cxl")
        _check_keys(cxl_data, ("hdm_size",), f"{path}.cxl")
        if "hdm_size" not in cxl_data:
            raise _error(f"{path}.cxl.hdm_size", "missing")
        hdm_size = _size(cxl_data["hdm_size"], f"{path}.cxl.hdm_size")
    iommu = data.get("iommu")
    kind = None
    if iommu is not None:
        kind = _enum(iommu, f"{path}.iommu", {k.value: k for k in IommuKind})
        if kind.arch is not arch:
            raise _error(f"{path}.iommu", f"{kind.value} is not available on {arch.value}")
    numa_node = data.get("numa_node")
    if numa_node is not None:
        numa_node = _int(numa_node, f"{path}.numa_node", 0, 0xFFFF_FFFF)
    preserve_bars = data.get("preserve_bars", False)
    if not isinstance(preserve_bars, bool):
        raise _error(f"{path}.preserve_bars", f"expected true or false, got {preserve_bars!r}")
    return RootComplexConfig(
        name=name,
        segment=_int(data.get("segment", 0), f"{path}.segment", 0, 0xFFFF),
        start_bus=start_bus,
        end_bus=end_bus,
        low_mmio=_window(data.get("low_mmio", {"size": 64 * MIB}), f"{path}.low_mmio"),
        high_mmio=_window(data.get("high_mmio", {"size": GIB}), f"{path}.high_mmio"),
        cxl_hdm_size=hdm_size,
        iommu=kind,
        numa_node=numa_node,
        preserve_bars=preserve_bars,
        devices=_devices(data.get("devices"), f"{path}.devices"),
    )


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


def _devices(value: object, path: str) -> tuple[Any, ...]:
    """The device model loads only for configs that list devices (cold start)."""
    if value is None:
        return ()
    from vmlayout.devices import devices_from_data

    return devices_from_data(value, path)


def _devices_to_data(devices: tuple[Any, ...]) -> list[Any]:
    from vmlayout.devices import devices_to_data

    return devices_to_data(devices)


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


def config_from_dict(data: Mapping[str, Any], arch: str | None = None) -> VmConfig:
    """Build a `VmConfig`; `arch` (from `--arch`) overrides the file's architecture."""
    data = _mapping(data, "config")
    _check_keys(data, TOP_LEVEL_KEYS, "")
    arch_value = _enum(arch or data.get("arch", "x86_64"), "arch", {a.value: a for a in Arch})
    nodes = data.get("node_mem_sizes", [4 * GIB])
    if not isinstance(nodes, list):
        raise _error("node_mem_sizes", f"expected a list of sizes, got {type(nodes).__name__}")
    node_sizes = tuple(_size(n, f"node_mem_sizes[{i}]") for i, n in enumerate(nodes))

    rcs_data = data.get("pcie_root_complexes", [])
    if not isinstance(rcs_data, list):
        raise _error("pcie_root_complexes", "expected a list of tables")
    if len(rcs_data) > MAX_ROOT_COMPLEXES:
        limit = f"{len(rcs_data)} root complexes; at most {MAX_ROOT_COMPLEXES} are allowed"
        raise _error("pcie_root_complexes", limit)
    rcs = [
        _root_complex(rc, f"pcie_root_complexes[{i}]", i, arch_value)
        for i, rc in enumerate(rcs_data)
    ]
    _check_root_complexes(rcs)
    if any(rc.devices for rc in rcs):
        from vmlayout.devices import check_function_total

        check_function_total(
            [(f"pcie_root_complexes[{i}].devices", rc.devices) for i, rc in enumerate(rcs)]
        )

    vtl2 = data.get("vtl2_layout")
    vtl2_layout = None
    if vtl2 is not None:
        vtl2_data = _mapping(vtl2, "vtl2_layout")
        _check_keys(vtl2_data, ("size", "alignment"), "vtl2_layout")
        if "size" not in vtl2_data:
            raise _error("vtl2_layout.size", "missing")
        vtl2_layout = Vtl2Layout(
            _size(vtl2_data["size"], "vtl2_layout.size"),
            _size(vtl2_data.get("alignment", 0x1000), "vtl2_layout.alignment"),
        )

    below_4gb = data.get("pcie_ecam_below_4gb", False)
    if not isinstance(below_4gb, bool):
        raise _error("pcie_ecam_below_4gb", f"expected true or false, got {below_4gb!r}")

    def size_field(key: str, default: int, limit: int = U64_LIMIT) -> int:
        return _size(data.get(key, default), key, limit)

    return VmConfig(
        arch=arch_value,
        node_mem_sizes=node_sizes,
        chipset_low_mmio_size=size_field(
            "chipset_low_mmio_size", arch_value.default_low_mmio_size, 1 << 32
        ),
        chipset_high_mmio_size=size_field("chipset_high_mmio_size", 512 * MIB),
        vtl2_chipset_mmio_size=size_field("vtl2_chipset_mmio_size", 0),
        pcie_root_complexes=tuple(rcs),
        virtio_mmio_count=_int(data.get("virtio_mmio_count", 0), "virtio_mmio_count", 0, 1 << 20),
        pcie_ecam_below_4gb=below_4gb,
        vtl2_layout=vtl2_layout,
        ram_start_address=size_field("ram_start_address", 0),
        vtl2_framebuffer_size=size_field("vtl2_framebuffer_size", 0),
        physical_address_size=_int(
            data.get("physical_address_size", 46), "physical_address_size", 1, 63
        ),
        numa_distances=_numa_distances(data.get("numa_distances", []), len(node_sizes)),
    )


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
            _check_keys(item, ("from", "to", "distance"), path)
            missing = [k for k in ("from", "to", "distance") if k not in item]
            if missing:
                raise _error(f"{path}.{missing[0]}", "missing")
            triple = [item["from"], item["to"], item["distance"]]
        elif isinstance(item, list) and len(item) == 3:
            triple = item
        else:
            raise _error(path, "expected [from, to, distance] or {from, to, distance}")
        src = _int(triple[0], f"{path}.from", 0, node_count - 1)
        dst = _int(triple[1], f"{path}.to", 0, node_count - 1)
        distance = _int(triple[2], f"{path}.distance", 10, 255)
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
        return _mapping(parse_json(text, where), where), "json"
    if suffix == ".toml":
        return _mapping(parse_toml(text, where), where), "toml"
    try:
        return _mapping(parse_toml(text, where), where), "toml"
    except VmLayoutError as toml_error:
        try:
            return _mapping(parse_json(text, where), where), "json"
        except VmLayoutError as json_error:
            # Report the parser the text looks meant for.
            raise json_error if text.lstrip()[:1] in ("{", "[") else toml_error from None


def load_config(path: str | Path, arch: str | None = None) -> VmConfig:
    """Read a `.toml` or `.json` config file (other suffixes: TOML, then JSON); `-` reads
    standard input. Only regular files up to the input size limit are read."""
    path = Path(path)
    text = read_text(path, "invalid_config")
    return config_from_dict(parse_config_text(path, text)[0], arch)


def config_to_dict(config: VmConfig) -> dict[str, Any]:
    """The vector-schema form of a config (every field explicit, sizes in bytes)."""

    def window(w: MmioWindow) -> dict[str, int]:
        return {"size": w.size} if isinstance(w, DynamicMmio) else {"start": w.start, "end": w.end}

    return {
        "arch": config.arch.value,
        "node_mem_sizes": list(config.node_mem_sizes),
        "chipset_low_mmio_size": config.chipset_low_mmio_size,
        "chipset_high_mmio_size": config.chipset_high_mmio_size,
        "vtl2_chipset_mmio_size": config.vtl2_chipset_mmio_size,
        "pcie_root_complexes": [
            {
                "name": rc.name,
                "segment": rc.segment,
                "start_bus": rc.start_bus,
                "end_bus": rc.end_bus,
                "low_mmio": window(rc.low_mmio),
                "high_mmio": window(rc.high_mmio),
                "cxl": None if rc.cxl_hdm_size is None else {"hdm_size": rc.cxl_hdm_size},
                "iommu": None if rc.iommu is None else rc.iommu.value,
                **({} if rc.numa_node is None else {"numa_node": rc.numa_node}),
                **({"preserve_bars": True} if rc.preserve_bars else {}),
                **({"devices": _devices_to_data(rc.devices)} if rc.devices else {}),
            }
            for rc in config.pcie_root_complexes
        ],
        "virtio_mmio_count": config.virtio_mmio_count,
        "pcie_ecam_below_4gb": config.pcie_ecam_below_4gb,
        "vtl2_layout": None
        if config.vtl2_layout is None
        else {"size": config.vtl2_layout.size, "alignment": config.vtl2_layout.alignment},
        "ram_start_address": config.ram_start_address,
        "vtl2_framebuffer_size": config.vtl2_framebuffer_size,
        "physical_address_size": config.physical_address_size,
        **(
            {"numa_distances": [list(d) for d in config.numa_distances]}
            if config.numa_distances
            else {}
        ),
    }
