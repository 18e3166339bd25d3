"""`vmlayout where ADDRESS`: the range, gap, zone and chain at an address.

Expected ranges and gaps are derived from `resolve --format json` (its `placed` list,
named here by counting tags as docs/tools.md states the scheme), and expected zones
from the reference's addresses written out by hand, never from `where`'s own code.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzzing import assert_one_line_error, run_main
from vmlayout.config import DEFAULT_VM, config_from_dict, config_to_dict, load_config
from vmlayout.errors import VmLayoutError
from vmlayout.inspect.where import parse_address, where
from vmlayout.platform import GicPlatform, Platform, X86Platform
from vmlayout.policy import Arch, VmConfig, resolve
from vmlayout.report import resolved_to_json
from vmlayout.topology import MAX_VP_COUNT, Processors
from vmlayout.zones import zone_at, zone_blocks

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _aarch64(config: VmConfig) -> VmConfig:
    data = config_to_dict(config)
    del data["chipset_low_mmio_size"]
    return config_from_dict(data, "aarch64")


LAYOUTS = {
    "default": DEFAULT_VM,
    "default-aarch64": _aarch64(DEFAULT_VM),
    "numa-vtl2": load_config(EXAMPLES / "numa-vtl2.toml"),
    "large-4tib": load_config(EXAMPLES / "large-4tib.toml"),
    "aarch64": load_config(EXAMPLES / "aarch64.toml"),
}


def _placed_names(expect: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(name, start, end) of every placed range: a tag's second and later extents are
    `<tag>-extent<N>`; chipset windows are placements already; a root complex's ECAM
    share is its own range `pcie-<rc>-ecam` when it is not its whole segment's block."""
    seen: dict[str, int] = {}
    out = []
    for p in expect["placed"]:
        n = seen.get(p["name"], 0)
        seen[p["name"]] = n + 1
        name = p["name"] if n == 0 else f"{p['name']}-extent{n}"
        if p["end"] > p["start"]:
            out.append((name, p["start"], p["end"]))
    blocks = {(start, end) for _, start, end in out}
    for rc in expect["pcie_root_complexes"]:
        if tuple(rc["ecam"]) not in blocks:
            out.append((f"pcie-{rc['name']}-ecam", *rc["ecam"]))
    return out


