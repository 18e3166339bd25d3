"""Bounded, regular-file-only reading of configs and artifacts, and defensive parsing.

Every byte vmlayout reads from a user passes through here, because the CLI's contract
(one error line, exit 2, never a hang or a traceback) must hold for hostile input too:
`/dev/zero` as a config must not exhaust memory, a FIFO must not block forever, and a
JSON document nested ten thousand deep or holding a 5,000-digit number must be
refused as an invalid config, not crash the parser. The limits are far beyond any
real input: the largest real artifact is a few hundred KiB, a config a few KiB.

This module is imported by `vmlayout.cli` at start-up, so it imports only the
standard library's cheapest modules at module level.
"""

from __future__ import annotations

import contextlib
import functools
import os
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    import json
    import re

from vmlayout.errors import VmLayoutError

#: No config or artifact comes near this; anything bigger is refused before reading.
MAX_INPUT_BYTES = 64 * 1024 * 1024
#: A config is nested four deep (config, root complex list, root complex, window);
#: a corpus line or an artifact record adds a level or two.
MAX_NESTING_DEPTH = 32
#: 2**64 has 20 decimal digits; anything longer is too large for every field, so it
#: is refused before converting (Python's int conversion is quadratic and capped).
MAX_NUMBER_DIGITS = 100
#: Echoed user text (keys, names, paths) is cut to this many characters in messages.
MAX_ECHO_CHARS = 200
#: Objects and arrays in one JSON document. Parsing costs memory per container (an
#: empty `{}` is three bytes of text and a hundred of Python), so `{}` repeated to the
#: input limit would take gigabytes; real documents hold one container per ~70 bytes
#: (a 64 MiB `pci.json` about a million), so four million leaves room to spare.
MAX_JSON_CONTAINERS = 4_000_000
#: TOML is parsed in pure Python (about a microsecond per byte at worst) and only
#: configs are TOML; a config of this size is already hundreds of thousands of devices.
#: Larger configs must be JSON, which parses fifty times faster.
MAX_TOML_CHARS = 4 * 1024 * 1024

STDIN_NAME = "-"

_CONTROL_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}


def escape_control(text: str) -> str:
    """`text` on one printable line: control and line-breaking characters escaped.

    An error message echoes user text (a key, a name, a path); a newline or NUL in it
    must not split the one-line error or corrupt a terminal. Backslashes are kept as
    they are, so escaping twice changes nothing."""
    if text.isprintable():
        return text
    out = []
    for char in text:
        if char in _CONTROL_ESCAPES:
            out.append(_CONTROL_ESCAPES[char])
        elif char.isprintable() or char == " ":
            out.append(char)
        elif ord(char) < 0x100:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return "".join(out)


def shown(text: object) -> str:
    """User text for an error message: escaped and cut to `MAX_ECHO_CHARS`."""
    value = str(text) if not isinstance(text, str) else text
    if len(value) > MAX_ECHO_CHARS:
        value = value[:MAX_ECHO_CHARS] + "…"
    return escape_control(value)


