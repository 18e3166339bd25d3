"""Fuzzing the hostile-input classes of issue 20, generated rather than only the
reproducers: corpus lines holding every character `str.splitlines` breaks at (and CRLF
endings), output through chains of symbolic links, concurrent directory writers,
JSON/TOML documents near and past the nesting and container limits, and the library
called with arguments of every type.

The quick profile runs with every test run; `CI=true` selects the long one
(see `tests/conftest.py`)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzzing import assert_contract, fuzz_settings, nesting_depth, run_main
from vmlayout.errors import VmLayoutError
from vmlayout.inputs import MAX_NESTING_DEPTH, parse_json, parse_toml
from vmlayout.output import write_directory_atomic

#: Characters at which `str.splitlines` breaks (besides `\n`); all are legal raw
#: inside JSON strings, so a corpus line holding them is still one line.
LINE_BREAKERS = "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-hostile")


# Corpus line splitting --------------------------------------------------------------

_ID_TEXT = st.text(st.sampled_from(f'ab"\\[]{{}} {LINE_BREAKERS}\u00e9\U0001f600'), max_size=8)
_CONFIGS = st.sampled_from(
    ({}, {"node_mem_sizes": ["2G"]}, {"node_mem_sizes": []}, {"node_mem_sizes": [0]}, 7)
)


@st.composite
def _corpus(draw: st.DrawFn) -> tuple[bytes, list[Any]]:
    """Corpus bytes and, per physical line, the case it holds (None: blank or garbage)."""
    ending = draw(st.sampled_from((b"\n", b"\r\n")))
    lines: list[bytes] = []
    cases: list[Any] = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(("case", "case", "case", "blank", "garbage")))
        if kind == "case":
            case = {"id": draw(_ID_TEXT), "config": draw(_CONFIGS)}
            lines.append(json.dumps(case, ensure_ascii=False).encode())
            cases.append(case)
        elif kind == "blank":
            lines.append(b"  ")
            cases.append(None)
        else:
            lines.append(draw(st.sampled_from((b"{", b"[1]", b"\xff\xfe", b"{}"))))
            cases.append(None)
    return b"".join(line + ending for line in lines), cases


@fuzz_settings("hostile_corpus")
@given(_corpus())
def test_bless_then_check_keeps_every_line_and_its_id(
    work: Path, corpus: tuple[bytes, list[Any]]
) -> None:
    data, cases = corpus
    path = work / "fleet.jsonl"
    path.write_bytes(data)
    blessed = run_main("diff", "--corpus", path, "--bless", "--jobs", "1")
    assert_contract(blessed, (0, 1))
    after = path.read_bytes()
    assert after.count(b"\n") == data.count(b"\n")  # not one line more or less
    for line, case in zip(after.split(b"\n"), cases, strict=False):
        if case is not None and isinstance(case["config"], dict):
            saved = json.loads(line)
            assert (saved["id"], saved["config"]) == (case["id"], case["config"])
    outcome = run_main("diff", "--corpus", path, "--format", "json", "--jobs", "1")
    assert_contract(outcome, (0, 1))
    summary = json.loads(outcome.stdout)
    readable = sum(1 for c in cases if c is not None and isinstance(c["config"], dict))
    assert summary["counts"]["same"] == readable
    assert summary["counts"]["invalid"] == summary["total"] - readable
    order = [(f["status"] != "invalid", f["line"]) for f in summary["failures"]]
    assert order == sorted(order)  # invalid lines first, each group by line
    for failure in summary["failures"]:
        case = cases[failure["line"] - 1]
        if case is not None:  # an invalid line with an id keeps it
            assert failure["id"] == case["id"]


# Output through symbolic links --------------------------------------------------------


#: Commands writing one file with `-o`, and the suffix each wants.
_FILE_WRITERS = ((("emit", "e820"), ".bin"), (("emit", "uefi-config"), ".bin"), (("map",), ".svg"))


@fuzz_settings("hostile_symlink_output")
@given(
    links=st.integers(1, 4),
    relative=st.booleans(),
    exists=st.booleans(),
    writer=st.sampled_from(_FILE_WRITERS),
)
def test_output_through_a_chain_of_links_writes_the_final_target(
    work: Path, links: int, relative: bool, exists: bool, writer: tuple[tuple[str, ...], str]
) -> None:
    command, suffix = writer
    base = work / f"links-{links}-{relative}-{exists}-{command[-1]}"
    base.mkdir(exist_ok=True)
    (base / "deep").mkdir(exist_ok=True)
    target = base / "deep" / f"out{suffix}"
    target.unlink(missing_ok=True)
    if exists:
        target.write_bytes(b"old")
    chain = target
    for i in range(links):
        link = base / f"link{i}{suffix}"
        link.unlink(missing_ok=True)
        link.symlink_to(chain.relative_to(base) if relative else chain)
        chain = link
    assert_contract(run_main(*command, "-o", chain), (0,))
    for i in range(links):
        assert (base / f"link{i}{suffix}").is_symlink()
    assert target.is_file() and target.read_bytes() != b"old"
    assert sorted(p.name for p in (base / "deep").iterdir()) == [target.name]


# Concurrent writers --------------------------------------------------------------------


@fuzz_settings("hostile_concurrent_writers")
@given(writers=st.integers(2, 6), rounds=st.integers(1, 3), files=st.integers(1, 4))
def test_concurrent_directory_writers_leave_one_whole_set(
    work: Path, writers: int, rounds: int, files: int
) -> None:
    out = work / f"set-{writers}-{rounds}-{files}"
    sets = {i: {f"{i}-{n}": bytes([i]) * 64 for n in range(files)} for i in range(writers)}
    names = [name for one in sets.values() for name in one]
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            for _ in range(rounds):
                write_directory_atomic(out, sets[i], remove=lambda _: names)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(i,)) for i in sets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    left = {p.name: p.read_bytes() for p in out.iterdir()}
    assert any(left == one for one in sets.values()), sorted(left)


# Huge and deep JSON / TOML ------------------------------------------------------------

_STRINGS = st.text(st.sampled_from('[]{}"\\,: a\n\u2028'), max_size=6)


def _nested(depth: int, leaf: Any, kinds: list[bool]) -> Any:
    value = leaf
    for is_list in kinds[:depth]:
        value = [value] if is_list else {"k": value}
    return value


@fuzz_settings("hostile_json_structure")
@given(
    depth=st.integers(1, MAX_NESTING_DEPTH + 8),
    kinds=st.lists(st.booleans(), min_size=MAX_NESTING_DEPTH + 8, max_size=MAX_NESTING_DEPTH + 8),
    leaf=st.one_of(_STRINGS, st.integers(), st.none()),
    siblings=st.integers(0, 50),
    ascii_only=st.booleans(),
)
def test_json_nesting_is_judged_on_the_bytes_as_the_parsed_document_would(
    depth: int, kinds: list[bool], leaf: Any, siblings: int, ascii_only: bool
) -> None:
    value = [_nested(depth, leaf, kinds), *([{}, [], "]]}}"] * siblings)]
    text = json.dumps(value, ensure_ascii=ascii_only)
    if nesting_depth(value) <= MAX_NESTING_DEPTH:
        assert parse_json(text, "x") == value
    else:
        with pytest.raises(VmLayoutError, match="nested deeper than"):
            parse_json(text, "x")


@fuzz_settings("hostile_json_structure")
@given(count=st.integers(0, 40), limit=st.integers(1, 40), nest=st.booleans())
def test_json_containers_beyond_the_limit_are_refused_before_parsing(
    count: int, limit: int, nest: bool
) -> None:
    import vmlayout.inputs

    inner = "[{}]" if nest else "{}"
    text = "[" + ",".join([*[inner] * count, '"[[{{"']) + "]"
    containers = 1 + count * (2 if nest else 1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(vmlayout.inputs, "MAX_JSON_CONTAINERS", limit)
        if containers <= limit:
            assert parse_json(text, "x") == json.loads(text)
        else:
            with pytest.raises(VmLayoutError, match=f"{containers:,} objects and arrays"):
                parse_json(text, "x")


@fuzz_settings("hostile_toml_structure")
@given(depth=st.integers(1, MAX_NESTING_DEPTH + 4), width=st.integers(0, 200))
def test_toml_nesting_and_size_keep_the_contract(depth: int, width: int) -> None:
    text = "a = " + "[" * depth + ", ".join(["0"] * width) + "]" * depth + "\n"
    if depth + 1 <= MAX_NESTING_DEPTH:  # the document is one level
        assert nesting_depth(parse_toml(text, "x")) == depth + 1
    else:
        with pytest.raises(VmLayoutError, match="nested deeper than"):
            parse_toml(text, "x")


# The library's argument types ---------------------------------------------------------

_LIBRARY_CALLS = (
    "load_config",
    "resolve",
    "layout_json",
    "config_json",
    "pci_assignment",
    "e820_map",
    "e820_bytes",
    "reference_mtrrs",
    "mtrr_msrs",
    "pcat_config",
    "uefi_config_blob",
    "acpi_tables",
    "linux_device_tree",
    "paravisor_device_tree",
    "artifact_set",
)


def _library_value(name: str) -> Callable[[Any], Any]:
    """A value of some type the library may be handed, built lazily (layouts cost)."""
    import vmlayout

    makers: dict[str, Callable[[Any], Any]] = {
        "x86 layout": lambda v: v.resolve(),
        "arm64 layout": lambda v: v.resolve(arch="aarch64"),
        "config": lambda v: v.load_config(),
        "mapping": lambda _: {"node_mem_sizes": ["1G"]},
        "bad mapping": lambda _: {"node_mem_sizes": 3},
        "bytes": lambda _: b"node_mem_sizes = ['1G']",
        "int": lambda _: 42,
        "negative": lambda _: -1,
        "bool": lambda _: True,
        "float": lambda _: 1.5,
        "none": lambda _: None,
        "string": lambda _: "grub",
        "missing path": lambda _: "/nonexistent/vm.toml",
        "list": lambda _: [1, 2],
        "object": lambda _: object(),
    }
    maker = makers[name]
    return lambda _: maker(vmlayout)


_VALUE_NAMES = (
    "x86 layout", "arm64 layout", "config", "mapping", "bad mapping", "bytes", "int",
    "negative", "bool", "float", "none", "string", "missing path", "list", "object",
)  # fmt: skip


@fuzz_settings("hostile_library_arguments")
@given(
    function=st.sampled_from(_LIBRARY_CALLS),
    values=st.lists(st.sampled_from(_VALUE_NAMES), min_size=0, max_size=4),
)
def test_the_library_refuses_any_argument_with_a_vmlayout_error(
    function: str, values: list[str]
) -> None:
    import vmlayout

    args = [_library_value(name)(None) for name in values]
    try:
        getattr(vmlayout, function)(*args)
    except VmLayoutError as error:
        assert error.kind and error.message and "\n" not in error.message
    except TypeError as error:
        # Only Python's own call check (too many positional arguments) may say so.
        assert "positional argument" in str(error), error


_NUMBER_TOKENS = st.builds(
    lambda sign, whole, fraction, exponent: f"{sign}{whole}{fraction}{exponent}",
    st.sampled_from(("", "-")),
    st.one_of(st.integers(0, 10**30).map(str), st.integers(95, 130).map(lambda n: "9" * n)),
    st.sampled_from(("", ".5", ".0001", "." + "3" * 105)),
    st.one_of(st.just(""), st.integers(-500, 500).map(lambda e: f"e{e:+d}")),
)


@fuzz_settings("hostile_json_structure")
@given(st.lists(st.tuples(_NUMBER_TOKENS, st.booleans()), min_size=1, max_size=6))
def test_json_numbers_are_refused_exactly_when_too_long_or_infinite(
    tokens: list[tuple[str, bool]],
) -> None:
    """Each token is a number, or (flag set) the same text as a string, which is fine."""
    import re

    text = "[" + ", ".join(json.dumps(t) if quoted else t for t, quoted in tokens) + "]"
    numbers = [t for t, quoted in tokens if not quoted]
    too_long = any(len(run) > 100 for t in numbers for run in re.findall("[0-9]+", t))
    infinite = any(float(t) in (float("inf"), float("-inf")) for t in numbers)
    if not too_long and not infinite:
        assert parse_json(text, "x") == json.loads(text)
    else:
        with pytest.raises(VmLayoutError, match=r"digits|not a finite number"):
            parse_json(text, "x")