def _probe_points(spans: list[tuple[str, int, int]]) -> list[int]:
    points = set()
    for _, start, end in spans:
        points |= {start, end - 1, (start + end) // 2, end}
        if start:
            points.add(start - 1)
    return sorted(points)


@pytest.mark.parametrize("label", list(LAYOUTS))
def test_every_boundary_maps_to_its_range_or_gap(label: str) -> None:
    config = LAYOUTS[label]
    spans = _placed_names(resolved_to_json(resolve(config)))
    for address in _probe_points(spans):
        result = where(address, config)
        holding = [s for s in spans if s[1] <= address < s[2]]
        if holding:
            name, start, end = min(holding, key=lambda s: s[2] - s[1])
            assert result.range is not None and result.gap is None, hex(address)
            assert (result.range.name, result.range.start, result.range.end) == (name, start, end)
        else:
            assert result.range is None and result.gap is not None, hex(address)
            below = [s for s in spans if s[2] <= address]
            above = [s for s in spans if s[1] > address]
            assert result.gap.start == max((s[2] for s in below), default=0)
            assert result.gap.end == min((s[1] for s in above), default=1 << 64)
            if above:
                assert result.gap.before == min(above, key=lambda s: (s[1], -s[2]))[0]
            else:
                assert result.gap.before is None


#: The reference's fixed addresses (OpenVMM: x86defs APIC_BASE_ADDRESS, chipset
#: IOAPIC / battery, tpm_device; openvmm_defs GIC / ITS / v2m; PL011 SERIAL0/1).
X86_ZONES = {
    0xFEE0_0000: "lapic",
    0xFEE0_0FFF: "lapic",
    0xFEE0_1000: "msi-window",
    0xFEEF_FFFF: "msi-window",
    0xFEC0_0000: "ioapic",
    0xFED3_F01F: "battery",
    0xFED4_0000: "tpm",
    0xFE00_0000: "x86-reserved-zone",
    0xFFFF_FFFF: "x86-reserved-zone",
}
ARM_ZONES = {
    0xFFFF_0000: "gicd",
    0xEFFF_0000: "gicr0",
    0xF000_FFFF: "gicr0",
    0xF001_0000: "gicr1",
    0xF002_FFFF: "gicr1",
    0xF003_0000: "arm64-reserved-zone",  # past the 2 VPs' redistributors
    0xEFFC_0000: "gic-its",
    0xEFFD_FFFF: "gic-its",
    0xEFFE_C000: "uart0",
    0xEFFE_B000: "uart1",
    0xEFFE_A000: "battery",
    0xEFFE_D000: "uefi",
    0xEF00_0000: "arm64-reserved-zone",
}


@pytest.mark.parametrize(("address", "name"), X86_ZONES.items(), ids=[hex(a) for a in X86_ZONES])
def test_x86_zones_at_the_reference_addresses(address: int, name: Any) -> None:
    result = where(address, DEFAULT_VM)
    assert result.zone is not None and result.zone.name == name
    assert result.range is not None and result.range.name == "chipset-low-mmio"
    assert result.chain[-1].name == "chipset-low-mmio"


@pytest.mark.parametrize(("address", "name"), ARM_ZONES.items(), ids=[hex(a) for a in ARM_ZONES])
def test_arm64_zones_at_the_reference_addresses(address: int, name: Any) -> None:
    result = where(address, LAYOUTS["default-aarch64"])
    assert result.zone is not None and result.zone.name == name


def test_redistributors_follow_the_vp_count_and_msi_choice() -> None:
    v2m = Platform(gic=GicPlatform(msi="v2m"))
    blocks = zone_blocks(Arch.AARCH64, v2m, Processors(vp_count=8))
    gicr7 = zone_at(0xEFFF_0000 + 7 * 0x2_0000 + 0x10, blocks)
    assert gicr7 is not None and gicr7.name == "gicr7" and "VP 7" in gicr7.what
    assert zone_at(0xEFFF_0000 + 8 * 0x2_0000, blocks) is not None  # past VP 7: the zone
    assert zone_at(0xEFFF_0000 + 8 * 0x2_0000, blocks).name == "arm64-reserved-zone"  # type: ignore[union-attr]
    assert zone_at(0xEFFE_8000, blocks).name == "gic-v2m"  # type: ignore[union-attr]
    assert zone_at(0xEFFC_0000, blocks).name == "arm64-reserved-zone"  # type: ignore[union-attr]
    # The most VPs cost nothing: the per-VP block is arithmetic, not a list.
    many = zone_blocks(Arch.AARCH64, Platform(), Processors(vp_count=MAX_VP_COUNT))
    last = MAX_VP_COUNT - 1
    far = zone_at(0xEFFF_0000 + last * 0x2_0000, many)
    assert far is not None and far.name == f"gicr{last}"


def test_no_ioapic_zone_without_an_ioapic() -> None:
    blocks = zone_blocks(Arch.X86_64, Platform(x86=X86Platform(ioapic=False)))
    assert zone_at(0xFEC0_0000, blocks).name == "x86-reserved-zone"  # type: ignore[union-attr]


def test_a_bar_gets_its_chain_of_windows() -> None:
    # gpus.toml: endpoint 03:00.0 behind downstream port 02:00.0, switch upstream port
    # 01:00.0 and root port 00:00.0; its 16 MiB BAR0 is first in the low window.
    config = load_config(EXAMPLES / "gpus.toml")
    low = resolve(config).pcie_root_complexes[0].low_mmio
    result = where(low.start + 0x10, config)
    assert [s.name for s in result.chain] == [
        "rc0 03:00.0 BAR0",
        "rc0 02:00.0 mem",
        "rc0 01:00.0 mem",
        "rc0 00:00.0 mem",
        "pcie-rc0-low-mmio",
    ]
    assert result.range is not None and result.range.name == "pcie-rc0-low-mmio"
    assert result.chain[0].end - result.chain[0].start == 16 << 20


def test_gap_reasons_name_the_alignment() -> None:
    # Default VM: ram0 (4 GiB, 1 GiB aligned) fills 3 GiB; the 832 MiB left below the
    # 64 MiB root-complex window at 0xF400_0000 holds no 1 GiB piece.
    gap = where(0xC000_0000, DEFAULT_VM).gap
    assert gap is not None
    assert (gap.start, gap.end, gap.after, gap.before) == (
        0xC000_0000, 0xF400_0000, "ram0", "pcie-rc0-low-mmio",
    )  # fmt: skip
    assert gap.reason.startswith("alignment: ram0") and "1 GiB" in gap.reason
    assert "ram0-extent1" in gap.reason
    top = where(1 << 50, DEFAULT_VM).gap
    assert top is not None and top.before is None and "beyond the 46-bit" in top.reason


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=(1 << 64) - 1))
def test_any_address_is_in_exactly_one_of_range_or_gap(address: int) -> None:
    result = where(address, DEFAULT_VM)
    assert (result.range is None) != (result.gap is None)
    inside = result.range or result.gap
    assert inside is not None and inside.start <= address < inside.end
    assert all(s.start <= address < s.end for s in result.chain)
    sizes = [s.end - s.start for s in result.chain]
    assert sizes == sorted(sizes)


def test_address_parsing() -> None:
    assert parse_address("0xFEE0_0000") == 0xFEE0_0000
    assert parse_address("4096") == 4096
    for bad, fragment in (("ram0", "not an address"), ("-1", "negative"), (hex(1 << 64), "2^64")):
        with pytest.raises(VmLayoutError, match=re.escape(fragment)):
            parse_address(bad)


