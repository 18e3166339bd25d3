"""Fuzzing configs: mutated config text and hostile field values, through every command
that reads a config, must keep the CLI's contract — exit 0, 1 or 2, exactly one
`error:` line on 2, never a traceback (an exception escaping `main` fails the test).

The quick profile runs with every test run; `CI=true` selects the long one
(see `tests/conftest.py`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzzing import assert_contract, fuzz_settings, json_paths, mutated_bytes, run_main
from tests.vectors import PROJECT_VECTORS
from vmlayout.config import DEFAULT_VM, config_to_dict, load_config

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _vector_configs(count: int) -> list[dict[str, Any]]:
    """`count` configs spread over the resolver vectors that the reference accepts."""
    cases = [json.loads(line) for line in (PROJECT_VECTORS / "resolver.jsonl").open()]
    valid = [case["config"] for case in cases if "error" not in case["expect"]]
    return valid[:: max(1, len(valid) // count)][:count]


TOML_SEEDS = [path.read_bytes() for path in sorted(EXAMPLES.glob("*.toml"))]
DICT_SEEDS: list[dict[str, Any]] = [
    config_to_dict(DEFAULT_VM),
    *(config_to_dict(load_config(path)) for path in sorted(EXAMPLES.glob("*.toml"))),
    *_vector_configs(24),
]
JSON_SEEDS = [json.dumps(seed, indent=1).encode() for seed in DICT_SEEDS]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-config")


#: Commands reading a config, with what each needs besides it (`{out}`: a work path).
COMMANDS: tuple[tuple[str, ...], ...] = (
    ("resolve", "--format", "json"),
    ("resolve",),
    ("emit", "mtrr"),
    ("emit", "mtrr-state"),
    ("check", "mtrr"),
    ("emit", "e820", "-o", "{out}/e820.bin"),
    ("emit", "pcat"),
    ("emit", "uefi-config", "-o", "{out}/uefi.bin"),
    ("emit", "acpi", "-o", "{out}/acpi"),
    ("emit", "dt-paravisor", "-o", "{out}/p.dtb"),
    ("emit", "dt-linux", "-o", "{out}/l.dtb"),
    ("emit", "all", "-o", "{out}/set"),
    ("explain", "ram0"),
    ("map", "-o", "{out}/map.svg"),
    ("diff", str(EXAMPLES / "default.toml")),
)


def _run(command: tuple[str, ...], config: Path, out: Path) -> None:
    words = [word.replace("{out}", str(out)) for word in command]
    at = 3 if words[0] == "explain" else (1 if words[0] in ("resolve", "map", "diff") else 2)
    words.insert(at, str(config))  # CONFIG goes right after the (sub)command
    assert_contract(run_main(*words))


@fuzz_settings("config_text")
@given(
    data=st.data(),
    kind=st.sampled_from(("toml", "json")),
    suffix=st.sampled_from((".toml", ".json", ".cfg")),
)
def test_mutated_config_text_keeps_the_contract(
    work: Path, data: st.DataObject, kind: str, suffix: str
) -> None:
    seeds = TOML_SEEDS if kind == "toml" else JSON_SEEDS
    seed = data.draw(st.sampled_from(seeds))
    text = data.draw(mutated_bytes(seed, text=True))
    path = work / f"vm{suffix}"
    path.write_bytes(text)
    assert_contract(run_main("resolve", path, "--format", "json"), (0, 2))


#: Values for a field: wrong types, out-of-range and huge numbers, hostile strings,
#: nesting. The string markers are replaced after `json.dumps` by text it cannot make.
_HUGE, _DEEP = "__HUGE_NUMBER__", "__DEEP_NESTING__"
SCALARS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from((0, 1, 255, 256, 2**32, 2**63, 2**64 - 4096, 2**64 - 1, 2**64, -1)),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=12),
    st.from_regex(r"\A *[0-9]{1,22}(\.[0-9]{0,4})? ?([KMGTPkmgtpB]|[KMGTP]i?B)? *\Z"),
    st.from_regex(r"\A0[xX][0-9a-fA-F_]{1,20}\Z"),
    st.sampled_from(("x86_64", "aarch64", "virtio", "smmu", "intel", "amd", _HUGE, _DEEP)),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=8,
)


@st.composite
def hostile_config(draw: st.DrawFn) -> str:
    """A seed config with one to three fields replaced, removed or added."""
    config = json.loads(json.dumps(draw(st.sampled_from(DICT_SEEDS))))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(json_paths(config)))
        if not path:
            continue
        *parents, last = path
        container = config
        for step in parents:
            container = container[step]
        action = draw(st.sampled_from(("replace", "replace", "remove", "add")))
        if action == "replace":
            container[last] = draw(VALUES)
        elif action == "remove":
            del container[last]
        elif isinstance(container, dict):
            key = draw(st.one_of(st.text(max_size=12), st.sampled_from(("a\nb", "\0", "x" * 300))))
            container[key] = draw(VALUES)
        else:
            container.insert(last, draw(VALUES))
    text = json.dumps(config)
    depth = draw(st.sampled_from((31, 33, 5000)))
    return text.replace(f'"{_HUGE}"', "9" * draw(st.sampled_from((21, 101, 4301)))).replace(
        f'"{_DEEP}"', "[" * depth + "]" * depth
    )


@fuzz_settings("config_values")
@given(text=hostile_config(), command=st.sampled_from(COMMANDS))
def test_hostile_config_values_keep_the_contract_in_every_command(
    work: Path, text: str, command: tuple[str, ...]
) -> None:
    path = work / "vm.json"
    path.write_text(text)
    _run(command, path, work)


def test_the_seeds_are_valid_configs(work: Path) -> None:
    """The fuzzers start from valid configs, so their mutations reach deep code."""
    assert len(DICT_SEEDS) >= 25
    for seed in DICT_SEEDS:
        path = work / "seed.json"
        path.write_text(json.dumps(seed))
        outcome = run_main("resolve", path)
        assert outcome.status == 0, (seed, outcome)
