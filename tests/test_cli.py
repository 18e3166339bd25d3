"""The `vmlayout resolve` / `emit mtrr` / `inspect` commands, end to end (in-process; the
smoke tests marked below run the installed entry point in a subprocess)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli import assert_one_line_error, run_cli, run_cli_subprocess
from tests.vectors import PROJECT_VECTORS

ROOT = Path(__file__).resolve().parent.parent


def test_resolve_default_vm_table_lists_ranges_by_address_and_chipset() -> None:
    result = run_cli_subprocess("resolve")  # smoke test: the real entry point
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["name", "kind", "start", "end", "size", "vnode"]
    assert lines[2].split() == ["ram0", "ram", "0x0", "0xc000_0000", "3", "GiB", "0"]
    assert "chipset-low-mmio    fixed     0xf800_0000  0x1_0000_0000  128 MiB" in result.stdout
    assert "ram0-extent1        ram     0x1_0000_0000  0x1_4000_0000    1 GiB  0" in result.stdout
    assert "low = chipset-low-mmio, high = chipset-high-mmio, vtl2 = (none)" in result.stdout
    # One name per range: the chipset windows are not listed a second time.
    assert result.stdout.count("0x1_8000_0000  0x1_a000_0000") == 1


def test_resolve_json_matches_a_resolver_vector(tmp_path: Path) -> None:
    line = (PROJECT_VECTORS / "resolver.jsonl").read_text().splitlines()[0]
    case = json.loads(line)
    path = tmp_path / "vm.json"
    path.write_text(json.dumps(case["config"]))
    result = run_cli("resolve", path, "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == case["expect"]


def test_arch_flag_overrides_and_uses_that_architectures_default_low_window() -> None:
    result = run_cli("resolve", "--arch", "aarch64", "--format", "json")
    assert json.loads(result.stdout)["chipset"]["low"] == [0xE000_0000, 1 << 32]


def test_emit_mtrr_json_matches_an_mtrr_vector(tmp_path: Path) -> None:
    case = json.loads((PROJECT_VECTORS / "mtrr.jsonl").read_text().splitlines()[2])
    path = tmp_path / "vm.json"
    path.write_text(json.dumps(case["config"]))
    result = run_cli("emit", "mtrr", path, "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == case["expect"]


def test_emit_mtrr_table_names_registers() -> None:
    result = run_cli("emit", "mtrr")
    assert "0x0201  PHYSMASK0       0x3fff_f800_0800" in result.stdout


def test_version_and_help() -> None:
    assert run_cli_subprocess("--version").stdout.startswith("vmlayout ")  # smoke test
    help_text = run_cli("--help").stdout
    for command in ("resolve", "emit", "inspect"):
        assert command in help_text


BAD_FILES = {
    "malformed.toml": ("node_mem_sizes = [4G", "malformed TOML"),
    "malformed.json": ('{"node_mem_sizes": [', "malformed JSON"),
    "unknown.toml": ('colour = "red"\n', "colour: unknown key"),
    "rc-unknown.toml": (
        '[[pcie_root_complexes]]\nname = "a"\nshape = 1\n',
        "pcie_root_complexes[0].shape: unknown key",
    ),
    "negative.json": ('{"node_mem_sizes": [-4096]}', "node_mem_sizes[0]: -4096 is negative"),
    "huge.json": ('{"node_mem_sizes": [18446744073709551616]}', "node_mem_sizes[0]"),
    "unit.toml": ('node_mem_sizes = ["4GB"]\n', "ambiguous"),
    "misaligned.json": ('{"node_mem_sizes": [4097]}', "node_size_unaligned: node_mem_sizes[0]"),
    "zero.json": ('{"node_mem_sizes": [0]}', "zero_ram"),
    "no-nodes.json": ('{"node_mem_sizes": []}', "no_numa_nodes"),
    "arch.toml": ('arch = "riscv64"\n', "arch: 'riscv64' is not one of"),
    "width64.toml": ("physical_address_size = 64\n", "physical_address_size: 64 is out of range"),
    "width.toml": ("physical_address_size = 32\n", "address_width_exceeded"),
    "overlap.json": (
        '{"pcie_root_complexes": [{"name": "a", "low_mmio": {"start": 4160749568, '
        '"end": 4177526784}}]}',
        "fixed_overlap",
    ),
    "above4g.json": (
        '{"pcie_root_complexes": [{"name": "a", "low_mmio": {"start": 4294967296, '
        '"end": 4362076160}}]}',
        "fixed_low_mmio_above_4gb",
    ),
    "highsize.json": ('{"chipset_high_mmio_size": 4097}', "invalid_size"),
    "exhausted.json": ('{"virtio_mmio_count": 1048576, "chipset_low_mmio_size": 0}', "exhausted"),
    "bus.json": (
        '{"pcie_root_complexes": [{"name": "a", "start_bus": 9, "end_bus": 3}]}',
        "end_bus: 3 is below start_bus 9",
    ),
    "list.json": ("[1, 2]", "expected a table/object"),
    "binary.toml": ("\udcff", "cannot read"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_config_gives_exit_2_and_one_line(tmp_path: Path, name: str) -> None:
    text, fragment = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    assert_one_line_error(run_cli("resolve", path), fragment)


def test_missing_config_file_is_one_line() -> None:
    assert_one_line_error(run_cli("resolve", "/nonexistent/vm.toml"), "no such file")


@pytest.mark.parametrize(
    "args",
    [("resolve", "--arch", "mips"), ("resolve", "--format", "xml"), ("frobnicate",), ()],
    ids=["bad-arch", "bad-format", "bad-command", "no-command"],
)
def test_usage_errors_are_one_line(args: tuple[str, ...]) -> None:
    assert_one_line_error(run_cli(*args), "error: usage:")


def test_emit_mtrr_on_aarch64_is_rejected() -> None:
    assert_one_line_error(run_cli("emit", "mtrr", "--arch", "aarch64"), "only on x86_64")


def test_inspect_unknown_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "junk.bin"
    path.write_bytes(b"\x00junk")
    assert_one_line_error(run_cli("inspect", path), "unrecognised_input")
    assert_one_line_error(run_cli("inspect", tmp_path / "missing"), "no such file")
