"""Check many configs against saved layouts (`vmlayout diff --corpus`), in parallel.

A corpus is JSON Lines in the resolver-vector form `{"id", "config", "expect"}`, where
`expect` is a saved `resolve --format json` or `{"error": KIND}`. It is how a VMM change
is proven not to move any guest's addresses across a fleet of configurations.
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
from vmlayout.inspect.diff import Change, check_saved_layout, diff_layouts
from vmlayout.policy import resolve
from vmlayout.report import resolved_to_json

#: Outcomes, from good to bad; anything but `same` fails the run (`changed`: something
#: differs but nothing present on both sides moved).
STATUSES = ("same", "changed", "moved", "error_changed", "invalid")


@dataclass(frozen=True, slots=True)
class CaseResult:
    line: int
    case_id: str
    status: str
    detail: str = ""


@dataclass(slots=True)
class CorpusSummary:
    counts: Counter[str] = field(default_factory=Counter)
    failures: list[CaseResult] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def ok(self) -> bool:
        return self.counts["same"] == self.total

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "counts": {status: self.counts[status] for status in STATUSES},
            "failures": [
                {"line": f.line, "id": f.case_id, "status": f.status, "detail": f.detail}
                for f in self.failures
            ],
        }


def check_case(item: tuple[int, str]) -> CaseResult:
    """Resolve one corpus line and compare it with its saved expectation."""
    number, line = item
    case_id = f"line {number}"
    try:
        case = json.loads(line)
        case_id = str(case.get("id", case_id))
        expect = case["expect"]
        config = config_from_dict(case["config"])
    except (json.JSONDecodeError, KeyError, AttributeError, TypeError) as error:
        return CaseResult(number, case_id, "invalid", f"not a corpus line: {error!r}")
    except VmLayoutError as error:
        return CaseResult(number, case_id, "invalid", f"config: {error}")
    try:
        actual: dict[str, Any] = resolved_to_json(resolve(config))
    except VmLayoutError as error:
        actual = {"error": error.kind}
    if not isinstance(expect, dict):
        return CaseResult(number, case_id, "invalid", "expect is not an object")
    if "error" in expect or "error" in actual:
        if expect.get("error") == actual.get("error"):
            return CaseResult(number, case_id, "same")
        return CaseResult(
            number,
            case_id,
            "error_changed",
            f"expected {expect.get('error', 'a layout')}, got {actual.get('error', 'a layout')}",
        )
    if expect == actual:
        return CaseResult(number, case_id, "same")
    try:
        changes = diff_layouts(check_saved_layout(expect, case_id), actual)
    except VmLayoutError as error:
        return CaseResult(number, case_id, "invalid", str(error))
    moved = [c for c in changes if c.change is Change.MOVED]
    if moved:
        first = moved[0]
        assert first.before is not None and first.after is not None
        return CaseResult(
            number,
            case_id,
            "moved",
            f"{len(moved)} moved, first {first.name}: {first.before} -> {first.after}",
        )
    detail = ", ".join(f"{c.name} {c.change.value}" for c in changes[:3]) or "fields differ"
    return CaseResult(number, case_id, "changed", detail)


def _numbered(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(lines, 1):
        if line.strip():
            yield number, line


def _progress(done: int, total: int, stream: TextIO) -> None:
    width = 40
    filled = width * done // max(total, 1)
    stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    stream.flush()


def check_corpus(
    path: str | Path, jobs: int | None = None, progress: bool | None = None, keep: int = 20
) -> CorpusSummary:
    """Check every line; keep the first `keep` failures (by line) for the report."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise VmLayoutError("invalid_input", f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise VmLayoutError("invalid_input", f"{path}: cannot read: {error}") from None
    jobs = jobs or os.cpu_count() or 1
    show = sys.stderr.isatty() if progress is None else progress
    items = list(_numbered(lines))
    summary = CorpusSummary()
    chunk = max(1, min(512, len(items) // (jobs * 8) or 1))

    def collect(results: Iterable[CaseResult]) -> None:
        for done, result in enumerate(results, 1):
            summary.counts[result.status] += 1
            if result.status != "same":
                summary.failures.append(result)
            if show and (done % 1000 == 0 or done == len(items)):
                _progress(done, len(items), sys.stderr)

    if jobs == 1 or len(items) < 2000:
        collect(map(check_case, items))
    else:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            collect(pool.imap_unordered(check_case, items, chunksize=chunk))
    if show:
        sys.stderr.write("\n")
    summary.failures.sort(key=lambda r: r.line)
    del summary.failures[keep:]
    return summary


def summary_to_table(summary: CorpusSummary) -> str:
    lines = [f"{summary.total} configs checked"]
    lines += [f"  {status:<14} {summary.counts[status]}" for status in STATUSES]
    if summary.failures:
        lines.append("")
        lines.append("first failures:")
        lines += [f"  {f.case_id} ({f.status}): {f.detail}" for f in summary.failures]
    return "\n".join(lines) + "\n"
