"""Check many configs against saved layouts (`vmlayout diff --corpus`), in parallel.

A corpus is JSON Lines in the resolver-vector form `{"id", "config", "expect"}`, where
`expect` is a saved `resolve --format json` or `{"error": KIND}`. It is how a VMM change
is proven not to move any guest's addresses across a fleet of configurations; `--bless`
writes (or refreshes) every line's `expect` from the current resolver, so a corpus is
created from a file of `{"id", "config"}` lines and refreshed after an intended change.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import itertools
import json
import multiprocessing
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Generic, TextIO, TypeVar

from vmlayout.config import config_from_dict
from vmlayout.errors import VmLayoutError
from vmlayout.inspect.diff import (
    ChangeClass,
    RangeChange,
    check_saved_layout,
    diff_layouts,
)
from vmlayout.policy import VmConfig, resolve
from vmlayout.report import resolved_to_json

#: Per-line outcomes, from good to bad, with what each means. `same` and `additive`
#: pass (`additive` fails with --strict); every other status fails the run.
STATUS_MEANINGS = {
    "same": "resolves to exactly the saved layout",
    "additive": "differs only by additive changes (a window grown in place, a new range)",
    "break": "at least one break: a shared range or BAR moved, shrank or vanished, a bridge "
    "was renumbered, or RAM changed",
    "changed": "no range changed but other saved fields differ (totals, IOMMU kind)",
    "error_changed": "the saved error kind differs, or an error became a layout or back",
    "invalid": "the line is not a valid corpus line (bad JSON, field or config)",
}
STATUSES = tuple(STATUS_MEANINGS)


@dataclass(frozen=True, slots=True)
class CaseResult:
    line: int
    case_id: str
    status: str
    reason: str = ""
    changes: tuple[RangeChange, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "id": self.case_id,
            "status": self.status,
            "reason": self.reason,
            "changes": [c.to_json() for c in self.changes],
        }


@dataclass(slots=True)
class CorpusSummary:
    strict: bool = False
    counts: Counter[str] = field(default_factory=Counter)
    failures: list[CaseResult] = field(default_factory=list)
    #: Failures found but not listed (beyond `--max`).
    omitted: int = 0
    #: Lines that differ but pass (`additive` without --strict), with their changes.
    passing_changes: list[CaseResult] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def ok(self) -> bool:
        return not self.failures and not self.omitted

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "strict": self.strict,
            "total": self.total,
            "counts": {status: self.counts[status] for status in STATUSES},
            "failures": [f.to_json() for f in self.failures],
            "omitted": self.omitted,
            "additive": [r.to_json() for r in self.passing_changes],
        }


def fails(status: str, strict: bool) -> bool:
    return status not in ("same", "additive") or (strict and status == "additive")


def _one_line(error: Exception) -> str:
    """A reason a user can act on, never a Python repr."""
    if isinstance(error, VmLayoutError):
        return error.message if error.kind == "invalid_line" else f"{error.kind}: {error.message}"
    if isinstance(error, KeyError):
        return f"missing field {error.args[0]}"
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _parse_case(line: str) -> dict[str, Any]:
    from vmlayout.inputs import parse_json  # bounded nesting and numbers

    case = parse_json(line, "JSON line", "invalid_line")
    if not isinstance(case, dict):
        raise VmLayoutError("invalid_line", "not a JSON object")
    return case


def _id_of(case: dict[str, Any]) -> str | None:
    """The line's `id` (a string or integer), or None when it has none."""
    value = case.get("id")
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value)
    return None


def _case_id(case: dict[str, Any], number: int) -> str:
    """The line's `id`, or `line N` when it has none."""
    found = _id_of(case)
    return f"line {number}" if found is None else found


def _case_config(case: dict[str, Any]) -> VmConfig:
    if "config" not in case:
        raise VmLayoutError("invalid_line", "missing field config")
    try:
        config = config_from_dict(case["config"])
    except VmLayoutError as error:
        # Name the field once: config errors mostly already start with `config`.
        message = error.message
        if message != "config" and not message.startswith(("config:", "config.", "config[")):
            message = f"config: {message}"
        raise VmLayoutError(error.kind, message) from None
    return config


def _resolve_json(config: VmConfig) -> dict[str, Any]:
    try:
        return resolved_to_json(resolve(config))
    except VmLayoutError as error:
        return {"error": error.kind}


