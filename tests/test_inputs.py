"""`vmlayout.inputs`: only regular files, bounded in size, parsed without any parser
exception escaping — the rules that keep the CLI's one-line error contract for
hostile input."""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzzing import nesting_depth
from vmlayout.errors import VmLayoutError
from vmlayout.inputs import (
    MAX_INPUT_BYTES,
    MAX_NESTING_DEPTH,
    MAX_NUMBER_DIGITS,
    escape_control,
    parse_json,
    parse_toml,
    read_bytes,
    read_text,
    shown,
)


def _refused(call: object, *fragments: str) -> VmLayoutError:
    assert callable(call)
    with pytest.raises(VmLayoutError) as info:
        call()
    for fragment in fragments:
        assert fragment in info.value.message, info.value.message
    return info.value


def test_a_regular_file_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(bytes(range(256)) * 5000)
    assert read_bytes(path) == bytes(range(256)) * 5000


def test_a_symlink_to_a_regular_file_is_followed(tmp_path: Path) -> None:
    (tmp_path / "real").write_bytes(b"abc")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert read_bytes(tmp_path / "link") == b"abc"


def test_a_character_device_is_refused_before_reading() -> None:
    error = _refused(lambda: read_bytes("/dev/zero", "invalid_config"), "character device")
    assert error.kind == "invalid_config"


def test_a_symlink_to_a_device_is_refused(tmp_path: Path) -> None:
    (tmp_path / "DSDT.aml").symlink_to("/dev/zero")
    _refused(lambda: read_bytes(tmp_path / "DSDT.aml"), "DSDT.aml", "character device")


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "config.toml"
    os.mkfifo(fifo)
    outcome: list[BaseException | bytes] = []
    worker = threading.Thread(target=lambda: outcome.append(_catch(fifo)), daemon=True)
    worker.start()
    worker.join(5)
    assert not worker.is_alive(), "reading a FIFO blocked"
    assert isinstance(outcome[0], VmLayoutError)
    assert "FIFO" in outcome[0].message


def _catch(path: Path) -> BaseException | bytes:
    try:
        return read_bytes(path)
    except VmLayoutError as error:
        return error


def test_a_socket_and_a_directory_are_refused(tmp_path: Path) -> None:
    sock_path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        _refused(lambda: read_bytes(sock_path), "socket")
    _refused(lambda: read_bytes(tmp_path), "directory")


def test_a_missing_file_and_a_nul_in_the_path_are_one_error(tmp_path: Path) -> None:
    _refused(lambda: read_bytes(tmp_path / "nope"), "no such file")
    _refused(lambda: read_bytes(str(tmp_path / "a\0b")), "a\\0b")


def test_a_file_over_the_size_limit_is_refused_naming_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    with path.open("wb") as handle:  # sparse: no disk space used
        handle.truncate(MAX_INPUT_BYTES + 1)
    _refused(lambda: read_bytes(path), "64 MiB")
    path.write_bytes(b"")
    with path.open("wb") as handle:
        handle.truncate(MAX_INPUT_BYTES)
    assert len(read_bytes(path)) == MAX_INPUT_BYTES