def test_cli_where_json_has_exactly_the_documented_keys() -> None:
    out = run_main("where", "0xfee00000", "--format", "json")
    assert out.status == 0, out.stderr
    data = json.loads(out.stdout)
    assert list(data) == ["address", "range", "gap", "zone", "chain"]
    assert data["address"] == 0xFEE0_0000
    assert data["range"] == {
        "name": "chipset-low-mmio", "kind": "fixed", "start": 0xF800_0000, "end": 1 << 32,
    }  # fmt: skip
    assert data["gap"] is None
    assert data["zone"] == {"name": "lapic", "start": 0xFEE0_0000, "end": 0xFEE0_1000}
    assert [c["name"] for c in data["chain"]] == [
        "lapic", "msi-window", "x86-reserved-zone", "chipset-low-mmio",
    ]  # fmt: skip
    gap = json.loads(run_main("where", "0xc0000000", "--format", "json").stdout)
    assert gap["range"] is None and list(gap["gap"]) == ["start", "end", "after", "before"]


def test_the_configs_processors_and_platform_place_the_zones() -> None:
    config = config_from_dict(
        {"arch": "aarch64", "processors": {"vp_count": 4}, "platform": {"gic": {"msi": "v2m"}}}
    )
    assert where(0xF005_0000, config).zone.name == "gicr3"  # type: ignore[union-attr]
    assert where(0xEFFE_8000, config).zone.name == "gic-v2m"  # type: ignore[union-attr]
    no_ioapic = config_from_dict({"platform": {"x86": {"ioapic": False}}})
    assert where(0xFEC0_0000, no_ioapic).zone.name == "x86-reserved-zone"  # type: ignore[union-attr]


def test_cli_explain_an_address_answers_as_where_with_platform_options() -> None:
    args = ("0xf0030000", "--arch", "aarch64", "--vp-count", "4", "--format", "json")
    explained = run_main("explain", *args)
    located = run_main("where", *args)
    assert explained.status == located.status == 0, explained.stderr
    assert explained.stdout == located.stdout
    assert json.loads(located.stdout)["zone"]["name"] == "gicr2"  # 0xEFFF_0000 + 2 * 128 KiB


def test_cli_where_errors_are_one_line() -> None:
    assert_one_line_error(run_main("where", "nowhere"), "ADDRESS", "not an address")
    assert_one_line_error(run_main("where", "0x1" + "0" * 16), "2^64")


def test_cli_resolve_gaps_lists_gaps_and_zones() -> None:
    plain = run_main("resolve")
    out = run_main("resolve", "--gaps")
    assert out.status == 0 and out.stdout.startswith(plain.stdout)
    assert "0xc000_0000 - 0xf400_0000" in out.stdout and "alignment: ram0" in out.stdout
    assert "lapic" in out.stdout and "0xfee0_0000" in out.stdout
    assert "gaps" not in json.loads(run_main("resolve", "--format", "json").stdout)
    data = json.loads(run_main("resolve", "--gaps", "--format", "json").stdout)
    assert data["gaps"][0]["start"] == 0xC000_0000
    assert {"name": "ioapic", "start": 0xFEC0_0000, "end": 0xFEC0_1000} in data["zones"]


def test_a_top_down_window_leaves_its_alignment_slack_above_it() -> None:
    # A 3 MiB root-complex window, 2 MiB aligned, placed top-down below the 32 MiB
    # chipset window at 0xFE00_0000: the highest 2 MiB-aligned start that fits is
    # 0xFDC0_0000 (0xFE00_0000 - 3 MiB = 0xFDD0_0000, rounded down), so it ends at
    # 0xFDF0_0000 and leaves 1 MiB free above it.
    rc = {"name": "r0", "low_mmio": {"size": "3M"}}
    config = config_from_dict({"pcie_root_complexes": [rc], "chipset_low_mmio_size": "32M"})
    gap = where(0xFDF8_0000, config).gap
    assert gap is not None and (gap.start, gap.end) == (0xFDF0_0000, 0xFE00_0000)
    assert (gap.after, gap.before) == ("pcie-r0-low-mmio", "chipset-low-mmio")
    assert gap.reason.startswith("alignment: pcie-r0-low-mmio (mmio32, placed top-down)")
    assert "2 MiB boundary" in gap.reason and "1 MiB below" in gap.reason


def test_an_ecam_address_names_the_function_whose_config_space_it_is() -> None:
    # Default VM: rc0's ECAM (buses 0..255) at 0x1_A000_0000; offset 0x30_8000 is
    # bus 3 (1 MiB per bus), device 1 (32 KiB per device), function 0.
    result = where(0x1_A030_8010, DEFAULT_VM)
    assert result.range is not None and result.range.name == "pcie-seg0-ecam"
    config = result.chain[0]
    assert (config.name, config.start, config.end) == (
        "rc0 03:01.0 config space", 0x1_A030_8000, 0x1_A030_9000,
    )  # fmt: skip
