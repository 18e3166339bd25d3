"""Regressions for hostile input (issue 11): each reproduction gives one error line and
exit 2 (or, for stale artifacts and file modes, the right files and modes) — never a
traceback, a hang, unbounded memory or a stale artifact."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzzing import Outcome, assert_one_line_error, run_main
from vmlayout.config import config_from_dict
from vmlayout.errors import VmLayoutError
from vmlayout.output import INCOMPLETE_MARKER
from vmlayout.ranges import MemoryRange

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
#: Every command that reads a CONFIG, with the arguments it needs besides it.
CONFIG_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("resolve",),
    ("emit", "mtrr"),
    ("emit", "mtrr-state"),
    ("check", "mtrr"),
    ("emit", "e820"),
    ("emit", "pcat"),
    ("explain", "ram0"),
    ("diff", str(EXAMPLES / "default.toml")),
)


def _subprocess(*args: str | Path, timeout: float = 30, stdin: str | None = None) -> Outcome:
    result = subprocess.run(
        [sys.executable, "-m", "vmlayout", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
        check=False,
    )
    return Outcome(result.returncode, result.stdout, result.stderr)


# 1. Unbounded reads --------------------------------------------------------------


@pytest.mark.parametrize("command", [("resolve",), ("inspect",), ("diff", "--corpus")])
def test_a_device_is_refused_before_reading(command: tuple[str, ...]) -> None:
    outcome = _subprocess(*command, "/dev/zero")
    assert_one_line_error(outcome, "/dev/zero", "not a regular file")


def test_a_fifo_config_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "vm.toml")
    assert_one_line_error(_subprocess("resolve", tmp_path / "vm.toml", timeout=20), "FIFO")


@pytest.fixture
def artifact_set(tmp_path: Path) -> Path:
    out = tmp_path / "set"
    assert run_main("emit", "all", "-o", out).status == 0
    return out


def test_a_fifo_inside_an_artifact_directory_is_refused_without_blocking(
    artifact_set: Path,
) -> None:
    (artifact_set / "DSDT.aml").unlink()
    os.mkfifo(artifact_set / "DSDT.aml")
    assert_one_line_error(_subprocess("inspect", artifact_set, timeout=20), "DSDT.aml", "FIFO")
    (artifact_set / "config.json").unlink()  # now an ACPI-table directory
    outcome = _subprocess("inspect", artifact_set, timeout=20)
    assert outcome.status == 0, outcome  # the FIFO is not a table file: skipped
    assert "DSDT.aml" not in outcome.stdout


def test_a_symlink_to_a_device_inside_an_artifact_directory_is_refused(
    artifact_set: Path,
) -> None:
    (artifact_set / "SRAT.aml").unlink()
    (artifact_set / "SRAT.aml").symlink_to("/dev/zero")
    assert_one_line_error(run_main("inspect", artifact_set), "SRAT.aml", "character device")


# 2. Tracebacks from config text --------------------------------------------------

HOSTILE_CONFIGS = {
    "long-int.json": '{"node_mem_sizes": [' + "1" * 5000 + "]}",
    "long-int.toml": "node_mem_sizes = [" + "1" * 5000 + "]",
    "long-size.toml": 'chipset_high_mmio_size = "' + "1" * 5000 + 'G"',
    "long-hex.json": '{"ram_start_address": "0x' + "f" * 5000 + '"}',
    "deep.json": '{"pcie_root_complexes": ' + "[" * 50_000 + "]" * 50_000 + "}",
    "deep.toml": "pcie_root_complexes = " + "[" * 50_000 + "]" * 50_000,
    "deep-table.toml": "x = " + "{a = " * 5000 + "1" + "}" * 5000,
}


@pytest.mark.parametrize("command", CONFIG_COMMANDS, ids=" ".join)
@pytest.mark.parametrize("name", sorted(HOSTILE_CONFIGS))
def test_hostile_config_text_is_one_invalid_config_error(
    tmp_path: Path, command: tuple[str, ...], name: str
) -> None:
    path = tmp_path / name
    path.write_text(HOSTILE_CONFIGS[name])
    outcome = run_main(*command, path)
    assert_one_line_error(outcome)
    # `diff` reads a .json as a saved layout or a config: unparsable, it is invalid input.
    assert outcome.stderr.startswith(("error: invalid_config: ", "error: invalid_input: "))
    if command[0] != "diff":
        assert outcome.stderr.startswith("error: invalid_config: ")


def test_hostile_config_text_fails_emit_all_and_map_too(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text(HOSTILE_CONFIGS["deep.json"])
    assert_one_line_error(run_main("emit", "all", path, "-o", tmp_path / "out"), "nested")
    assert_one_line_error(run_main("map", path, "-o", tmp_path / "m.svg"), "nested")
    assert not (tmp_path / "out").exists()


# 3. diff --corpus ----------------------------------------------------------------


def test_a_hostile_corpus_line_is_that_lines_result_and_the_run_goes_on(
    tmp_path: Path,
) -> None:
    good: dict[str, object] = {"id": "good", "config": {}, "expect": None}
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(
        '{"id": "deep", "config": ' + "[" * 50_000 + "]" * 50_000 + "}\n"
        '{"id": "long", "config": {"node_mem_sizes": ['
        + "1" * 5000
        + "]}}\n"
        + json.dumps(good)
        + "\n"
    )
    outcome = run_main("diff", "--corpus", corpus, "--format", "json", "--jobs", "1")
    assert outcome.status in (0, 1), outcome
    assert "Traceback" not in outcome.stderr
    assert "invalid" in outcome.stdout


# 4. Stale artifacts ----------------------------------------------------------------


def test_emit_all_over_an_earlier_set_leaves_exactly_the_new_set(
    artifact_set: Path,
) -> None:
    x86 = set(json.loads((artifact_set / "config.json").read_text())["settings"]["artifacts"])
    assert {"paravisor.dtb", "e820.bin", "SSDT.aml", "MCFG.aml"} <= x86
    (artifact_set / "notes.txt").write_text("mine")
    assert run_main("emit", "all", "--arch", "aarch64", "-o", artifact_set).status == 0
    record = json.loads((artifact_set / "config.json").read_text())
    arm = set(record["settings"]["artifacts"])
    assert {p.name for p in artifact_set.iterdir()} == arm | {"config.json", "notes.txt"}
    assert not {"paravisor.dtb", "e820.bin"} & arm
    assert run_main("inspect", artifact_set).status == 0


def test_emit_all_without_root_complexes_removes_the_earlier_ssdt_and_mcfg(
    artifact_set: Path, tmp_path: Path
) -> None:
    config = tmp_path / "no-rc.json"
    config.write_text('{"pcie_root_complexes": []}')
    assert run_main("emit", "all", config, "-o", artifact_set).status == 0
    names = {p.name for p in artifact_set.iterdir()}
    assert "SSDT.aml" not in names and "MCFG.aml" not in names
    assert run_main("inspect", artifact_set).status == 0


def test_an_interrupted_emit_all_is_refused_by_inspect_and_a_rerun_completes_it(
    artifact_set: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_replace = os.replace

    def interrupted(src: str | Path, dst: str | Path) -> None:
        if Path(dst).name == "linux.dtb":
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", interrupted)
    assert run_main("emit", "all", "--arch", "aarch64", "-o", artifact_set).status == 130
    monkeypatch.setattr(os, "replace", real_replace)
    assert not (artifact_set / "config.json").exists()
    assert (artifact_set / INCOMPLETE_MARKER).exists()
    assert_one_line_error(run_main("inspect", artifact_set), "incomplete")
    # The rerun knows the x86 files from the marker, though their record is gone.
    assert run_main("emit", "all", "--arch", "aarch64", "-o", artifact_set).status == 0
    record = json.loads((artifact_set / "config.json").read_text())
    assert {p.name for p in artifact_set.iterdir()} == {
        *record["settings"]["artifacts"],
        "config.json",
    }
    assert run_main("inspect", artifact_set).status == 0


def test_emit_all_refuses_to_overwrite_a_foreign_config_json(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "config.json").write_text('{"my": "own"}')
    assert_one_line_error(run_main("emit", "all", "-o", out), "not overwriting")
    assert (out / "config.json").read_text() == '{"my": "own"}'


# 5. NUL (or a path) as an artifact name ------------------------------------------------


@pytest.mark.parametrize("name", ["DSDT\u0000.aml", "../DSDT.aml", "a/b", ".", "x\n"])
def test_a_bad_artifact_name_in_the_record_is_one_error(artifact_set: Path, name: str) -> None:
    record = json.loads((artifact_set / "config.json").read_text())
    record["settings"]["artifacts"].append(name)
    (artifact_set / "config.json").write_text(json.dumps(record))
    assert_one_line_error(run_main("inspect", artifact_set), "bad file name")


# 6. Quadratic validation -----------------------------------------------------------


def test_10000_root_complexes_are_validated_and_the_overlap_named() -> None:
    """The scale of issue 11's reproduction; its speed (sort-based, not pairwise) is
    measured in `benchmarks/scale.py`, not asserted here."""
    rcs = [{"segment": i, "start_bus": 0, "end_bus": 0} for i in range(10_000)]
    rcs.append({"segment": 9_999, "start_bus": 0, "end_bus": 0})  # the last one overlaps
    with pytest.raises(VmLayoutError, match=r"pcie_root_complexes\[10000\].*\[9999\]"):
        config_from_dict({"pcie_root_complexes": rcs})


def test_bus_overlap_names_the_earliest_root_complex_it_overlaps() -> None:
    rcs = [
        {"segment": 0, "start_bus": 10, "end_bus": 19},
        {"segment": 1, "start_bus": 0, "end_bus": 255},
        {"segment": 0, "start_bus": 0, "end_bus": 9},
        {"segment": 0, "start_bus": 30, "end_bus": 39},
        {"segment": 0, "start_bus": 5, "end_bus": 35},
    ]
    with pytest.raises(VmLayoutError) as info:
        config_from_dict({"pcie_root_complexes": rcs})
    assert info.value.message.startswith("pcie_root_complexes[4]: buses 5..35 overlap buses")
    # Hits in bus order are rc2, rc0, rc3; the message names the earliest in the file.
    assert "10..19 of pcie_root_complexes[0] in segment 0" in info.value.message
    rcs[4] = {"segment": 0, "start_bus": 20, "end_bus": 29}  # fits the gap exactly
    assert len(config_from_dict({"pcie_root_complexes": rcs}).pcie_root_complexes) == 5


# 7. map with 20,000 NUMA nodes ------------------------------------------------------


def test_map_of_20000_numa_nodes_draws_every_ram_range(tmp_path: Path) -> None:
    """Issue 11's reproduction; map's speed against resolve's is a row of
    `benchmarks/scale.py`."""
    config = tmp_path / "numa.json"
    config.write_text(json.dumps({"node_mem_sizes": ["1G"] * 20_000}))
    assert run_main("map", config, "-o", tmp_path / "m.svg").status == 0
    assert (tmp_path / "m.svg").read_text().count("<rect") > 20_000


def test_a_png_too_tall_to_allocate_is_one_error(tmp_path: Path) -> None:
    pytest.importorskip("PIL")
    config = tmp_path / "numa.json"
    config.write_text(json.dumps({"node_mem_sizes": ["1G"] * 5_000}))
    assert_one_line_error(run_main("map", config, "-o", tmp_path / "m.png"), ".svg")


# 8. Multi-line errors ----------------------------------------------------------------


def test_a_newline_in_an_unknown_key_stays_on_the_error_line(tmp_path: Path) -> None:
    path = tmp_path / "vm.json"
    path.write_text(json.dumps({"a\nb\u0000c": 1}))
    assert_one_line_error(run_main("resolve", path), "a\\nb\\0c: unknown key")


def test_a_newline_in_the_config_path_stays_on_the_error_line(tmp_path: Path) -> None:
    assert_one_line_error(run_main("resolve", tmp_path / "x\ny.toml"), "x\\ny.toml")
    outcome = _subprocess("resolve", "--arch", "x\ny")
    assert_one_line_error(outcome, "x\\ny")


# 9. Modes ------------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_output_files_and_directories_honour_the_umask(tmp_path: Path, umask_022: None) -> None:
    assert run_main("emit", "e820", "-o", tmp_path / "e820.bin").status == 0
    assert _mode(tmp_path / "e820.bin") == 0o644
    assert run_main("emit", "all", "-o", tmp_path / "set").status == 0
    assert _mode(tmp_path / "set") == 0o755
    assert {_mode(p) for p in (tmp_path / "set").iterdir()} == {0o644}


def test_replacing_an_output_file_keeps_its_mode(tmp_path: Path, umask_022: None) -> None:
    out = tmp_path / "blob.bin"
    out.write_bytes(b"old")
    out.chmod(0o604)
    assert run_main("emit", "uefi-config", "-o", out).status == 0
    assert _mode(out) == 0o604 and out.read_bytes() != b"old"


# `-` as CONFIG -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        'arch = "aarch64"\nnode_mem_sizes = ["2G"]\n',
        '{"arch": "aarch64", "node_mem_sizes": ["2G"]}',
    ],
)
def test_dash_reads_the_config_from_standard_input(tmp_path: Path, text: str) -> None:
    path = tmp_path / "vm.cfg"
    path.write_text(text)
    from_file = _subprocess("resolve", path, "--format", "json")
    from_stdin = _subprocess("resolve", "-", "--format", "json", stdin=text)
    assert from_stdin.status == 0, from_stdin
    assert from_stdin.stdout == from_file.stdout
    assert json.loads(from_stdin.stdout)["chipset"]["low"] == [0xE000_0000, 1 << 32]


def test_hostile_standard_input_is_one_error() -> None:
    outcome = _subprocess("resolve", "-", stdin="[" * 100_000)
    assert_one_line_error(outcome, "<stdin>")


# Issue 20 (round two) ---------------------------------------------------------------


def test_a_json_view_larger_than_16_mib_is_still_recognised(artifact_set: Path) -> None:
    # `emit all` writes pci.json files of tens of MiB for configs with many devices;
    # whitespace pads this one past the former 16 MiB sniffing cap, same document.
    assert run_main("emit", "all", EXAMPLES / "gpus.toml", "-o", artifact_set).status == 0
    pci = artifact_set / "pci.json"
    expected = run_main("inspect", pci)
    assert expected.status == 0, expected
    padded = artifact_set.parent / "padded-pci.json"
    padded.write_bytes(pci.read_bytes().rstrip() + b" " * (17 << 20) + b"\n")
    outcome = run_main("inspect", padded)
    assert outcome.status == 0, outcome
    assert outcome.stdout.replace(padded.name, pci.name) == expected.stdout


def test_a_huge_config_of_empty_objects_is_refused_in_linear_time(tmp_path: Path) -> None:
    config = tmp_path / "braces.json"
    config.write_text('{"node_mem_sizes": [' + "{}," * 5_000_000 + "{}]}")
    assert_one_line_error(run_main("resolve", config), "braces.json", "objects and arrays")


def _most_wb_ram_reference(
    target: tuple[MemoryRange, ...], width: int, count: int
) -> tuple[tuple[int, int, int], ...]:
    """The approximation as first written: full budget tables, every split tried for
    every budget (quadratic in `count`, hence slow, but plainly right): the oracle."""
    from functools import cache

    from vmlayout.firmware.memtype import UC, WB, _wb_uc_bytes

    Entry = tuple[int, tuple[tuple[int, int, int], ...]] | None

    def merge(left: tuple[Entry, ...], right: tuple[Entry, ...]) -> list[Entry]:
        out: list[Entry] = [None] * len(left)
        for budget in range(len(left)):
            for k in range(budget + 1):
                a, b = left[k], right[budget - k]
                if a is not None and b is not None:
                    current = out[budget]
                    if current is None or a[0] + b[0] > current[0]:
                        out[budget] = (a[0] + b[0], a[1] + b[1])
        return out

    @cache
    def free(start: int, size: int) -> tuple[Entry, ...]:
        wb, uc = _wb_uc_bytes(target, start, start + size)
        if wb == 0:
            return ((0, ()),) * (count + 1)
        if uc == 0:
            return ((0, ()), *(((wb, ((start, size, WB),)),) * count))
        half = size // 2
        split = merge(free(start, half), free(start + half, half))
        under = merge(covered(start, half), covered(start + half, half))
        for budget in range(1, count + 1):
            option, current = under[budget - 1], split[budget]
            if option is not None and (current is None or option[0] > current[0]):
                split[budget] = (option[0], ((start, size, WB), *option[1]))
        return tuple(split)

    @cache
    def covered(start: int, size: int) -> tuple[Entry, ...]:
        wb, uc = _wb_uc_bytes(target, start, start + size)
        if uc == 0:
            return ((wb, ()),) * (count + 1)
        hole: tuple[Entry, ...] = (None, *(((0, ((start, size, UC),)),) * count))
        if wb == 0:
            return hole
        half = size // 2
        split = merge(covered(start, half), covered(start + half, half))
        return tuple(
            h if s is None or (h is not None and h[0] > s[0]) else s
            for h, s in zip(hole, split, strict=True)
        )

    result = free(0, 1 << width)[count]
    assert result is not None
    return result[1]


@st.composite
def _ram_ranges(draw: st.DrawFn) -> list[MemoryRange]:
    """One to five page-aligned RAM ranges with gaps, below 2^40."""
    out, at = [], 0
    for _ in range(draw(st.integers(1, 5))):
        at += draw(st.integers(0, 1 << 20)) << 12
        size = draw(st.integers(1, 1 << 20)) << 12
        out.append(MemoryRange(at, at + size))
        at += size
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_ram_ranges(), st.integers(1, 12), st.sampled_from((36, 40, 46)))
def test_the_mtrr_approximation_search_picks_what_the_full_search_picks(
    ram: list[MemoryRange], count: int, width: int
) -> None:
    from vmlayout.firmware.memtype import _most_wb_ram, _target

    target = _target(ram, width)
    assert _most_wb_ram(target, width, count) == _most_wb_ram_reference(target, width, count)


def test_an_mtrr_approximation_beyond_the_search_limit_is_one_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import vmlayout.firmware.memtype as memtype

    # [1 MiB, 3.5 GiB) + [4 GiB, 4.5 GiB) needs three registers exactly (WB 4 GiB, UC
    # 512 MiB hole, WB 512 MiB): over a search limit of two, refused, not searched.
    ram = [MemoryRange(0, 3584 << 20), MemoryRange(4 << 30, 4608 << 20)]
    monkeypatch.setattr(memtype, "MAX_APPROXIMATE_PLAN", 2)
    with pytest.raises(VmLayoutError) as caught:
        memtype.exact_variable_pairs(ram, 46, count=1, approximate=True)
    assert caught.value.kind == "mtrr_budget_exceeded"
    assert "needs 3 variable registers" in caught.value.message
    assert "at most 2" in caught.value.message


@pytest.mark.parametrize("command", [("emit", "acpi"), ("emit", "all")])
def test_a_filesystem_root_is_refused_as_an_output_directory(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    (tmp_path / "root").symlink_to("/")
    for root in ("/", tmp_path / "root"):
        outcome = run_main(*command, "-o", root)
        assert_one_line_error(outcome, "output_error", "a filesystem root is not an output")
    assert not Path("/DSDT.aml").exists()


def test_concurrent_emit_all_into_one_directory_leaves_one_whole_set(tmp_path: Path) -> None:
    """Six processes (real ones: the lock is between processes), x86 and arm64 sets
    (different file names) into one DIR: each finishes, and the DIR holds exactly the
    files its record lists."""
    out = tmp_path / "set"
    configs = [EXAMPLES / name for name in ("default.toml", "aarch64.toml", "gpus.toml")] * 2
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "vmlayout", "emit", "all", str(config), "-o", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for config in configs
    ]
    failures = [p.communicate(timeout=120)[1] for p in procs if p.wait(timeout=120) != 0]
    assert failures == []
    record = json.loads((out / "config.json").read_text())
    listed = set(record["settings"]["artifacts"])
    assert {p.name for p in out.iterdir()} == listed | {"config.json"}
    assert run_main("inspect", out).status == 0


def test_bless_through_a_symlink_blesses_the_target(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    target = tmp_path / "shared" / "fleet.jsonl"
    target.write_text(json.dumps({"id": "default", "config": {}}) + "\n")
    link = tmp_path / "fleet.jsonl"
    link.symlink_to(target)
    assert run_main("diff", "--corpus", link, "--bless").status == 0
    assert link.is_symlink()
    assert "expect" in json.loads(target.read_text())
    assert run_main("diff", "--corpus", target).status == 0


#: Characters `str.splitlines` breaks at besides `\n` and `\r`, all legal raw in JSON
#: strings (U+2028/U+2029 line/paragraph separators, NEL, FS/GS/RS, VT, FF).
SPLITLINES_BREAKS = "\u2028\u2029\x85\x1c\x1d\x1e\x0b\x0c"


def _default_line(case_id: str) -> str:
    return json.dumps({"id": case_id, "config": {}}, ensure_ascii=False)


def test_corpus_lines_are_split_at_newlines_only(tmp_path: Path) -> None:
    corpus = tmp_path / "fleet.jsonl"
    ids = [f"vm{char}{i}" for i, char in enumerate(SPLITLINES_BREAKS)]
    corpus.write_text("".join(_default_line(i) + "\n" for i in ids), encoding="utf-8")
    blessed = run_main("diff", "--corpus", corpus, "--bless")
    assert blessed.status == 0, blessed
    assert f"{len(ids)} new" in blessed.stdout and "0 invalid" in blessed.stdout
    lines = corpus.read_bytes().split(b"\n")
    assert lines[-1] == b"" and [json.loads(line)["id"] for line in lines[:-1]] == ids
    outcome = run_main("diff", "--corpus", corpus, "--format", "json")
    assert outcome.status == 0, outcome
    assert json.loads(outcome.stdout)["counts"]["same"] == len(ids)


def test_a_crlf_corpus_is_read_and_blessed_with_its_line_endings(tmp_path: Path) -> None:
    corpus = tmp_path / "fleet.jsonl"
    corpus.write_bytes(b"\r\n".join(_default_line(i).encode() for i in "ab") + b"\r\n\r\n")
    assert run_main("diff", "--corpus", corpus, "--bless").status == 0
    data = corpus.read_bytes()
    assert data.count(b"\r\n") == 3 and data.count(b"\n") == 3 and data.endswith(b"\r\n\r\n")
    assert run_main("diff", "--corpus", corpus).status == 0


def test_an_invalid_corpus_line_keeps_its_id_and_is_listed_first(tmp_path: Path) -> None:
    from vmlayout.inspect.corpus import check_corpus

    broken = {"id": "moved", "config": {}, "expect": {"error": "zero_ram"}}
    corpus = tmp_path / "fleet.jsonl"
    corpus.write_text(
        "\n".join(
            [json.dumps(broken)] * 3
            + [json.dumps({"id": "typo", "config": {"node_mem_size": []}, "expect": {}})]
            + ["\xff not json"]
        )
        + "\n"
    )
    summary = check_corpus(corpus, jobs=1, keep=2)
    assert [(f.line, f.case_id, f.status) for f in summary.failures] == [
        (4, "typo", "invalid"),
        (5, "line 5", "invalid"),
    ]
    assert summary.omitted == 3 and summary.counts["error_changed"] == 3
    outcome = run_main("diff", "--corpus", corpus, "--max", "1")
    assert "line 4 typo (invalid): invalid_config: config" in outcome.stdout
    assert "and 4 more" in outcome.stdout


def test_a_corpus_line_that_is_not_utf8_is_that_lines_problem(tmp_path: Path) -> None:
    corpus = tmp_path / "fleet.jsonl"
    corpus.write_bytes(_default_line("a").encode() + b"\n\xff\xfe\n")
    blessed = run_main("diff", "--corpus", corpus, "--bless")
    assert blessed.status == 1
    assert "line 2: not UTF-8 text" in blessed.stdout
    assert corpus.read_bytes().endswith(b"\n\xff\xfe\n")  # kept byte for byte


def test_bless_names_the_lines_blessed_with_an_error(tmp_path: Path) -> None:
    corpus = tmp_path / "fleet.jsonl"
    lines = [
        _default_line("ok"),
        json.dumps({"id": "no-nodes", "config": {"node_mem_sizes": []}}),
        json.dumps({"config": {"node_mem_sizes": [0]}}),
        json.dumps({"id": 7, "config": 3}),
    ]
    corpus.write_text("\n".join(lines) + "\n")
    blessed = run_main("diff", "--corpus", corpus, "--bless")
    assert blessed.status == 1  # the invalid line
    assert "3 new, 0 refreshed, 0 unchanged, 1 invalid" in blessed.stdout
    assert "2 with an error as the expected outcome" in blessed.stdout
    assert "line 2 no-nodes: no_numa_nodes" in blessed.stdout
    assert "line 3: zero_ram" in blessed.stdout
    assert "line 4 7: invalid_config: config:" in blessed.stdout


def test_a_corpus_line_beyond_the_line_limit_is_invalid_and_bless_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import vmlayout.inspect.corpus as corpus_module

    monkeypatch.setattr(corpus_module, "MAX_LINE_BYTES", 200)
    corpus = tmp_path / "fleet.jsonl"
    text = _default_line("a") + "\n" + json.dumps({"id": "x" * 500, "config": {}}) + "\n"
    corpus.write_text(text)
    summary = corpus_module.check_corpus(corpus, jobs=1)
    assert [(f.line, f.status) for f in summary.failures] == [(1, "invalid"), (2, "invalid")]
    assert "missing field expect" in summary.failures[0].reason
    assert "line limit" in summary.failures[1].reason
    assert_one_line_error(run_main("diff", "--corpus", corpus, "--bless"), "line 2")
    assert corpus.read_text() == text
    assert [p.name for p in tmp_path.iterdir()] == ["fleet.jsonl"]  # no temporary file


def test_a_corpus_is_checked_and_blessed_in_batches_by_the_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import vmlayout.inspect.corpus as corpus_module

    monkeypatch.setattr(corpus_module, "BATCH_LINES", 4)
    corpus = tmp_path / "fleet.jsonl"
    configs = [{"node_mem_sizes": [f"{1 + i % 3}G"]} for i in range(13)]
    configs[6] = {"node_mem_sizes": []}  # an error outcome in the middle
    corpus.write_text(
        "".join(json.dumps({"id": i, "config": c}) + "\n" for i, c in enumerate(configs))
    )
    assert "13 new" in corpus_module.bless_corpus(corpus, jobs=2)[0]
    assert [json.loads(line)["id"] for line in corpus.read_text().splitlines()] == list(range(13))
    summary = corpus_module.check_corpus(corpus, jobs=2)
    assert summary.ok and summary.counts["same"] == 13


def test_corpus_memory_keeps_only_the_listed_failures(tmp_path: Path) -> None:
    from vmlayout.inspect.corpus import check_corpus

    corpus = tmp_path / "empty-objects.jsonl"
    corpus.write_text("{}\n" * 20_000)
    summary = check_corpus(corpus, jobs=1, keep=3)
    assert [f.line for f in summary.failures] == [1, 2, 3]
    assert summary.omitted == 19_997 and summary.counts["invalid"] == 20_000


def _library_error(call: object) -> VmLayoutError:
    assert callable(call)
    with pytest.raises(VmLayoutError) as caught:
        call()
    return caught.value


@pytest.mark.parametrize(
    ("view", "arch"),
    [
        ("e820_map", "aarch64"),
        ("e820_bytes", "aarch64"),
        ("pcat_config", "aarch64"),
        ("reference_mtrrs", "aarch64"),
        ("mtrr_msrs", "aarch64"),
        ("paravisor_device_tree", "aarch64"),
        ("linux_device_tree", "x86_64"),
    ],
)
def test_a_library_view_of_the_other_architecture_is_refused_as_the_cli_does(
    view: str, arch: str
) -> None:
    import vmlayout

    resolved = vmlayout.resolve(arch=arch)
    error = _library_error(lambda: getattr(vmlayout, view)(resolved))
    assert error.kind == "unsupported_arch", error
    assert "exists only on" in error.message and arch not in error.message


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda v: v.load_config(42), "config: expected a VmConfig"),
        (lambda v: v.resolve(b"node_mem_sizes = ['1G']"), "got bytes"),
        (lambda v: v.load_config(arch=64), "arch: expected a string"),
        (lambda v: v.layout_json(v.load_config()), "resolved: expected a ResolvedLayout"),
        (lambda v: v.config_json({"node_mem_sizes": []}), "config: expected a VmConfig"),
        (lambda v: v.mtrr_msrs(v.load_config()), "resolved: expected a ResolvedLayout"),
        (lambda v: v.e820_map(v.resolve(), acpi_len="4K"), "acpi_len: expected"),
        (lambda v: v.e820_bytes(v.resolve(), smbios_len=-1), "smbios_len: -1 is negative"),
        (lambda v: v.uefi_config_blob(v.resolve(), layout_only=1), "layout_only: expected"),
        (lambda v: v.acpi_tables(v.load_config()), "resolved: expected a ResolvedLayout"),
        (lambda v: v.artifact_set(v.resolve(), settings=3), "settings: expected"),
    ],
)
def test_a_library_argument_of_the_wrong_type_or_value_is_a_vmlayout_error(
    call: object, fragment: str
) -> None:
    import vmlayout

    assert callable(call)
    error = _library_error(lambda: call(vmlayout))
    assert error.kind == "invalid_argument" and fragment in error.message, error


def test_a_huge_toml_config_is_refused_before_parsing(tmp_path: Path) -> None:
    from vmlayout.inputs import MAX_TOML_CHARS

    config = tmp_path / "ints.toml"
    config.write_text("node_mem_sizes = [" + "0," * (MAX_TOML_CHARS // 2) + "0]\n")
    assert_one_line_error(run_main("resolve", config), "ints.toml", "4 MiB TOML limit")
    # Without a suffix TOML is tried first, then JSON; the limit still applies to TOML.
    (tmp_path / "ints").write_bytes(config.read_bytes())
    assert_one_line_error(run_main("resolve", tmp_path / "ints"), "TOML limit")