def check_case(item: tuple[int, str, bool]) -> CaseResult:
    """Resolve one corpus line and compare it with its saved expectation."""
    number, line, strict = item
    case_id, status, reason, changes = _check_text(line, strict)
    return CaseResult(
        number, f"line {number}" if case_id is None else case_id, status, reason, changes
    )


#: What one line's text gives: (its id or None, status, reason, changes). Identical
#: lines give identical outcomes, so a worker remembers the last few (hostile corpora
#: repeat one line millions of times; real ones cost one dictionary look-up a line).
TextOutcome = tuple[str | None, str, str, tuple[RangeChange, ...]]


#: Lines up to this length are remembered (1024 of them): the memory a worker keeps
#: for repeats stays below 64 MiB whatever the corpus holds.
CACHED_LINE_CHARS = 64 * 1024


def _check_text(line: str, strict: bool) -> TextOutcome:
    if len(line) <= CACHED_LINE_CHARS:
        return _check_short_text(line, strict)
    return _check_line_text(line, strict)


@functools.lru_cache(maxsize=1024)
def _check_short_text(line: str, strict: bool) -> TextOutcome:
    return _check_line_text(line, strict)


def _check_line_text(line: str, strict: bool) -> TextOutcome:
    case_id: str | None = None
    try:
        case = _parse_case(line)
        case_id = _id_of(case)  # kept by an invalid line too
        config = _case_config(case)
        expect = case["expect"]
        if not isinstance(expect, dict):
            raise VmLayoutError("invalid_line", "expect is not an object")
        actual = _resolve_json(config)
        if "error" in expect or "error" in actual:
            if expect.get("error") == actual.get("error"):
                return case_id, "same", "", ()
            return (
                case_id,
                "error_changed",
                f"expected {expect.get('error', 'a layout')}, "
                f"got {actual.get('error', 'a layout')}",
                (),
            )
        if expect == actual:
            return case_id, "same", "", ()
        changes = tuple(diff_layouts(check_saved_layout(expect, "expect"), actual, strict))
    except (VmLayoutError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
        return case_id, "invalid", _one_line(e), ()
    if not changes:
        fields = sorted(k for k in {*expect, *actual} if expect.get(k) != actual.get(k))
        return case_id, "changed", f"fields differ: {', '.join(fields)}", ()
    breaks = [c for c in changes if c.change_class is ChangeClass.BREAK]
    if breaks:
        first = breaks[0]
        reason = f"{len(breaks)} break(s); first {first.name} {first.change.value}: {first.reason}"
        return case_id, "break", reason, changes
    names = ", ".join(f"{c.name} {c.change.value}" for c in changes)
    return case_id, "additive", names, changes


#: A corpus holds one saved layout per line: far more than one config file, still bounded.
MAX_CORPUS_BYTES = 4 * 1024 * 1024 * 1024
#: One line is one config and its saved layout: at most what any one input may be.
MAX_LINE_BYTES = 64 * 1024 * 1024
#: Lines handed to the worker pool at a time (and at most this many bytes of them): the
#: run holds one batch, not the corpus. Below one batch the check runs in process.
BATCH_LINES = 2000
BATCH_BYTES = 16 * 1024 * 1024
#: `--bless` lists at most this many invalid lines and error outcomes by name.
MAX_LISTED = 100


@dataclass(frozen=True, slots=True)
class _Line:
    """One physical line: its bytes as read (terminator included, so a kept line is
    written back byte for byte) and its text, or why it has none."""

    number: int
    raw: bytes
    text: str | None
    problem: str = ""
    #: Only the line's start is in `raw` (`MAX_LINE_BYTES` exceeded).
    truncated: bool = False

    @property
    def blank(self) -> bool:
        return self.text is not None and not self.text.strip()


def _read_line(stream: BinaryIO) -> tuple[bytes, bool]:
    """The next line up to and including its `\n` (`b""` at the end), and whether it
    is longer than `MAX_LINE_BYTES` (then only its start is returned and the rest is
    skipped, so a huge line costs no memory)."""
    line = stream.readline(MAX_LINE_BYTES + 1)
    if len(line) <= MAX_LINE_BYTES or line.endswith(b"\n"):
        return line, False
    while True:
        rest = stream.readline(1 << 20)
        if not rest or rest.endswith(b"\n"):
            return line[:64] + rest[-2:], True


def _lines(stream: BinaryIO) -> Iterator[_Line]:
    """The corpus split at `\n` only (a trailing `\r` is dropped from the text):
    U+2028, U+2029, form feeds and the other characters `str.splitlines` also breaks
    at are legal inside JSON strings and stay inside their line. Each line is decoded
    on its own, so one line that is not UTF-8 is that line's problem."""
    for number in itertools.count(1):
        raw, too_long = _read_line(stream)
        if not raw:
            return
        if too_long:
            problem = f"longer than the {MAX_LINE_BYTES // (1024 * 1024)} MiB line limit"
            yield _Line(number, raw, None, problem, truncated=True)
            continue
        body = raw.removesuffix(b"\n").removesuffix(b"\r")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as error:
            problem = f"not UTF-8 text (byte {error.start}: {error.reason})"
            yield _Line(number, raw, None, problem)
            continue
        yield _Line(number, raw, text.removeprefix("\ufeff") if number == 1 else text)


@contextlib.contextmanager
def _open_corpus(path: Path) -> Iterator[tuple[BinaryIO, int]]:
    """The corpus as a binary stream and its size in bytes (0: unknown, standard input)."""
    from vmlayout.inputs import STDIN_NAME, open_regular

    if str(path) == STDIN_NAME:
        yield sys.stdin.buffer, 0
        return
    with open_regular(path, "invalid_input", MAX_CORPUS_BYTES) as stream:
        yield stream, os.fstat(stream.fileno()).st_size


def _batches(lines: Iterator[_Line]) -> Iterator[list[_Line]]:
    """`lines` in lists of at most `BATCH_LINES` lines and about `BATCH_BYTES`."""
    batch: list[_Line] = []
    size = 0
    for line in lines:
        batch.append(line)
        size += len(line.raw)
        if len(batch) >= BATCH_LINES or size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def worker_count(jobs: int | None) -> int:
    """`--jobs`, capped at the CPU count (more workers only add contention)."""
    cpus = os.cpu_count() or 1
    return max(1, min(jobs or cpus, cpus))


Item = tuple[int, str, bool]
Result = TypeVar("Result")


#: Lines a worker checks or blesses per task: few enough to spread a batch over the
#: workers, many enough that passing results back costs little per line.
CHUNK_LINES = 250

Chunk = tuple[list[Item], int | None]  # lines, and how many failures to keep


def _run_batches(
    batches: Iterator[list[_Line]],
    work: Callable[[Chunk], Result],
    strict: bool,
    jobs: int | None,
    keep: int | None = None,
) -> Iterator[tuple[list[_Line], list[Result]]]:
    """Each batch with `work`'s results over its readable, non-blank lines in chunks of
    `CHUNK_LINES`, in order. One batch: in process; more: a worker pool fed one batch at
    a time, so memory holds a batch, never the corpus."""
    workers = worker_count(jobs)
    pool: Any = None
    try:
        for batch in batches:
            items = [(ln.number, ln.text, strict) for ln in batch if ln.text and not ln.blank]
            chunks = [
                (items[at : at + CHUNK_LINES], keep) for at in range(0, len(items), CHUNK_LINES)
            ]
            full = len(batch) >= BATCH_LINES or sum(len(ln.raw) for ln in batch) >= BATCH_BYTES
            if pool is None and workers > 1 and full:  # more than one batch: worth a pool
                pool = multiprocessing.get_context("fork").Pool(workers)
            results = map(work, chunks) if pool is None else pool.imap(work, chunks)
            yield batch, list(results)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()


def _progress(lines: int, done: int, total: int, stream: TextIO) -> None:
    """A bar over the bytes read (the line count is not known before the end)."""
    width = 40
    filled = width * done // total if total else 0
    stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {lines} lines")
    stream.flush()


class _Smallest(Generic[Result]):
    """The `limit` smallest items by key seen so far (all when `limit` is None) and how
    many were dropped: a run keeps what it reports, not every failure."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.heap: list[tuple[tuple[int, ...], int, Result]] = []  # keys negated
        self.dropped = 0
        #: The largest key kept, once `limit` are kept (a new key must be smaller).
        self.worst: tuple[int, ...] | None = None

    def would_drop(self, key: tuple[int, ...]) -> bool:
        """Whether `key` is not among the smallest kept (then its item need not be built:
        a corpus of millions of failures builds only the few it lists)."""
        if self.limit == 0:
            return True
        return self.worst is not None and key >= self.worst

    def add(self, key: tuple[int, ...], item: Result) -> None:
        if self.would_drop(key):
            self.dropped += 1  # not among the smallest: nothing to build
            return
        entry = (tuple(-k for k in key), len(self.heap) + self.dropped, item)
        if self.limit is None or len(self.heap) < self.limit:
            heapq.heappush(self.heap, entry)
        else:
            heapq.heapreplace(self.heap, entry)
            self.dropped += 1
        if self.limit is not None and len(self.heap) >= self.limit:
            self.worst = tuple(-k for k in self.heap[0][0])

    def items(self) -> list[Result]:
        return [item for _, _, item in sorted(self.heap, reverse=True)]


def _failure_order(result: CaseResult) -> tuple[int, int]:
    """Invalid lines first (a line the check could not read says nothing about the
    layout, and must not be hidden by `--max` behind many breaks), then by line."""
    return (0 if result.status == "invalid" else 1, result.line)


@dataclass(slots=True)
class _Tally:
    """What checking some lines found: counts per status and the failures and passing
    changes worth listing (at most `keep` each), so a worker sends back what the report
    can show, not a result per line."""

    keep: int | None
    counts: Counter[str] = field(default_factory=Counter)
    failures: _Smallest[CaseResult] = field(init=False)
    passing: _Smallest[CaseResult] = field(init=False)

    def __post_init__(self) -> None:
        self.failures = _Smallest(self.keep)
        self.passing = _Smallest(self.keep)

    def add_outcome(self, number: int, outcome: TextOutcome, strict: bool) -> None:
        """`add` of line `number`'s outcome, building its `CaseResult` only when it is
        listed (the cost of a line that is only counted stays a few operations)."""
        case_id, status, reason, changes = outcome
        self.counts[status] += 1
        key: tuple[int, ...]
        if fails(status, strict):
            target, key = self.failures, (0 if status == "invalid" else 1, number)
        elif status != "same":
            target, key = self.passing, (number,)
        else:
            return
        if target.would_drop(key):
            target.dropped += 1
            return
        shown = f"line {number}" if case_id is None else case_id
        target.add(key, CaseResult(number, shown, status, reason, changes))

    def add(self, result: CaseResult, strict: bool) -> None:
        self.counts[result.status] += 1
        if fails(result.status, strict):
            self.failures.add(_failure_order(result), result)
        elif result.status != "same":
            self.passing.add((result.line,), result)

    def merge(self, other: _Tally) -> None:
        self.counts.update(other.counts)
        for mine, theirs in ((self.failures, other.failures), (self.passing, other.passing)):
            for result in theirs.items():
                key = _failure_order(result) if mine is self.failures else (result.line,)
                mine.add(key, result)
            mine.dropped += theirs.dropped


def _check_chunk(chunk: Chunk) -> _Tally:
    items, keep = chunk
    tally = _Tally(keep)
    for item in items:
        tally.add(check_case(item), item[2])
    return tally


#: A line `_raw_blocks` found longer than `MAX_LINE_BYTES` (its bytes are not kept).
TOO_LONG = None
READ_BYTES = 4 * 1024 * 1024

RawChunk = tuple[int, list[bytes | None], bool, int | None]  # first line, lines, strict, keep


def _raw_blocks(stream: BinaryIO) -> Iterator[tuple[int, list[bytes | None], int]]:
    """(number of the first line, the lines without `\n`, bytes read) per block: the
    corpus split at `\n` only, in C, a block at a time, so the reading loop costs
    nothing per line. A line longer than `MAX_LINE_BYTES` is `TOO_LONG` (skipped while
    it is read, never held)."""
    number, carry, skipping = 1, b"", False
    while True:
        block = stream.read(READ_BYTES)
        if not block:
            break
        parts = block.split(b"\n")
        tail = parts.pop()
        pieces: list[bytes | None] = list(parts)
        if parts:
            if skipping:
                pieces[0], skipping = TOO_LONG, False
            else:
                head = carry + parts[0] if carry else parts[0]
                pieces[0] = TOO_LONG if len(head) > MAX_LINE_BYTES else head
            carry = b""
        if READ_BYTES > MAX_LINE_BYTES:  # a whole line may fit in one block: check each
            pieces = [p if p is None or len(p) <= MAX_LINE_BYTES else TOO_LONG for p in pieces]
        if skipping or len(carry) + len(tail) > MAX_LINE_BYTES:
            carry, skipping = b"", True
        else:
            carry += tail
        yield number, pieces, len(block)
        number += len(pieces)
    if skipping:
        yield number, [TOO_LONG], 0
    elif carry:
        yield number, [carry], 0


def _text_of(number: int, raw: bytes) -> str:
    """A line's text as `_lines` gives it (a trailing `\r` and line 1's byte-order mark
    dropped); raises UnicodeDecodeError."""
    text = raw.removesuffix(b"\r").decode("utf-8")
    return text.removeprefix("\ufeff") if number == 1 else text


def _check_raw_chunk(chunk: RawChunk) -> _Tally:
    first, lines, strict, keep = chunk
    tally = _Tally(keep)
    for number, raw in enumerate(lines, first):
        if raw is TOO_LONG:
            problem = f"longer than the {MAX_LINE_BYTES // (1024 * 1024)} MiB line limit"
            tally.add(CaseResult(number, f"line {number}", "invalid", problem), strict)
            continue
        try:
            text = _text_of(number, raw)
        except UnicodeDecodeError as error:
            problem = f"not UTF-8 text (byte {error.start}: {error.reason})"
            tally.add(CaseResult(number, f"line {number}", "invalid", problem), strict)
            continue
        if text.strip():
            tally.add_outcome(number, _check_text(text, strict), strict)
    return tally


def check_corpus(
    path: str | Path,
    jobs: int | None = None,
    progress: bool | None = None,
    keep: int | None = None,
    strict: bool = False,
) -> CorpusSummary:
    """Check every line; list every failure (at most `keep` when given: invalid lines
    first, then by line). Streams: memory holds one batch of lines and what is listed."""
    show = sys.stderr.isatty() if progress is None else progress
    tally = _Tally(keep)
    done = 0
    workers = worker_count(jobs)
    pool: Any = None
    try:
        with _open_corpus(Path(path)) as (stream, total):
            for first, lines, size in _raw_blocks(stream):
                done += size
                chunks = [
                    (first + at, lines[at : at + CHUNK_LINES], strict, keep)
                    for at in range(0, len(lines), CHUNK_LINES)
                ]
                if pool is None and workers > 1 and size >= READ_BYTES:
                    pool = multiprocessing.get_context("fork").Pool(workers)
                results = (
                    map(_check_raw_chunk, chunks)
                    if pool is None
                    else pool.imap(_check_raw_chunk, chunks)
                )
                for part in results:
                    tally.merge(part)
                if show and lines:
                    _progress(first + len(lines) - 1, done, total, sys.stderr)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    if show:
        sys.stderr.write("\n")
    summary = CorpusSummary(strict=strict, counts=tally.counts)
    summary.failures = tally.failures.items()
    summary.omitted = tally.failures.dropped
    summary.passing_changes = tally.passing.items()
    return summary


@dataclass(frozen=True, slots=True)
class _Blessed:
    """What blessing one line gives: its new text (None: keep the line as it was), the
    outcome (new, refreshed, unchanged or invalid), its id, and the invalid line's
    reason or the error kind it was blessed with."""

    text: str | None
    outcome: str
    case_id: str
    detail: str = ""


def _bless_line(item: Item) -> _Blessed:
    number, line, _ = item
    case_id = f"line {number}"
    try:
        case = _parse_case(line)
        case_id = _case_id(case, number)
        config = _case_config(case)
    except (VmLayoutError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
        return _Blessed(None, "invalid", case_id, _one_line(e))
    actual = _resolve_json(config)
    outcome = (
        "new" if "expect" not in case else "unchanged" if case["expect"] == actual else "refreshed"
    )
    blessed = {k: v for k, v in case.items() if k != "expect"}
    blessed["expect"] = actual
    return _Blessed(json.dumps(blessed), outcome, case_id, str(actual.get("error", "")))


def _bless_chunk(chunk: Chunk) -> list[_Blessed]:
    return [_bless_line(item) for item in chunk[0]]


def _label(number: int, case_id: str) -> str:
    """`line N id`, or `line N` for a line without an id (as the check lists them)."""
    return case_id if case_id == f"line {number}" else f"line {number} {case_id}"


def _listed(title: str, names: list[str], count: int) -> list[str]:
    more = f"  ... and {count - len(names)} more" if count > len(names) else ""
    return [title, *(f"  {name}" for name in names), *([more] if more else [])]


def bless_corpus(path: str | Path, jobs: int | None = None) -> tuple[str, int]:
    """Write every valid line's `expect` from the current resolver (atomically, to the
    target of a symbolic link); invalid lines are kept byte for byte and listed, and so
    are the lines whose blessed outcome is an error (a config that must fail: worth a
    look). Streams to a temporary file beside the corpus. Returns the report text and
    the number of invalid lines."""
    from vmlayout.inputs import STDIN_NAME
    from vmlayout.output import open_atomic

    path = Path(path)
    if str(path) == STDIN_NAME:
        raise VmLayoutError("usage", "--bless: needs a corpus file, not standard input")
    outcomes: Counter[str] = Counter()
    invalid: list[str] = []
    errors: list[str] = []
    with _open_corpus(path) as (stream, _), open_atomic(path) as out:
        for batch, chunks in _run_batches(_batches(_lines(stream)), _bless_chunk, False, jobs):
            readable = [line for line in batch if line.text and not line.blank]
            blessed = dict(zip(readable, itertools.chain.from_iterable(chunks), strict=True))
            for line in batch:
                result = blessed.get(line)
                if line.truncated:  # it cannot be kept as it was: change nothing
                    raise VmLayoutError(
                        "invalid_input", f"{path}: line {line.number}: {line.problem}"
                    )
                if line.text is None:
                    result = _Blessed(None, "invalid", f"line {line.number}", line.problem)
                if result is None or result.text is None:
                    out.write(line.raw)  # blank or invalid: kept as it was
                else:
                    ending = b"\r\n" if line.raw.endswith(b"\r\n") else b"\n"
                    out.write(result.text.encode() + ending)
                if result is None:
                    continue
                outcomes[result.outcome] += 1
                label = _label(line.number, result.case_id)
                if result.outcome == "invalid":
                    if len(invalid) < MAX_LISTED:
                        invalid.append(f"{label}: {result.detail}")
                elif result.detail:
                    outcomes["error"] += 1
                    if len(errors) < MAX_LISTED:
                        errors.append(f"{label}: {result.detail}")
    report = [
        f"blessed {path}: {outcomes['new']} new, {outcomes['refreshed']} refreshed, "
        f"{outcomes['unchanged']} unchanged, {outcomes['invalid']} invalid (kept as they "
        f"were); {outcomes['error']} with an error as the expected outcome",
    ]
    if errors:
        title = "expected to fail (the config does not resolve; check this is intended):"
        report += _listed(title, errors, outcomes["error"])
    if invalid:
        report += _listed("invalid (kept as they were):", invalid, outcomes["invalid"])
    return "\n".join(report) + "\n", outcomes["invalid"]


def summary_to_table(summary: CorpusSummary) -> str:
    mode = " (--strict)" if summary.strict else ""
    lines = [f"{summary.total} configs checked{mode}"]
    lines += [
        f"  {status:<14} {summary.counts[status]:>7}  {meaning}"
        for status, meaning in STATUS_MEANINGS.items()
    ]
    if summary.failures:
        lines.append("")
        lines.append("failures:")
        for f in summary.failures:
            label = f.case_id if f.case_id == f"line {f.line}" else f"line {f.line} {f.case_id}"
            lines.append(f"  {label} ({f.status}): {f.reason}")
            lines += [
                f"      {c.change_class.value:<8} {c.change.value:<12} {c.name}: {c.reason}"
                for c in f.changes
            ]
    if summary.omitted:
        lines.append(f"  ... and {summary.omitted} more (raise --max to list them)")
    if summary.passing_changes:
        lines.append("")
        lines.append("additive (passing):")
        lines += [f"  line {r.line} {r.case_id}: {r.reason}" for r in summary.passing_changes]
    lines.append("")
    lines.append("ok" if summary.ok else "FAILED")
    return "\n".join(lines) + "\n"
