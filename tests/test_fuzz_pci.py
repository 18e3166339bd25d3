"""Fuzzing PCI device trees through every command that assigns them (issue 20's
classes): BARs up to 2**63 and pins near the top of the address space, `count`
nested deep enough to pass the function limit, and many root complexes. Every case
must keep the CLI's contract (exit 0, 1 or 2; one `error:` line on 2; no traceback),
and an invalid config must be refused as a config error, never later."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzzing import assert_contract, fuzz_settings, run_main
from vmlayout.config import MAX_ROOT_COMPLEXES
from vmlayout.devices import MAX_FUNCTIONS

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
U64 = 1 << 64

#: BAR sizes: ordinary ones, and the huge ones near 2**63 that overflowed the pools.
SIZES = st.one_of(
    st.integers(4, 40).map(lambda bits: 1 << bits),
    st.integers(56, 63).map(lambda bits: 1 << bits),
)


@st.composite
def bars(draw: st.DrawFn, slots: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    index = 0
    while index < slots and draw(st.booleans()):
        size = draw(SIZES)
        bits = 64 if size > 1 << 31 or draw(st.booleans()) else 32
        bar: dict[str, Any] = {
            "index": index,
            "size": size,
            "bits": bits,
            "prefetchable": draw(st.booleans()),
        }
        if draw(st.integers(0, 3)) == 0:  # a pin, often at the very top of its range
            limit = U64 if bits == 64 else 1 << 32
            top = (limit - size) // size * size
            slot = draw(st.one_of(st.just(top // size), st.integers(0, top // size)))
            bar["pinned"] = slot * size
        out.append(bar)
        index += 2 if bits == 64 else 1
    return out


def nested_counts(depth: int, count: int) -> dict[str, Any]:
    """`count` ports `depth` levels deep over `count` endpoints (count**(depth+1)
    endpoints): at depth 3 with count 32 already past the function limit."""
    node: dict[str, Any] = {"type": "endpoint", "device": 0, "count": count}
    for _ in range(depth):
        node = {"type": "switch_downstream", "device": 0, "count": count, "children": [node]}
    return node


@st.composite
def bus(draw: st.DrawFn, depth: int) -> list[dict[str, Any]]:
    devices: list[dict[str, Any]] = []
    device = 0
    for _ in range(draw(st.integers(1, 3))):
        if device > 31:
            break
        count = draw(st.sampled_from((1, 1, 2, 32 - device)))
        if depth > 0 and draw(st.booleans()):
            entry: dict[str, Any] = {
                "type": draw(st.sampled_from(("root_port", "switch_downstream", "bridge"))),
                "device": device,
                "bars": draw(bars(2)),
                "children": draw(bus(depth - 1)),
            }
        else:
            entry = {"type": "endpoint", "device": device, "bars": draw(bars(6))}
        if count > 1:
            entry["count"] = count
        devices.append(entry)
        device += count
    return devices


@st.composite
def pci_config(draw: st.DrawFn) -> dict[str, Any]:
    shape = draw(st.sampled_from(("tree", "tree", "nested_count", "many_root_complexes")))
    if shape == "nested_count":
        devices = [nested_counts(draw(st.integers(1, 6)), draw(st.sampled_from((2, 8, 32))))]
        rcs: list[dict[str, Any]] = [{"end_bus": 255, "devices": devices}]
    elif shape == "many_root_complexes":
        many = draw(st.sampled_from((64, 300, MAX_ROOT_COMPLEXES + 1)))
        endpoint = {"type": "endpoint", "device": 0, "bars": draw(bars(6))}
        rcs = [{"segment": i, **({"devices": [endpoint]} if i < 300 else {})} for i in range(many)]
    else:
        rcs = [
            {
                "segment": i,
                "end_bus": 255,
                "preserve_bars": draw(st.booleans()),
                "devices": draw(bus(2)),
            }
            for i in range(draw(st.integers(1, 3)))
        ]
    return {"pcie_root_complexes": rcs}


COMMANDS: tuple[tuple[str, ...], ...] = (
    ("resolve", "{config}", "--format", "json"),
    ("fit", "{config}"),
    ("emit", "all", "{config}", "-o", "{out}/set"),
    ("diff", "{config}", str(EXAMPLES / "default.toml")),
    ("explain", "rc0 00:00.0 BAR0", "{config}"),
)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-pci")


@fuzz_settings("config_pci")
@given(config=pci_config(), command=st.sampled_from(COMMANDS))
def test_hostile_device_trees_keep_the_contract_in_every_command(
    work: Path, config: dict[str, Any], command: tuple[str, ...]
) -> None:
    path = work / "vm.json"
    path.write_text(json.dumps(config))
    words = [w.replace("{config}", str(path)).replace("{out}", str(work)) for w in command]
    outcome = run_main(*words)
    assert_contract(outcome)
    loaded = run_main("resolve", path, "--format", "json")
    if loaded.status == 2 and "invalid_config" in loaded.stderr:
        # Refused as a config, whichever command read it.
        assert outcome.status == 2 and "invalid_config" in outcome.stderr, outcome


def test_the_nested_counts_reach_both_sides_of_the_function_limit() -> None:
    from vmlayout.config import config_from_dict
    from vmlayout.errors import VmLayoutError

    config_from_dict({"pcie_root_complexes": [{"devices": [nested_counts(1, 32)]}]})
    with pytest.raises(VmLayoutError, match=f"more than {MAX_FUNCTIONS} functions"):
        config_from_dict({"pcie_root_complexes": [{"devices": [nested_counts(6, 32)]}]})