def test_a_byte_order_mark_before_text_is_dropped(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_bytes(b"\xef\xbb\xbfarch = 1\n")
    assert read_text(tmp_path / "c.toml") == "arch = 1\n"


def test_text_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_bytes(b"\xff\xfe")
    _refused(lambda: read_text(tmp_path / "c.toml"), "not UTF-8")


@pytest.mark.parametrize("parse", [parse_json, parse_toml])
def test_deep_nesting_is_refused_not_a_recursion_error(parse: object) -> None:
    assert callable(parse)
    depth = 100_000
    text = "[" * depth + "]" * depth if parse is parse_json else "a = " + "[" * depth + "]" * depth
    _refused(lambda: parse(text, "x"), "nested deeper than")


@pytest.mark.parametrize("parse", [parse_json, parse_toml])
def test_nesting_up_to_the_limit_is_accepted(parse: object) -> None:
    assert callable(parse)
    inner = MAX_NESTING_DEPTH - 1  # the document itself is one level
    text = (
        '{"a": ' + "[" * inner + "]" * inner + "}"
        if parse is parse_json
        else "a = " + "[" * inner + "]" * inner
    )
    assert parse(text, "x") == {"a": json.loads("[" * inner + "]" * inner)}
    text = text.replace("[", "[[", 1).replace("]", "]]", 1)  # one level more
    _refused(lambda: parse(text, "x"), "nested deeper than")


@pytest.mark.parametrize("digits", [MAX_NUMBER_DIGITS + 1, 4301, 100_000])
def test_long_integers_are_refused_before_conversion(digits: int) -> None:
    number = "7" * digits
    _refused(lambda: parse_json(f'{{"a": {number}}}', "x.json"), "digits")
    _refused(lambda: parse_toml(f"a = {number}", "x.toml"), "digits")
    _refused(lambda: parse_json(f'{{"a": -{number}}}', "x.json"), "digits")


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999999", "-1e400"])
def test_json_numbers_that_are_not_finite_are_refused(number: str) -> None:
    # Decoders convert numbers with int(), which raises OverflowError for these.
    _refused(lambda: parse_json(f'{{"a": [{number}]}}', "x.json"), "not a finite number")
    assert parse_json('{"a": 1.5e300}', "x.json") == {"a": 1.5e300}


def test_integers_up_to_the_digit_limit_are_read() -> None:
    number = "9" * MAX_NUMBER_DIGITS
    assert parse_json(f'{{"a": {number}}}', "x") == {"a": int(number)}
    assert parse_toml(f"a = {number}", "x") == {"a": int(number)}


def test_huge_hex_integers_in_toml_are_refused() -> None:
    _refused(lambda: parse_toml("a = 0x" + "f" * 5000, "x"), "digits")


def test_malformed_documents_name_the_parser_and_place() -> None:
    assert parse_json(b'{"a": 1}', "x") == {"a": 1}
    _refused(lambda: parse_json("{", "where.json"), "where.json", "malformed JSON")
    _refused(lambda: parse_toml("a = = 1", "where.toml"), "where.toml", "malformed TOML")
    _refused(lambda: parse_json(b"\xff", "b.json"), "not UTF-8")


def test_control_characters_are_escaped_onto_one_line() -> None:
    assert escape_control("a\nb\0c\rd\te\x1b[31m\u2028") == "a\\nb\\0c\\rd\\te\\x1b[31m\\u2028"
    assert escape_control("plain, ünïcode ✓") == "plain, ünïcode ✓"


@given(st.text())
def test_escaped_text_is_one_printable_line_and_escaping_twice_changes_nothing(
    text: str,
) -> None:
    once = escape_control(text)
    assert once.isprintable()
    assert len(once.splitlines()) <= 1
    assert escape_control(once) == once


def test_echoed_user_text_is_cut_short() -> None:
    assert len(shown("k" * 100_000)) < 300
    assert shown("a\nb") == "a\\nb"


# Issue 20: parsing cost linear in the input, structure refused before objects are built


def test_millions_of_empty_objects_are_refused_before_parsing() -> None:
    from vmlayout.inputs import MAX_JSON_CONTAINERS

    text = '{"node_mem_sizes": [' + "{}," * MAX_JSON_CONTAINERS + "{}]}"
    # The document, its list and limit + 1 `{}`: three more containers than the limit.
    _refused(lambda: parse_json(text, "big.json"), "big.json", f"{MAX_JSON_CONTAINERS + 3:,}")


def test_the_container_limit_counts_objects_and_arrays_outside_strings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import vmlayout.inputs

    monkeypatch.setattr(vmlayout.inputs, "MAX_JSON_CONTAINERS", 3)
    # Three containers; the brackets, quotes and backslashes in strings are not ones.
    text = r'{"a": [{}], "b": "[{\"[\\", "c\\": "]]}}"}'
    assert parse_json(text, "x") == json.loads(text)
    _refused(lambda: parse_json('{"a": [[], {}]}', "x"), "4 objects and arrays")


def test_brackets_in_strings_do_not_count_as_nesting() -> None:
    deep = "[" * (MAX_NESTING_DEPTH * 3)
    text = json.dumps({"a": deep, "b": ["\\" + deep, '"' + deep + "\\"]})
    assert parse_json(text, "x") == json.loads(text)


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.text('[]{}"\\ab,:\n'),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text('[]{}"\\a', max_size=4), inner, max_size=3)
    ),
    max_leaves=40,
)


@given(_JSON_VALUES, st.booleans())
def test_the_structure_pre_check_agrees_with_the_parsed_nesting(
    value: object, ascii_only: bool
) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    if nesting_depth(value) <= MAX_NESTING_DEPTH:
        assert parse_json(text, "x") == value
    else:
        _refused(lambda: parse_json(text, "x"), "nested deeper than")


def test_a_toml_config_beyond_the_toml_limit_is_refused_unparsed() -> None:
    from vmlayout.inputs import MAX_TOML_CHARS

    text = "a = [" + "0," * (MAX_TOML_CHARS // 2) + "]\n"
    _refused(lambda: parse_toml(text, "big.toml"), "big.toml", "TOML limit", "as JSON")
    assert parse_toml("a = [0, 1]\n" + "#" * (MAX_TOML_CHARS - 20), "x") == {"a": [0, 1]}


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ('["' + "7" * 150 + '", "1e400", "-1E+999"]', None),  # in strings: text, fine
        ('["\\\\", "1e400"]', None),  # an escaped backslash ends nothing early
        ('{"a": 1.5e300, "b": 1e-400, "c": 123e-999}', None),  # finite (or zero)
        ('["\\"", 1e400]', "1e400 is not a finite number"),  # an escaped quote
        ('{"a": [-1.5E+400]}', "-1.5E+400 is not a finite number"),
        ('{"a": "x", "b": 1' + "0" * 150 + "}", "a number has 151 digits"),
        ('{"a": 0.' + "0" * 120 + "1}", "a number has 121 digits"),
    ],
)
def test_numbers_are_judged_on_the_bytes_outside_strings_only(
    text: str, refusal: str | None
) -> None:
    if refusal is None:
        assert parse_json(text, "x") == json.loads(text)
    else:
        _refused(lambda: parse_json(text, "x"), refusal)
