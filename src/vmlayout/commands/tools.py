"""`diff` and `explain`: tools for when addresses surprise someone."""

from __future__ import annotations

import argparse
import json
import sys

from vmlayout.commands import (
    CommandGroups,
    add_config_arguments,
    load_config_from_args,
    resolve_from_args,
)


def register(groups: CommandGroups) -> None:
    diff = groups.top.add_parser(
        "diff",
        help="compatibility check: which ranges moved between two layouts",
        description="Compare two configs (or saved `resolve --format json` outputs): ranges "
        "that moved, resized, appeared or vanished. Exit 1 if a range present in both moved. "
        "With --corpus, check a JSON Lines file of {id, config, expect} against saved "
        "layouts in parallel; exit 1 on any difference.",
    )
    diff.add_argument("before", nargs="?", metavar="A", help="config or saved layout JSON")
    diff.add_argument("after", nargs="?", metavar="B", help="config or saved layout JSON")
    diff.add_argument("--arch", choices=("x86_64", "aarch64"), help="override configs' arch")
    diff.add_argument("--format", choices=("table", "json"), default="table")
    diff.add_argument("--corpus", metavar="FILE.jsonl", help="check many configs at once")
    diff.add_argument("--jobs", type=int, default=None, help="worker processes (default: cores)")
    diff.set_defaults(handler=_diff)

    explain = groups.top.add_parser(
        "explain",
        help="why a range sits where it does",
        description="Show the phase, placement class, alignment, turn and search window "
        "that put range NAME (a placed name such as ram0 or pcie-rc0-low-mmio) where it is.",
    )
    explain.add_argument("name", metavar="NAME")
    add_config_arguments(explain)
    explain.add_argument("--format", choices=("table", "json"), default="table")
    explain.set_defaults(handler=_explain)

    picture = groups.top.add_parser(
        "map",
        help="draw the address space (SVG or PNG)",
        description="Draw one band per kind of range on a log-scaled, broken address axis, "
        "so the 4 GiB hole and TiB-scale RAM are both readable.",
    )
    add_config_arguments(picture)
    picture.add_argument("-o", "--output", required=True, metavar="FILE", help="map.svg or map.png")
    picture.set_defaults(handler=_map)


def _diff(args: argparse.Namespace) -> int:
    from vmlayout.errors import VmLayoutError

    if args.corpus:
        if args.before or args.after:
            raise VmLayoutError("usage", "diff: give either A and B or --corpus, not both")
        from vmlayout.inspect.corpus import check_corpus, summary_to_table

        if args.jobs is not None and args.jobs < 1:
            raise VmLayoutError("usage", "--jobs: must be at least 1")
        summary = check_corpus(args.corpus, args.jobs)
        if args.format == "json":
            sys.stdout.write(json.dumps(summary.to_json()) + "\n")
        else:
            sys.stdout.write(summary_to_table(summary))
        return 0 if summary.ok else 1
    if not (args.before and args.after):
        raise VmLayoutError("usage", "diff: needs two layouts A and B (or --corpus FILE)")
    from vmlayout.inspect.diff import Change, changes_to_table, diff_layouts, load_layout

    changes = diff_layouts(load_layout(args.before, args.arch), load_layout(args.after, args.arch))
    if args.format == "json":
        sys.stdout.write(json.dumps({"changes": [c.to_json() for c in changes]}) + "\n")
    else:
        sys.stdout.write(changes_to_table(changes))
    return 1 if any(c.change is Change.MOVED for c in changes) else 0


def _explain(args: argparse.Namespace) -> int:
    from vmlayout.inspect.explain import explain

    result = explain(args.name, load_config_from_args(args))
    if args.format == "json":
        sys.stdout.write(json.dumps(result.to_json()) + "\n")
    else:
        sys.stdout.write(result.to_text())
    return 0


def _map(args: argparse.Namespace) -> int:
    from pathlib import Path

    from vmlayout.inspect.picture import render
    from vmlayout.output import write_atomic

    path = Path(args.output)
    write_atomic(path, render(resolve_from_args(args), path))
    return 0
