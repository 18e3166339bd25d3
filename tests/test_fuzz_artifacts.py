"""Fuzzing the decoders: emitted artifacts with bit flips, truncation, length fields set
to boundary values and spliced bytes, given to `vmlayout inspect` one by one and as a
whole `emit all` directory, must keep the CLI's contract — exit 0, 1 or 2, exactly one
`error:` line on 2, never a traceback.

Every decoder is reached: the file inspectors (UEFI blob, ACPI tables, DTBs) directly,
and through the directory cross-check the E820, IGVM, MTRR, PCAT and layout views and
the set's record. Quick profile locally, long one under `CI=true`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzzing import (
    assert_contract,
    fuzz_settings,
    hostile_definition_block,
    json_paths,
    mutated_bytes,
    run_main,
)
from vmlayout.artifacts import CONFIG_FILE, EmitSettings, build_artifact_set
from vmlayout.config import DEFAULT_VM, load_config
from vmlayout.policy import VmConfig, resolve

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _seed_configs() -> list[VmConfig]:
    return [DEFAULT_VM, *(load_config(path) for path in sorted(EXAMPLES.glob("*.toml")))]


#: One artifact set per seed config (x86_64 and aarch64, NUMA, VTL2, PCIe).
SEED_SETS: list[dict[str, bytes]] = [
    build_artifact_set(resolve(config), EmitSettings()) for config in _seed_configs()
]
#: (set index, file name) of every artifact, the record excluded.
ARTIFACTS = [(i, name) for i, files in enumerate(SEED_SETS) for name in sorted(files)]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-artifacts")


@fuzz_settings("artifact_file")
@given(
    data=st.data(),
    artifact=st.sampled_from(ARTIFACTS),
    fmt=st.sampled_from(("table", "json")),
)
def test_a_mutated_artifact_file_keeps_the_contract(
    work: Path, data: st.DataObject, artifact: tuple[int, str], fmt: str
) -> None:
    index, name = artifact
    content = data.draw(mutated_bytes(SEED_SETS[index][name], text=name.endswith(".json")))
    path = work / "single" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(content)
    assert_contract(run_main("inspect", path, "--format", fmt))
    if name == "layout.json":  # a saved layout is also what `diff` compares
        seed = work / "seed-layout.json"
        seed.write_bytes(SEED_SETS[index][name])
        assert_contract(run_main("diff", seed, path, "--format", fmt))


def _write_set(directory: Path, files: dict[str, bytes]) -> None:
    directory.mkdir(exist_ok=True)
    for old in directory.iterdir():
        old.unlink()
    for name, content in files.items():
        (directory / name).write_bytes(content)


@fuzz_settings("artifact_directory")
@given(
    data=st.data(),
    artifact=st.sampled_from(ARTIFACTS),
    strict=st.booleans(),
    drop=st.booleans(),
)
def test_a_set_with_a_mutated_or_missing_file_keeps_the_contract(
    work: Path, data: st.DataObject, artifact: tuple[int, str], strict: bool, drop: bool
) -> None:
    index, name = artifact
    files = dict(SEED_SETS[index])
    if drop and name != CONFIG_FILE:
        del files[name]
    else:
        files[name] = data.draw(mutated_bytes(files[name], text=name.endswith(".json")))
    _write_set(work / "set", files)
    fmt = data.draw(st.sampled_from(("table", "json")))
    args: list[str | Path] = ["inspect", work / "set", "--format", fmt]
    assert_contract(run_main(*args, *(["--strict"] if strict else [])))


_RECORD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**66), 2**66),
    st.text(max_size=10),
    st.sampled_from(("DSDT.aml", "../x", "a\0b", "", ".", "reference", "exact", "pcat")),
    st.lists(st.text(max_size=10), max_size=3),
    st.dictionaries(st.text(max_size=8), st.integers(), max_size=2),
)


@fuzz_settings("artifact_record")
@given(data=st.data(), index=st.integers(0, len(SEED_SETS) - 1))
def test_a_set_whose_record_has_hostile_fields_keeps_the_contract(
    work: Path, data: st.DataObject, index: int
) -> None:
    files = dict(SEED_SETS[index])
    record = json.loads(files[CONFIG_FILE])
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(json_paths(record)[1:]))
        *parents, last = path
        container = record
        for step in parents:
            container = container[step]
        if data.draw(st.booleans()):
            container[last] = data.draw(_RECORD_VALUES)
        else:
            del container[last]
    files[CONFIG_FILE] = json.dumps(record).encode()
    _write_set(work / "record", files)
    assert_contract(run_main("inspect", work / "record"))


def test_every_seed_set_inspects_consistent(work: Path) -> None:
    """The fuzzers start from sets that pass, so mutations reach the deep checks."""
    assert len(SEED_SETS) >= 5
    assert {"DSDT.aml", "uefi-config.bin", "linux.dtb", "paravisor.dtb", "e820.bin"} <= {
        name for _, name in ARTIFACTS
    }
    for files in SEED_SETS:
        _write_set(work / "seed", files)
        outcome = run_main("inspect", work / "seed")
        assert outcome.status == 0, outcome


@fuzz_settings("artifact_aml")
@given(block=hostile_definition_block(), index=st.integers(0, len(SEED_SETS) - 1))
def test_a_hostile_definition_block_keeps_the_contract(
    work: Path, block: tuple[str, bytes], index: int
) -> None:
    """Deep nesting, recursive buffers and resource arithmetic at the edges, in a table
    whose header, length and checksum are valid: alone and inside a seed set."""
    name, content = block
    path = work / "aml" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(content)
    assert_contract(run_main("inspect", path, "--format", "json"))
    files = dict(SEED_SETS[index])
    if name in files:
        files[name] = content
        _write_set(work / "aml-set", files)
        assert_contract(run_main("inspect", work / "aml-set"))
