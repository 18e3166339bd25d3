"""`pcie_root_complexes[i].devices`: the FUNCTION schema in configs, `count`, validation."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from vmlayout.config import config_from_dict, config_to_dict, load_config
from vmlayout.devices import MAX_FUNCTIONS, FunctionKind, count_functions, devices_from_data
from vmlayout.errors import VmLayoutError
from vmlayout.ranges import GIB, MIB

ROOT = Path(__file__).resolve().parent.parent
GPU = {
    "type": "endpoint",
    "device": 0,
    "bars": [
        {"index": 0, "size": "16 MiB"},
        {"index": 1, "size": "64G", "bits": 64, "prefetchable": True},
    ],
}


def config_with(devices: list[dict[str, Any]], **rc: Any) -> dict[str, Any]:
    return {"pcie_root_complexes": [{"name": "rc0", "devices": devices, **rc}]}


def test_example_expands_count_into_identical_devices() -> None:
    config = load_config(ROOT / "examples" / "gpus.toml")
    devices = config.pcie_root_complexes[0].devices
    assert [(d.kind, d.device) for d in devices] == [
        (FunctionKind.ROOT_PORT, 0),
        (FunctionKind.ROOT_PORT, 1),
        (FunctionKind.ROOT_PORT, 2),
    ]
    assert devices[0].children == devices[1].children
    ports = devices[0].children[0].children
    assert [p.device for p in ports] == [0, 1, 2, 3]
    gpu = ports[0].children[0]
    assert [(b.index, b.size, b.bits, b.prefetchable) for b in gpu.bars] == [
        (0, 16 * MIB, 32, False),
        (1, 64 * GIB, 64, True),
        (3, 32 * MIB, 64, True),
    ]
    # 3 root ports + 2 switches x (1 upstream + 4 downstream + 4 GPUs) + NVMe.
    assert count_functions(devices) == 3 + 2 * 9 + 1


def test_devices_round_trip_through_config_to_dict() -> None:
    config = load_config(ROOT / "examples" / "gpus.toml")
    assert config_from_dict(config_to_dict(config)) == config


def test_a_root_complex_without_devices_writes_no_devices_key() -> None:
    data = config_to_dict(config_from_dict({"pcie_root_complexes": [{"name": "rc0"}]}))
    assert "devices" not in data["pcie_root_complexes"][0]


def test_multi_function_and_ari_devices_are_accepted() -> None:
    functions = devices_from_data(
        [{"type": "endpoint", "device": 0, "function": f, "ari": True} for f in (0, 1, 8, 200)],
        "devices",
    )
    assert [f.function for f in functions] == [0, 1, 8, 200]


def test_pinned_addresses_accept_units() -> None:
    (function,) = devices_from_data(
        [{"type": "endpoint", "device": 0, "bars": [{"index": 0, "size": "1M", "pinned": "3G"}]}],
        "devices",
    )
    assert function.bars[0].pinned == 3 * GIB


BAD: list[tuple[str, Any, str]] = [
    ("bars[0].size", 3 * MIB, "not a power of two"),
    ("bars[0].size", "8 GiB", "over 2 GiB, too large for a 32-bit BAR"),
    ("bars[0].size", 8, "not a power of two of at least 16 bytes"),
    ("bars[0].bits", 48, "is not 32 or 64"),
    ("bars[0].index", 6, "out of range 0..5"),
    ("bars[1].index", 0, "already used"),
    ("device", 32, "out of range 0..31"),
    ("function", 8, "only an ARI device"),
    ("type", "gpu", "is not one of endpoint"),
    ("colour", "red", "unknown key"),
    ("count", 0, "not a positive integer"),
    ("ari_forwarding", True, "only bridges and ports have ari_forwarding"),
    ("bars[0].pinned", "0x1008", "16-byte aligned"),
]


@pytest.mark.parametrize(("key", "value", "fragment"), BAD)
def test_invalid_function_fields_are_one_line_errors_naming_the_key(
    key: str, value: Any, fragment: str
) -> None:
    gpu = copy.deepcopy(GPU)
    target: Any = gpu
    *parents, last = key.replace("[", ".").replace("]", "").split(".")
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    with pytest.raises(VmLayoutError) as caught:
        config_from_dict(config_with([gpu]))
    assert caught.value.kind == "invalid_config"
    assert f"pcie_root_complexes[0].devices[0].{key}" in caught.value.message
    assert fragment in caught.value.message


def test_a_64_bit_bar_in_the_last_register_is_rejected() -> None:
    gpu = {**GPU, "bars": [{"index": 5, "size": "1M", "bits": 64}]}
    with pytest.raises(VmLayoutError, match=r"devices\[0\]\.bars\[0\]\.index: a 64-bit BAR"):
        config_from_dict(config_with([gpu]))


def test_duplicate_device_function_is_rejected_even_through_count() -> None:
    with pytest.raises(VmLayoutError) as caught:
        config_from_dict(config_with([{**GPU, "count": 2}, {**GPU, "device": 1}]))
    assert "devices[1]: device 1 function 0 is already described by" in caught.value.message


def test_count_running_past_device_31_is_rejected() -> None:
    with pytest.raises(VmLayoutError, match=r"devices\[0\]\.count: 4 devices from device 30"):
        config_from_dict(config_with([{**GPU, "device": 30, "count": 4}]))


def test_a_device_without_function_0_is_rejected() -> None:
    with pytest.raises(VmLayoutError, match="has no function 0"):
        config_from_dict(config_with([{**GPU, "function": 1}]))


def test_endpoint_only_and_bridge_only_fields() -> None:
    with pytest.raises(VmLayoutError, match=r"devices\[0\]\.sriov: only endpoints have sriov"):
        config_from_dict(
            config_with([{"type": "root_port", "device": 0, "sriov": {}, "children": []}])
        )
    with pytest.raises(VmLayoutError, match=r"devices\[0\]\.children: only bridges and ports"):
        config_from_dict(config_with([{**GPU, "children": []}]))


def test_errors_inside_children_name_the_nested_path() -> None:
    bad = {**GPU, "bars": [{"index": 0, "size": "3M"}]}
    with pytest.raises(VmLayoutError) as caught:
        config_from_dict(config_with([{"type": "root_port", "device": 0, "children": [bad]}]))
    assert "pcie_root_complexes[0].devices[0].children[0].bars[0].size" in caught.value.message


def test_sriov_fields_are_checked() -> None:
    sriov = {"total_vfs": 70000, "vf_offset": 1, "vf_stride": 1}
    with pytest.raises(VmLayoutError, match=r"sriov\.total_vfs: 70000 is out of range 0\.\.65535"):
        config_from_dict(config_with([{**GPU, "sriov": sriov}]))


def test_every_public_vector_topology_is_a_valid_devices_list() -> None:
    from tests.vectors import PROJECT_VECTORS, read_cases
    from vmlayout.devices import devices_from_vector

    for case in read_cases(PROJECT_VECTORS / "pci.jsonl"):
        topology = case["input"]["topology"]
        parsed = devices_from_data(topology, "devices")
        expected = devices_from_vector(topology)
        key = lambda f: (f.device, f.function)  # noqa: E731
        assert parsed == tuple(sorted(expected, key=key)), case["id"]


def test_a_pinned_vf_bar_is_rejected_naming_the_key_path() -> None:
    # VF BARs are never pinned in the reference: a `pinned` value would be silently ignored.
    vf_bar = {
        "index": 0,
        "size": "64K",
        "bits": 64,
        "prefetchable": True,
        "pinned": "0x1_0000_0000",
    }
    sriov = {"total_vfs": 4, "vf_offset": 1, "vf_stride": 1, "vf_bars": [vf_bar]}
    with pytest.raises(VmLayoutError) as caught:
        config_from_dict(config_with([{**GPU, "sriov": sriov}]))
    assert caught.value.kind == "invalid_config"
    assert "\n" not in caught.value.message
    assert caught.value.message.startswith(
        "pcie_root_complexes[0].devices[0].sriov.vf_bars[0].pinned: a VF BAR cannot be pinned"
    )
    del vf_bar["pinned"]
    (function,) = (
        config_from_dict(config_with([{**GPU, "sriov": sriov}])).pcie_root_complexes[0].devices
    )
    assert function.sriov is not None and function.sriov.vf_bars[0].pinned is None


def _nested(depth: int, count: int) -> dict[str, Any]:
    """`count` switch ports `depth` levels deep over `count` endpoints: the issue's
    shape, sum(count**k for k in 1..depth+1) functions."""
    node: dict[str, Any] = {"type": "endpoint", "device": 0, "count": count}
    for _ in range(depth):
        node = {"type": "switch_downstream", "device": 0, "count": count, "children": [node]}
    return node


def test_nested_counts_are_refused_before_they_are_expanded() -> None:
    """Issue 20: a 2.3 KB config of six levels of `count = 32` (32**6 functions) took
    30 s and 1.3 GB; its counts multiply past the limit while it is read."""
    with pytest.raises(VmLayoutError) as caught:
        config_from_dict(config_with([_nested(5, 32)]))
    assert caught.value.kind == "invalid_config"
    assert f"more than {MAX_FUNCTIONS} functions" in caught.value.message
    assert caught.value.message.startswith("pcie_root_complexes[0].devices[0].")


def test_the_function_limit_counts_every_root_complex_together() -> None:
    # 16 ports, each over 15 ports of 16 endpoints: 16 * (1 + 15 * (1 + 16)) = 4096.
    half = {**_nested(1, 16), "count": 15}
    half = {"type": "root_port", "device": 0, "count": 16, "children": [half]}
    rcs: list[dict[str, Any]] = [
        {"name": f"rc{i}", "segment": i, "devices": [half]} for i in range(2)
    ]
    config = config_from_dict({"pcie_root_complexes": rcs})
    assert sum(count_functions(rc.devices) for rc in config.pcie_root_complexes) == 8192
    assert MAX_FUNCTIONS == 8192
    rcs.append({"name": "rc2", "segment": 2, "devices": [{"type": "endpoint", "device": 0}]})
    with pytest.raises(VmLayoutError, match=r"^pcie_root_complexes\[2\]\.devices: .*8192"):
        config_from_dict({"pcie_root_complexes": rcs})


def test_every_file_emit_all_writes_at_the_function_limit_is_one_inspect_reads() -> None:
    """The limit's reason: functions with six BARs and six VF BARs each, the most a
    function has (4 ports, each over 32 devices of 8 functions), take so many bytes of
    pci.json and layout.json that the limit's worth stays within what `inspect` reads."""
    import json

    from vmlayout.inputs import MAX_INPUT_BYTES  # what `inspect` reads of one file
    from vmlayout.pci_layout.report import pci_json
    from vmlayout.policy import resolve
    from vmlayout.report import resolved_to_json

    six = [{"index": i, "size": 16} for i in range(6)]
    sriov = {"total_vfs": 1, "vf_offset": 1, "vf_stride": 1, "vf_bars": six}
    functions = [
        {"type": "endpoint", "device": 0, "function": f, "count": 32, "bars": six, "sriov": sriov}
        for f in range(8)
    ]
    ports = {"type": "root_port", "device": 0, "count": 4, "children": functions}
    config = config_from_dict(config_with([ports], end_bus=255, low_mmio="1 GiB"))
    resolved = resolve(config)
    written = pci_json(resolved)
    assert written is not None
    pci = json.loads(written)["root_complexes"][0]["pci"]
    assert (len(pci["bars"]), len(pci["vf_bars"])) == (4 * 256 * 6, 4 * 256 * 6)
    per_function = len(written) / count_functions(config.pcie_root_complexes[0].devices)
    assert per_function * MAX_FUNCTIONS < MAX_INPUT_BYTES
    layout = json.dumps(resolved_to_json(resolved), indent=1)
    assert len(layout) / len(written) < 1.01  # layout.json carries the same objects


