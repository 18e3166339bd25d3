"""Hostile input, round two, on the VM description and the artifact set (issue 20's
reproducers that live in the config, the registry and the record)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fuzzing import assert_one_line_error, run_main
from vmlayout.artifacts import CONFIG_FILE


def test_emit_all_leaves_pcat_out_when_a_value_overflows_its_item(tmp_path: Path) -> None:
    """A 4 KiB high window has no size in MiB: PCAT cannot describe it, as it cannot a
    layout without a high window, so `emit all` writes the rest without `pcat.json`."""
    config = tmp_path / "vm.toml"
    config.write_text('chipset_high_mmio_size = "4 KiB"\n')
    outcome = run_main("emit", "all", config, "-o", tmp_path / "set")
    assert outcome.status == 0, outcome
    assert not (tmp_path / "set" / "pcat.json").exists()
    assert (tmp_path / "set" / "mtrr.json").exists()
    assert run_main("inspect", tmp_path / "set").status == 0


def test_a_record_listing_one_file_many_times_reads_it_once(tmp_path: Path) -> None:
    out = tmp_path / "set"
    assert run_main("emit", "all", "-o", out).status == 0
    record = json.loads((out / CONFIG_FILE).read_text())
    record["settings"]["artifacts"] = ["layout.json"] * 100_000 + record["settings"]["artifacts"]
    (out / CONFIG_FILE).write_text(json.dumps(record))
    from vmlayout.artifacts import load_artifact_set

    assert list(load_artifact_set(out).files).count("layout.json") == 1


def test_a_slit_for_more_nodes_than_its_limit_is_one_error(tmp_path: Path) -> None:
    """4097 vNUMA nodes resolve (and `map` draws them), but their SLIT would be 16 MiB
    and more: `emit acpi` refuses with one line instead of building it."""
    config = tmp_path / "vm.json"
    config.write_text(json.dumps({"node_mem_sizes": ["4K"] * 4097}))
    assert run_main("resolve", config, "--format", "json").status == 0
    assert_one_line_error(
        run_main("emit", "acpi", config, "-o", tmp_path / "acpi"), "too_many_numa_nodes", "4096"
    )
    assert not (tmp_path / "acpi").exists()


def test_processor_options_out_of_range_name_the_option(tmp_path: Path) -> None:
    out = tmp_path / "x.bin"
    assert_one_line_error(
        run_main("emit", "uefi-config", "-o", out, "--vps-per-socket", "0"), "--vps-per-socket"
    )
    assert_one_line_error(
        run_main("emit", "uefi-config", "-o", out, "--vp-count", "0x100000000"),
        "--vp-count",
        "out of range 1..4096",
    )
    assert not out.exists()


def test_emit_all_leaves_e820_out_when_the_tables_do_not_fit_below_1_mib() -> None:
    """Thousands of PCI functions make multi-megabyte ACPI tables, which the Linux
    direct-boot map cannot hold below 1 MiB: the set has no e820.bin, as it has no
    pcat.json for layouts PCAT cannot describe."""
    from vmlayout.artifacts import EmitSettings, view_named
    from vmlayout.config import DEFAULT_VM
    from vmlayout.policy import resolve

    view = view_named("e820")
    files, _ = view.build(resolve(DEFAULT_VM), EmitSettings(), {"DSDT.aml": bytes(5 << 20)})
    assert files == {}
    files, _ = view.build(resolve(DEFAULT_VM), EmitSettings(), {"DSDT.aml": bytes(4096)})
    assert set(files) == {"e820.bin"}


@pytest.mark.parametrize("read_bytes", [1, 3, 7, 64, 4096])
def test_block_reading_splits_a_corpus_exactly_as_line_reading_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read_bytes: int
) -> None:
    """The check reads the corpus a block at a time (issue 20: 8 M lines in seconds);
    whatever the block size, every line gets the status and reason the line-by-line
    reader (still used by --bless) gives it: CRLF, a byte-order mark, U+2028 inside a
    string, a line that is not UTF-8, one over the line limit, and no final newline."""
    import vmlayout.inspect.corpus as corpus

    good = json.dumps({"id": "a\u2028b", "config": {}, "expect": {}}, ensure_ascii=False)
    lines = [
        "\ufeff" + good,
        '{"id": 7, "config": {"node_mem_sizes": ["1G"]}, "expect": {}}\r',
        "",
        "x" * 90,
        "{}",
        good,
    ]
    data = "\n".join(lines).encode() + b"\n\xff\xfe\n" + b'{"id": "last"}'
    path = tmp_path / "c.jsonl"
    path.write_bytes(data)
    monkeypatch.setattr(corpus, "MAX_LINE_BYTES", 80)
    monkeypatch.setattr(corpus, "READ_BYTES", read_bytes)
    expected = []
    with path.open("rb") as stream:
        for line in corpus._lines(stream):
            if line.text is None:
                expected.append((line.number, "invalid", line.problem))
            elif not line.blank:
                r = corpus.check_case((line.number, line.text, False))
                expected.append((line.number, r.status, r.reason))
    summary = corpus.check_corpus(path, jobs=1)
    got = sorted(
        [(f.line, f.status, f.reason) for f in summary.failures]
        + [(f.line, f.status, f.reason) for f in summary.passing_changes]
    )
    assert sum(summary.counts.values()) == len(expected)
    failing = sorted(e for e in expected if e[1] not in ("same", "additive"))
    assert [g for g in got if g[1] not in ("same", "additive")] == failing
    ids = {f.line: f.case_id for f in summary.failures}
    assert ids[len(lines) + 2] == "last"  # an invalid line keeps its id
