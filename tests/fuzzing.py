"""Running the CLI in-process and checking its contract, for regression and fuzz tests.

In-process because fuzzing runs thousands of cases: a subprocess costs ~0.3 s, a call
of `vmlayout.cli.main` a few milliseconds. Any exception escaping `main` (a traceback
for a user) fails the calling test by itself.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st

from vmlayout.acpi.aml import Buffer, Device, Integer, Name, encode_pkglength
from vmlayout.acpi.decode import AML_MAX_DEPTH
from vmlayout.acpi.resources import (
    DWORD_ADDRESS,
    END_TAG,
    QWORD_ADDRESS,
    WORD_ADDRESS,
    DWordMemory,
    QWordMemory,
    WordBusNumber,
)
from vmlayout.acpi.sdt import DSDT_FLAVOUR, SSDT_FLAVOUR, build_table
from vmlayout.cli import main

#: The hypothesis profile for the fuzz tests, registered in `tests/conftest.py`.
FUZZ_PROFILE = "fuzz-ci" if os.environ.get("CI", "").lower() == "true" else "fuzz-quick"


#: Each fuzz test's share of the profile's `max_examples` (slow targets get less); the
#: CI profile must reach 20,000 cases in total (`test_fuzz_budget`).
FUZZ_WEIGHTS = {
    "config_text": 2.0,
    "config_values": 2.0,
    "config_pci": 1.0,
    "artifact_file": 2.5,
    "artifact_directory": 1.0,
    "artifact_record": 0.5,
    "artifact_aml": 1.0,
}


def _round_two_weights() -> dict[str, float]:
    """The hostile-input classes of issue 20 (`tests/test_fuzz_hostile.py`): cheap per
    case, so small shares keep the quick profile fast and CI still runs hundreds each."""
    return {
        "hostile_corpus": 0.2,
        "hostile_symlink_output": 0.3,
        "hostile_concurrent_writers": 0.1,
        "hostile_json_structure": 1.0,
        "hostile_toml_structure": 0.5,
        "hostile_library_arguments": 0.5,
    }


FUZZ_WEIGHTS.update(_round_two_weights())


def fuzz_settings(target: str) -> settings:
    """The fuzz profile with `target`'s share of the profile's examples."""
    profile = settings.get_profile(FUZZ_PROFILE)
    examples = max(10, int(profile.max_examples * FUZZ_WEIGHTS[target]))
    return settings(profile, max_examples=examples)


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int
    stdout: str
    stderr: str


def run_main(*args: str | Path) -> Outcome:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(a) for a in args])
    return Outcome(status, out.getvalue(), err.getvalue())


def assert_contract(outcome: Outcome, allowed: Sequence[int] = (0, 1, 2)) -> None:
    """Exit 0/1/2; on 2 exactly one stderr line `error: <kind>: <detail>`."""
    assert outcome.status in allowed, outcome
    assert "Traceback" not in outcome.stderr
    if outcome.status == 2:
        lines = outcome.stderr.split("\n")
        assert lines[-1] == "" and len(lines) == 2, outcome.stderr
        assert lines[0].startswith("error: "), outcome.stderr
        assert lines[0].count(": ") >= 2, outcome.stderr
        assert lines[0].isprintable(), outcome.stderr


def assert_one_line_error(outcome: Outcome, *fragments: str) -> None:
    assert_contract(outcome, (2,))
    for fragment in fragments:
        assert fragment in outcome.stderr, outcome.stderr


# Mutations -------------------------------------------------------------------------

#: Values a length or count field is most likely to be mishandled at.
BOUNDARY_INTS = (0, 1, 2, 3, 4, 7, 8, 0x24, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x1_0000,
                 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 2**63 - 1, 2**64 - 1)  # fmt: skip
#: Text that breaks parsers: nesting, huge digit runs, control characters, quotes.
HOSTILE_TOKENS = (
    "[" * 2000,
    "{" * 2000,
    "a = " + "[" * 2000,
    '{"a": ' * 2000,
    "9" * 5000,
    "0x" + "f" * 5000,
    "-" + "1" * 400,
    "1e999999",
    "NaN",
    "\0",
    "\n",
    "\r\n",
    "\x1b[2J",
    '"',
    "'",
    "\\",
    "\\u0000",
    "=",
    "[[x]]",
    "]",
    "}",
    ",",
    "\ufeff",
    "\udcff",
)


@st.composite
def mutated_bytes(draw: st.DrawFn, seed: bytes, text: bool = False) -> bytes:
    """`seed` after one to four mutations: bit flips, truncation, length fields set to
    boundary values (either byte order), insertions, deletions, repeated slices and,
    for text, hostile tokens and huge numbers in place of digit runs."""
    data = bytearray(seed)
    ops = ["flip", "truncate", "field", "insert", "delete", "repeat"]
    if text:
        ops += ["token", "token", "huge_number"]
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(ops))
        size = len(data)
        # Headers (lengths, offsets, counts) sit near the start: favour it.
        pos = draw(st.one_of(st.integers(0, min(size, 64)), st.integers(0, size)))
        if op == "flip" and size:
            at = min(pos, size - 1)
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del data[pos:]
        elif op == "field":
            width = draw(st.sampled_from((1, 2, 4, 8)))
            value = draw(
                st.one_of(
                    st.sampled_from(BOUNDARY_INTS),
                    st.sampled_from((size, size - 1, size + 1, size // 2)),
                    st.integers(0, 2 ** (8 * width) - 1),
                )
            ) % (2 ** (8 * width))
            order = draw(st.sampled_from(("little", "big")))
            data[pos : pos + width] = value.to_bytes(width, order)
        elif op == "insert":
            data[pos:pos] = draw(st.binary(max_size=24))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 64))]
        elif op == "repeat":
            chunk = bytes(data[pos : pos + draw(st.integers(1, 64))])
            data[pos:pos] = chunk * draw(st.integers(1, 200))
        elif op == "token":
            token = draw(st.sampled_from(HOSTILE_TOKENS))
            data[pos:pos] = token.encode("utf-8", "surrogateescape")
        elif op == "huge_number":
            runs = [m.span() for m in re.finditer(rb"[0-9]+", data)]
            if runs:
                start, end = draw(st.sampled_from(runs))
                data[start:end] = b"9" * draw(st.sampled_from((21, 101, 4301, 20_000)))
    return bytes(data)


def nesting_depth(value: object) -> int:
    """How many lists/objects deep a parsed document is (a scalar: 0), independently of
    the parser's own check, as the oracle for nesting tests."""
    if isinstance(value, dict):
        return 1 + max(map(nesting_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(nesting_depth, value), default=0)
    return 0


def json_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path into a JSON document (the root is `()`), for mutating one place."""
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out += json_paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out += json_paths(child, (*prefix, index))
    return out


def mutated_table(rng: random.Random, table: bytes, i: int) -> bytes:
    """One of three damages to an ACPI table, in turn: truncated; one to three bits
    flipped; a random body behind an intact header whose length is made to match."""
    seed = bytearray(table)
    if i % 3 == 0:
        seed = seed[: rng.randrange(len(seed))]
    elif i % 3 == 1:
        for _ in range(rng.randrange(1, 4)):
            seed[rng.randrange(len(seed))] ^= 1 << rng.randrange(8)
    else:
        seed[36:] = rng.randbytes(rng.randrange(0, 200))
        seed[4:8] = len(seed).to_bytes(4, "little")
    return bytes(seed)


# Hostile AML (issue 20): deep nesting and resource-descriptor arithmetic ------------

#: Nesting depths around the AML reader's limit, and far beyond the interpreter's stack.
AML_DEPTHS = (1, 2, 3, AML_MAX_DEPTH - 1, AML_MAX_DEPTH, AML_MAX_DEPTH + 1, 1200, 5000)
#: Nestable objects: a Scope, a Device, an If (predicate One) and a Method, each with a
#: one-segment name, wrapped around their contents.
_NESTING: dict[str, tuple[bytes, bytes]] = {
    "scope": (b"\x10", b"S___"),
    "device": (b"\x5b\x82", b"D___"),
    "if": (b"\xa0", b"\x01"),
    "method": (b"\x14", b"M___\x00"),
}


def nested_aml(ops: Sequence[str], leaf: bytes) -> bytes:
    """`leaf` inside one object per entry of `ops` (outermost first), built inside-out
    without recursion, so any depth can be generated."""
    body = leaf
    for op in reversed(ops):
        opcode, head = _NESTING[op]
        inner = head + body
        body = opcode + encode_pkglength(len(inner)) + inner
    return body


def nested_buffers(depth: int) -> bytes:
    """A Name whose Buffer's size is itself a Buffer, `depth` deep (an AML reader that
    reads the size as any data object recurses once per level)."""
    body = b"\x00"
    for _ in range(depth):
        body = b"\x11" + encode_pkglength(len(body)) + body
    return b"\x08_CRS" + body


#: (tag, field table, address bits, resource type) of each address descriptor.
_ADDRESS_DESCRIPTORS = {
    "qword": (QWordMemory.TAG, QWORD_ADDRESS, 64, 0),
    "dword": (DWordMemory.TAG, DWORD_ADDRESS, 32, 0),
    "word": (WordBusNumber.TAG, WORD_ADDRESS, 16, 2),
}


@st.composite
def hostile_address_descriptor(draw: st.DrawFn) -> bytes:
    """A QWord/DWord/Word address descriptor whose minimum, maximum and length sit at
    the edges: a length of 0, minimum + length past 2^bits, maximum below minimum or
    off by one, or consistent."""
    kind = draw(st.sampled_from(sorted(_ADDRESS_DESCRIPTORS)))
    tag, layout, bits, resource_type = _ADDRESS_DESCRIPTORS[kind]
    top = (1 << bits) - 1
    edges = st.sampled_from((0, 1, 0x1000, top, top - 0xFFF, 1 << (bits - 1), top // 2))
    value = st.one_of(edges, st.integers(0, top))
    minimum, length = draw(value), draw(value)
    consistent = min(minimum + length - 1, top) if length else minimum
    maximum = draw(st.one_of(st.just(consistent), st.just(max(consistent - 1, 0)), value))
    return layout.pack(
        tag=tag,
        length=layout.size - 3,
        resource_type=resource_type,
        general_flags=0x0C,
        type_flags=0x03,
        granularity=0,
        minimum=minimum,
        maximum=maximum,
        translation=0,
        range_length=length,
    )


@st.composite
def hostile_definition_block(draw: st.DrawFn) -> tuple[str, bytes]:
    """(file name, table) of a DSDT or SSDT with a valid header, length and checksum
    whose AML nests deeply, repeats devices, holds recursive buffers or edge-case
    resource arithmetic in the chipset device's `_CRS`."""
    signature = draw(st.sampled_from(("DSDT", "SSDT")))
    kind = draw(st.sampled_from(("nesting", "buffers", "resources", "repeated")))
    crs_device = "\\_SB.VMOD" if signature == "DSDT" else "\\_SB.PCI0"
    if kind == "nesting":
        depth = draw(st.sampled_from(AML_DEPTHS))
        pattern = draw(st.lists(st.sampled_from(sorted(_NESTING)), min_size=1, max_size=4))
        ops = [pattern[i % len(pattern)] for i in range(depth)]
        body = nested_aml(ops, Name("_UID", Integer(0)).encode())
    elif kind == "repeated":  # many sibling devices (the object limit has its own test)
        device = nested_aml(["device"], Name("_UID", Integer(0)).encode())
        body = nested_aml(["scope"], device * draw(st.sampled_from((2, 1000, 5000))))
    elif kind == "buffers":
        body = nested_aml(["device"], nested_buffers(draw(st.sampled_from(AML_DEPTHS))))
    else:
        descriptors = b"".join(draw(st.lists(hostile_address_descriptor(), min_size=1, max_size=3)))
        body = Device(crs_device, (Name("_CRS", Buffer(descriptors + END_TAG)),)).encode()
    flavour = DSDT_FLAVOUR if signature == "DSDT" else SSDT_FLAVOUR
    return f"{signature}.aml", build_table(signature.encode(), 2, body, flavour)