def _kind_of_file(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _too_big(where: str, kind: str, limit: int = MAX_INPUT_BYTES) -> VmLayoutError:
    return VmLayoutError(kind, f"{where}: larger than the {limit // (1024 * 1024)} MiB input limit")


def read_bytes(
    path: str | Path, kind: str = "invalid_input", limit: int = MAX_INPUT_BYTES
) -> bytes:
    """The content of `path`, which must be (or link to) a regular file of at most
    `MAX_INPUT_BYTES`; anything else is a `VmLayoutError` of `kind`."""
    where = shown(path)
    with open_regular(path, kind, limit) as stream:
        try:
            return _read_bounded(stream.read, where, kind, limit)
        except OSError as error:
            raise VmLayoutError(kind, f"{where}: cannot read: {_reason(error)}") from None


@contextlib.contextmanager
def open_regular(
    path: str | Path, kind: str = "invalid_input", limit: int = MAX_INPUT_BYTES
) -> Iterator[BinaryIO]:
    """`path` opened for binary reading, for a reader that streams (a corpus); the
    same checks as `read_bytes`: a regular file (or a link to one) of at most `limit`.

    Devices, FIFOs and sockets are refused from `stat` before opening (opening a FIFO
    for reading blocks until a writer appears); the open is non-blocking and `fstat`
    re-checks the opened file, so swapping the path in between gains nothing."""
    where = shown(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise VmLayoutError(kind, f"{where}: no such file") from None
    except (OSError, ValueError) as error:  # ValueError: NUL in the path
        raise VmLayoutError(kind, f"{where}: cannot read: {_reason(error)}") from None
    if not stat.S_ISREG(info.st_mode):
        raise VmLayoutError(kind, f"{where}: {_kind_of_file(info.st_mode)}, not a regular file")
    if info.st_size > limit:
        raise _too_big(where, kind, limit)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as error:
        raise VmLayoutError(kind, f"{where}: cannot read: {_reason(error)}") from None
    with os.fdopen(fd, "rb") as stream:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise VmLayoutError(kind, f"{where}: {_kind_of_file(info.st_mode)}, not a regular file")
        yield stream


def read_stdin_bytes(kind: str = "invalid_config") -> bytes:
    """Standard input, bounded like a file (it may be a pipe of unknown length)."""
    stream = sys.stdin.buffer if sys.stdin is not None else None
    if stream is None:
        raise VmLayoutError(kind, "<stdin>: standard input is closed")
    try:
        return _read_bounded(stream.read, "<stdin>", kind)
    except OSError as error:
        raise VmLayoutError(kind, f"<stdin>: cannot read: {_reason(error)}") from None


def _read_bounded(
    read: Callable[[int], bytes], where: str, kind: str, limit: int = MAX_INPUT_BYTES
) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = read(min(1 << 20, limit + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise _too_big(where, kind, limit)


def read_text(path: str | Path, kind: str = "invalid_input", limit: int = MAX_INPUT_BYTES) -> str:
    """`read_bytes` decoded as UTF-8 (`-` reads standard input); a leading byte-order
    mark, which some editors write, is dropped."""
    data = read_stdin_bytes(kind) if str(path) == STDIN_NAME else read_bytes(path, kind, limit)
    text = decode_utf8(data, "<stdin>" if str(path) == STDIN_NAME else shown(path), kind)
    return text.removeprefix("\ufeff")


def decode_utf8(data: bytes, where: str, kind: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise VmLayoutError(
            kind, f"{where}: cannot read: not UTF-8 text (byte {error.start}: {error.reason})"
        ) from None


def _reason(error: Exception) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return shown(str(error))


def _no_constant(text: str) -> float:
    raise _NotFinite(text)  # NaN, Infinity, -Infinity: Python's extension, not JSON


class _NotFinite(ValueError):
    def __init__(self, text: str) -> None:
        super().__init__(f"{text} is not a finite number")


class _NumberTooLong(ValueError):
    def __init__(self, digits: int | None = None) -> None:
        count = "too many" if digits is None else str(digits)
        super().__init__(f"a number has {count} digits (at most {MAX_NUMBER_DIGITS} are read)")


class _TooDeep(ValueError):
    def __init__(self) -> None:
        super().__init__(f"nested deeper than {MAX_NESTING_DEPTH} levels")


#: The smallest integer with more than `MAX_NUMBER_DIGITS` decimal digits.
_TOO_LONG_NUMBER = 10**MAX_NUMBER_DIGITS


def check_depth(value: object, limit: int = MAX_NESTING_DEPTH) -> None:
    """Refuse lists/objects nested deeper than `limit` and integers longer than
    `MAX_NUMBER_DIGITS` digits (iteratively: no recursion)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, int) and not -_TOO_LONG_NUMBER < item < _TOO_LONG_NUMBER:
            raise _NumberTooLong()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            raise _TooDeep()
        stack.extend((child, depth + 1) for child in children)


class _TooManyContainers(ValueError):
    def __init__(self, count: int) -> None:
        super().__init__(f"{count:,} objects and arrays (at most {MAX_JSON_CONTAINERS:,} are read)")


#: Every byte except the ones that open, close or quote: what `_json_skeleton` keeps.
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
_ONE_BRACKET_KIND = bytes.maketrans(b"{}", b"[]")
#: The skeleton is split into strings in slices of this size, bounding the pieces held.
_SKELETON_SLICE = 1 << 20


def _json_skeleton(data: bytes) -> bytes:
    """The brackets of `data` outside strings, `{}` written as `[]`, in linear time and
    without building a Python object per value: what `parse_json` checks for nesting
    and size before `json.loads` builds anything.

    Exact for valid JSON; for invalid JSON an approximation (json.loads then reports
    the real error). Backslashes occur only inside strings, where they pair up from the
    left: once escaped backslashes and escaped quotes are removed, every quote opens or
    closes a string, and a bracket is outside all strings exactly when an even number
    of quotes precedes it."""
    kept = data.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_STRUCTURE)
    kept = kept.replace(b'""', b"")  # adjacent quotes: a string without brackets
    outside: list[bytes] = []
    in_string = False
    for at in range(0, len(kept), _SKELETON_SLICE):
        pieces = kept[at : at + _SKELETON_SLICE].split(b'"')
        outside.append(b"".join(pieces[1 if in_string else 0 :: 2]))
        in_string ^= len(pieces) % 2 == 0  # an odd number of quotes in this slice
    return b"".join(outside).translate(_ONE_BRACKET_KIND)


def _check_structure(data: bytes) -> None:
    """Refuse more than `MAX_JSON_CONTAINERS` containers or nesting deeper than
    `MAX_NESTING_DEPTH` from the skeleton. Each round removes the innermost `[]` pairs
    (str.replace scans the original, so exactly one level a round): a document nested
    d deep is empty after d rounds. Unbalanced brackets are left to json.loads."""
    small = len(data) <= _SKELETON_SLICE
    if small and data.count(b"[") + data.count(b"{") <= min(MAX_NESTING_DEPTH, MAX_JSON_CONTAINERS):
        return  # too few brackets to break either limit (most corpus lines, tiny docs)
    skeleton = _json_skeleton(data)
    opened = skeleton.count(b"[")
    if opened > MAX_JSON_CONTAINERS:
        raise _TooManyContainers(opened)
    if len(skeleton) - opened > opened:
        return  # more closing than opening: malformed, json.loads says where
    for _ in range(MAX_NESTING_DEPTH):
        if not skeleton:
            return
        skeleton = skeleton.replace(b"[]", b"")
    if b"[]" in skeleton:
        raise _TooDeep()


@functools.cache
def _json_decoder() -> json.JSONDecoder:
    """One decoder, made once (a corpus parses millions of lines; `json.loads` with a
    hook builds a decoder per call). Numbers are converted by the C parser — a Python
    hook per number made a 60 MB array of zeros take most of a minute — after
    `_check_numbers` has looked at them on the bytes; only `NaN`/`Infinity`, which are
    not JSON, reach a hook."""
    import json

    return json.JSONDecoder(parse_constant=_no_constant)


#: Per byte, its class for `_check_numbers`: digits `0`, exponent letters `e`, signs
#: `+`, the decimal point `.`, everything else a space.
_NUMBER_CLASSES = bytes(
    ord("0") if chr(b).isdigit() and b < 0x80
    else ord("e") if b in b"eE"
    else ord("+") if b in b"+-"
    else b if b == ord(".")
    else ord(" ")
    for b in range(256)
)  # fmt: skip


#: What `_number_candidates` looks for in the classes: a digit run one longer than
#: allowed, an exponent of three digits without or with a sign.
_NUMBER_NEEDLES = (b"0" * (MAX_NUMBER_DIGITS + 1), b"e000", b"e+000")


def _number_candidates(classes: bytes) -> Iterator[tuple[int, bool]]:
    """(position, too long?) of every digit run longer than `MAX_NUMBER_DIGITS` and of
    every exponent of three or more digits (the only numbers that can overflow), in
    order, found with `bytes.find` (linear; a regex would retry each digit of a long
    run) and generated one by one (a hostile document may hold millions in strings)."""
    import heapq

    def runs() -> Iterator[tuple[int, bool]]:
        run = _NUMBER_NEEDLES[0]
        at = classes.find(run)
        while at >= 0:
            yield at, True
            at = classes.find(run, at + _run_length(classes, at))

    def exponents(needle: bytes) -> Iterator[tuple[int, bool]]:
        at = classes.find(needle)
        while at >= 0:
            yield at, False
            at = classes.find(needle, at + len(needle))

    return heapq.merge(runs(), *(exponents(needle) for needle in _NUMBER_NEEDLES[1:]))


def _check_numbers(data: bytes) -> None:
    """Refuse a number of more than `MAX_NUMBER_DIGITS` digits (before any conversion:
    Python's is quadratic and capped) or one that overflows to infinity, looking only
    at the few places that can hold one; each counts only if an even number of quotes
    precedes it (outside strings; escaped quotes and backslashes blanked first, which
    keeps positions)."""
    classes = data.translate(_NUMBER_CLASSES)
    if all(classes.find(needle) < 0 for needle in _NUMBER_NEEDLES):
        return  # no candidate at all: most documents
    plain = b""
    quotes, at = 0, 0
    for position, too_long in _number_candidates(classes):
        if not plain:  # only now: most documents have no candidate at all
            plain = data.replace(b"\\\\", b"__").replace(b'\\"', b"__")
        quotes += plain.count(b'"', at, position)
        at = position
        if quotes % 2:
            continue  # inside a string
        if too_long:
            raise _NumberTooLong(_run_length(classes, position))
        start = position
        while (
            start > 0 and position - start <= 2 * MAX_NUMBER_DIGITS and classes[start - 1] in b"0.+"
        ):
            start -= 1
        end = position + 1
        while end < len(classes) and classes[end] in b"0+":
            end += 1
        text = data[start:end].decode("ascii", "replace")
        try:
            value = float(text)
        except ValueError:
            continue  # not a number after all: json.loads says what it is
        if value in (float("inf"), float("-inf")):
            raise _NotFinite(text if len(text) <= 40 else f"{text[:40]}…")


def _run_length(classes: bytes, position: int) -> int:
    """The length of the digit run starting at `position`."""
    stop = _not_a_digit().search(classes, position)
    return (stop.start() if stop else len(classes)) - position


@functools.cache
def _not_a_digit() -> re.Pattern[bytes]:
    import re

    return re.compile(rb"[^0]")


def parse_json(text: str | bytes, where: str, kind: str = "invalid_config") -> Any:
    """`json.loads`, but a hostile document (deep nesting, huge numbers, bad UTF-8,
    millions of containers) is a `VmLayoutError` of `kind` naming `where`, never another
    exception, and its cost stays linear in its size: structure is checked on the
    bytes before any object is built."""
    if isinstance(text, bytes):
        data, text = text, decode_utf8(text, where, kind)
    else:
        data = text.encode("utf-8", "surrogatepass")
    try:
        _check_structure(data)
        _check_numbers(data)
        value = _json_decoder().decode(text)
    except (_NumberTooLong, _TooDeep, _NotFinite, _TooManyContainers) as error:
        raise VmLayoutError(kind, f"{where}: {error}") from None
    except RecursionError:
        raise VmLayoutError(kind, f"{where}: {_TooDeep()}") from None
    except ValueError as error:  # JSONDecodeError and any conversion refusal
        raise VmLayoutError(kind, f"{where}: malformed JSON: {shown(error)}") from None
    return value


def parse_toml(text: str, where: str, kind: str = "invalid_config") -> Any:
    """`tomllib.loads` with the same guarantees as `parse_json`."""
    import tomllib

    if len(text) > MAX_TOML_CHARS:
        raise VmLayoutError(
            kind,
            f"{where}: a TOML config of {len(text):,} characters is larger than the "
            f"{MAX_TOML_CHARS // (1024 * 1024)} MiB TOML limit (write a config this big as JSON)",
        )
    try:
        value = tomllib.loads(text)
        check_depth(value)
    except (_NumberTooLong, _TooDeep) as error:
        raise VmLayoutError(kind, f"{where}: {error}") from None
    except RecursionError:
        raise VmLayoutError(kind, f"{where}: {_TooDeep()}") from None
    except tomllib.TOMLDecodeError as error:
        raise VmLayoutError(kind, f"{where}: malformed TOML: {shown(error)}") from None
    except ValueError:
        # tomllib converts integers itself; Python refuses > 4300 decimal digits.
        raise VmLayoutError(kind, f"{where}: {_NumberTooLong()}") from None
    return value