def test_the_root_complex_count_has_a_limit() -> None:
    from vmlayout.config import MAX_ROOT_COMPLEXES

    rcs = [{"segment": i} for i in range(MAX_ROOT_COMPLEXES + 1)]
    with pytest.raises(VmLayoutError, match=r"^pcie_root_complexes: 16385 root complexes"):
        config_from_dict({"pcie_root_complexes": rcs})


def test_config_to_dict_keeps_count_groups() -> None:
    """Issue 20: `emit all` wrote an 81 MB config.json for a 59 KB config: the written
    devices are the runs the config gave, as `count`, not their expansion."""
    tree = _nested(2, 16)  # 16 + 256 + 4096 functions
    config = config_from_dict(config_with([tree]))
    (written,) = config_to_dict(config)["pcie_root_complexes"][0]["devices"]
    assert written["count"] == 16
    assert written["children"][0]["count"] == 16
    (leaf,) = written["children"][0]["children"]
    assert (leaf["type"], leaf["device"], leaf["count"]) == ("endpoint", 0, 16)
    assert config_from_dict(config_to_dict(config)) == config


def test_config_to_dict_groups_only_consecutive_identical_devices() -> None:
    other = {**GPU, "bars": [{"index": 0, "size": "1 MiB"}]}
    devices = [
        {**GPU, "device": 0, "count": 2},
        {**other, "device": 2},
        {**GPU, "device": 3, "count": 2},
        {**GPU, "device": 5, "function": 0},
        {**other, "device": 5, "function": 1},
        {**GPU, "device": 7},  # not adjacent to 3..4
    ]
    config = config_from_dict(config_with(devices))
    written = config_to_dict(config)["pcie_root_complexes"][0]["devices"]
    runs = [(d["device"], d["function"], d.get("count", 1)) for d in written]
    assert runs == [(0, 0, 2), (2, 0, 1), (3, 0, 2), (5, 0, 1), (5, 1, 1), (7, 0, 1)]
    assert config_from_dict(config_to_dict(config)) == config


def test_inspect_refuses_a_set_whose_config_json_nests_counts_past_the_limit(
    tmp_path: Path,
) -> None:
    """Issue 20: `inspect` of a 2.3 KB config.json expanded 32**6 functions."""
    import json

    from tests.fuzzing import assert_one_line_error, run_main

    out = tmp_path / "set"
    assert run_main("emit", "all", "-o", out).status == 0
    record = json.loads((out / "config.json").read_text())
    record["config"]["pcie_root_complexes"][0]["devices"] = [_nested(5, 32)]
    (out / "config.json").write_text(json.dumps(record))
    for target in (out, out / "config.json"):
        assert_one_line_error(run_main("inspect", target), f"{MAX_FUNCTIONS} functions")
