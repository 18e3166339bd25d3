"""Check many configs against saved layouts (`vmlayout diff --corpus`), in parallel.

A corpus is JSON Lines in the resolver-vector form `{"id", "config", "expect"}`, where
`expect` is a saved `resolve --format json` or `{"error": KIND}`. It is how a VMM change
is proven not to move any guest's addresses across a fleet of configurations; `--bless`
writes (or refreshes) every line's `expect` from the current resolver, so a corpus is
created from a file of `{"id", "config"}` lines and refreshed after an intended change.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

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


def _parse_line(line: str) -> tuple[dict[str, Any], VmConfig]:
    from vmlayout.inputs import parse_json  # bounded nesting and numbers

    case = parse_json(line, "JSON line", "invalid_line")
    if not isinstance(case, dict):
        raise VmLayoutError("invalid_line", "not a JSON object")
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
    return case, config


def _resolve_json(config: VmConfig) -> dict[str, Any]:
    try:
        return resolved_to_json(resolve(config))
    except VmLayoutError as error:
        return {"error": error.kind}


def check_case(item: tuple[int, str, bool]) -> CaseResult:
    """Resolve one corpus line and compare it with its saved expectation."""
    number, line, strict = item
    case_id = f"line {number}"
    try:
        case, config = _parse_line(line)
        if isinstance(case.get("id"), str | int):
            case_id = str(case["id"])
        expect = case["expect"]
        if not isinstance(expect, dict):
            raise VmLayoutError("invalid_line", "expect is not an object")
        actual = _resolve_json(config)
        if "error" in expect or "error" in actual:
            if expect.get("error") == actual.get("error"):
                return CaseResult(number, case_id, "same")
            return CaseResult(
                number,
                case_id,
                "error_changed",
                f"expected {expect.get('error', 'a layout')}, "
                f"got {actual.get('error', 'a layout')}",
            )
        if expect == actual:
            return CaseResult(number, case_id, "same")
        changes = tuple(diff_layouts(check_saved_layout(expect, "expect"), actual, strict))
    except (VmLayoutError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
        return CaseResult(number, case_id, "invalid", _one_line(e))
    if not changes:
        fields = sorted(k for k in {*expect, *actual} if expect.get(k) != actual.get(k))
        return CaseResult(number, case_id, "changed", f"fields differ: {', '.join(fields)}")
    breaks = [c for c in changes if c.change_class is ChangeClass.BREAK]
    if breaks:
        first = breaks[0]
        reason = f"{len(breaks)} break(s); first {first.name} {first.change.value}: {first.reason}"
        return CaseResult(number, case_id, "break", reason, changes)
    names = ", ".join(f"{c.name} {c.change.value}" for c in changes)
    return CaseResult(number, case_id, "additive", names, changes)


def _numbered(lines: Iterable[str], strict: bool) -> Iterator[tuple[int, str, bool]]:
    for number, line in enumerate(lines, 1):
        if line.strip():
            yield number, line, strict


def _progress(done: int, total: int, stream: TextIO) -> None:
    width = 40
    filled = width * done // max(total, 1)
    stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    stream.flush()


#: A corpus holds one saved layout per line: far more than one config file, still bounded.
MAX_CORPUS_BYTES = 4 * 1024 * 1024 * 1024


def _read_lines(path: Path) -> list[str]:
    from vmlayout.inputs import read_text  # regular files only, bounded (no /dev/zero)

    return read_text(path, "invalid_input", MAX_CORPUS_BYTES).splitlines()


def worker_count(jobs: int | None) -> int:
    """`--jobs`, capped at the CPU count (more workers only add contention)."""
    cpus = os.cpu_count() or 1
    return max(1, min(jobs or cpus, cpus))


def check_corpus(
    path: str | Path,
    jobs: int | None = None,
    progress: bool | None = None,
    keep: int | None = None,
    strict: bool = False,
) -> CorpusSummary:
    """Check every line; list every failure by line (at most `keep` when given)."""
    items = list(_numbered(_read_lines(Path(path)), strict))
    workers = worker_count(jobs)
    show = sys.stderr.isatty() if progress is None else progress
    summary = CorpusSummary(strict=strict)
    chunk = max(1, min(512, len(items) // (workers * 8) or 1))

    def collect(results: Iterable[CaseResult]) -> None:
        for done, result in enumerate(results, 1):
            summary.counts[result.status] += 1
            if fails(result.status, strict):
                summary.failures.append(result)
            elif result.status != "same":
                summary.passing_changes.append(result)
            if show and (done % 1000 == 0 or done == len(items)):
                _progress(done, len(items), sys.stderr)

    if workers == 1 or len(items) < 2000:
        collect(map(check_case, items))
    else:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            collect(pool.imap_unordered(check_case, items, chunksize=chunk))
    if show:
        sys.stderr.write("\n")
    summary.failures.sort(key=lambda r: r.line)
    summary.passing_changes.sort(key=lambda r: r.line)
    if keep is not None:
        del summary.passing_changes[keep:]
    if keep is not None and len(summary.failures) > keep:
        summary.omitted = len(summary.failures) - keep
        del summary.failures[keep:]
    return summary


def _bless_line(item: tuple[int, str, bool]) -> tuple[int, str, str]:
    """(line number, new line text or the old one, outcome: new/refreshed/unchanged or
    `invalid: reason`)."""
    number, line, _ = item
    try:
        case, config = _parse_line(line)
    except (VmLayoutError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
        return number, line, f"invalid: {_one_line(e)}"
    actual = _resolve_json(config)
    outcome = (
        "new" if "expect" not in case else "unchanged" if case["expect"] == actual else "refreshed"
    )
    blessed = {k: v for k, v in case.items() if k != "expect"}
    blessed["expect"] = actual
    return number, json.dumps(blessed), outcome


def bless_corpus(path: str | Path, jobs: int | None = None) -> tuple[str, int]:
    """Write every valid line's `expect` from the current resolver (atomically); invalid
    lines are kept as they are and listed. Returns the report text and the number of
    invalid lines."""
    from vmlayout.output import write_atomic

    path = Path(path)
    lines = _read_lines(path)
    items = list(_numbered(lines, False))
    workers = worker_count(jobs)
    if workers == 1 or len(items) < 2000:
        results = list(map(_bless_line, items))
    else:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            results = pool.map(_bless_line, items, chunksize=256)
    out = list(lines)
    outcomes: Counter[str] = Counter()
    invalid: list[str] = []
    for number, text, outcome in results:
        out[number - 1] = text
        if outcome.startswith("invalid"):
            outcomes["invalid"] += 1
            invalid.append(f"  line {number}: {outcome.removeprefix('invalid: ')}")
        else:
            outcomes[outcome] += 1
    write_atomic(path, "\n".join(out) + "\n")
    report = [
        f"blessed {path}: {outcomes['new']} new, {outcomes['refreshed']} refreshed, "
        f"{outcomes['unchanged']} unchanged, {outcomes['invalid']} invalid (kept as they were)",
        *invalid,
    ]
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
