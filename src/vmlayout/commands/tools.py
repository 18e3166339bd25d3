"""`diff` and `explain`: tools for when addresses surprise someone."""

from __future__ import annotations

import argparse
import json
import sys

from vmlayout.arch import ARCH_NAMES
from vmlayout.commands import (
    CommandGroups,
    add_config_arguments,
    load_config_from_args,
    resolve_from_args,
)
from vmlayout.commands.platform import ALL_GROUPS, GIC, PROCESSORS, X86, add_platform_arguments

#: The option groups that move architectural zones (VP count, IO-APIC, GIC).
ZONE_GROUPS = (PROCESSORS, X86, GIC)


def register(groups: CommandGroups) -> None:
    diff = groups.top.add_parser(
        "diff",
        help="compatibility check: can a guest be kept across a config change",
        description="Compare two configs (or saved `resolve --format json` outputs) under "
        "the compatibility model for keeping a guest across a change (hibernation, live "
        "migration, VMM upgrade): a range present in both that moved, shrank or vanished, "
        "and any change to RAM, is a break; a window grown in place and new ranges are "
        "additive. PCI assignments are compared too: every BAR, VF BAR and bridge window "
        "by the name `resolve` prints (rc0 03:00.0 BAR1), and a bridge whose bus numbers "
        "changed is a break. Exit 1 on any break (with --strict, on any change). With "
        "--corpus, check a JSON Lines file of {id, config, expect} against saved layouts "
        "in parallel (exit 1 unless every line is `same` or `additive`; with --strict, "
        "unless every line is `same`); --bless writes the expectations.",
    )
    diff.add_argument("before", nargs="?", metavar="A", help="config or saved layout JSON")
    diff.add_argument("after", nargs="?", metavar="B", help="config or saved layout JSON")
    diff.add_argument("--arch", choices=ARCH_NAMES, help="override configs' arch")
    diff.add_argument("--format", choices=("table", "json"), default="table")
    diff.add_argument(
        "--strict", action="store_true", help="every change breaks, additive ones included"
    )
    diff.add_argument("--corpus", metavar="FILE.jsonl", help="check many configs at once")
    diff.add_argument(
        "--bless",
        action="store_true",
        help="with --corpus: write (or refresh) every line's expect from the current resolver",
    )
    diff.add_argument(
        "--max", type=int, default=None, metavar="N", help="with --corpus: list at most N failures"
    )
    diff.add_argument(
        "--jobs", type=int, default=None, help="worker processes (default and cap: CPU count)"
    )
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
    add_platform_arguments(explain, ZONE_GROUPS)
    explain.set_defaults(handler=_explain)

    where = groups.top.add_parser(
        "where",
        help="what lives at a guest physical address",
        description="The range holding ADDRESS (under the name `resolve` prints) or the "
        "gap it falls in and why the allocator left it; the architectural zone there "
        "(LAPIC, IO-APIC, GIC distributor, GICR of VP n, ITS or v2m, UART n, ...); "
        "everything holding it, innermost first (a BAR, its bridge windows, the "
        "root-complex window). The processor and platform options override the config's.",
    )
    where.add_argument("address", metavar="ADDRESS", help="e.g. 0xfee0_0000")
    add_config_arguments(where)
    where.add_argument("--format", choices=("table", "json"), default="table")
    add_platform_arguments(where, ALL_GROUPS)
    where.set_defaults(handler=_where)

    picture = groups.top.add_parser(
        "map",
        help="draw the address space (SVG or PNG)",
        description="Draw one band per kind of range on a log-scaled, broken address axis, "
        "so the 4 GiB hole and TiB-scale RAM are both readable.",
    )
    add_config_arguments(picture)
    picture.add_argument("-o", "--output", required=True, metavar="FILE", help="map.svg or map.png")
    add_platform_arguments(picture, ZONE_GROUPS)
    picture.set_defaults(handler=_map)


def _diff(args: argparse.Namespace) -> int:
    from vmlayout.errors import VmLayoutError

    if args.jobs is not None and args.jobs < 1:
        raise VmLayoutError("usage", "--jobs: must be at least 1")
    if args.max is not None and args.max < 0:
        raise VmLayoutError("usage", "--max: must not be negative")
    if args.corpus:
        if args.before or args.after:
            raise VmLayoutError("usage", "diff: give either A and B or --corpus, not both")
        from vmlayout.inspect.corpus import bless_corpus, check_corpus, summary_to_table

        if args.bless:
            text, invalid = bless_corpus(args.corpus, args.jobs)
            sys.stdout.write(text)
            return 1 if invalid else 0
        summary = check_corpus(args.corpus, args.jobs, strict=args.strict, keep=args.max)
        if args.format == "json":
            sys.stdout.write(json.dumps(summary.to_json()) + "\n")
        else:
            sys.stdout.write(summary_to_table(summary))
        return 0 if summary.ok else 1
    for flag in ("bless", "max"):
        if getattr(args, flag) not in (None, False):
            raise VmLayoutError("usage", f"--{flag}: only with --corpus")
    if not (args.before and args.after):
        raise VmLayoutError("usage", "diff: needs two layouts A and B (or --corpus FILE)")
    from vmlayout.inspect.diff import (
        changes_to_table,
        diff_layouts,
        is_compatible,
        load_side,
        verdict_to_json,
    )

    before, before_config = load_side(args.before, args.arch, "A")
    after, after_config = load_side(args.after, args.arch, "B")
    configs = None
    if before_config is not None and after_config is not None:
        configs = (before_config, after_config)
    changes = diff_layouts(before, after, args.strict, configs)
    if args.format == "json":
        sys.stdout.write(json.dumps(verdict_to_json(changes, args.strict)) + "\n")
    else:
        sys.stdout.write(changes_to_table(changes, args.strict))
        if configs is None:
            sys.stdout.write(
                "(a saved layout holds no firmware-only settings: numa_node, "
                "preserve_bars, numa_distances, processors and platform were not compared)\n"
            )
    return 0 if is_compatible(changes) else 1


def _where(args: argparse.Namespace) -> int:
    from vmlayout.inspect.where import parse_address, where

    address = parse_address(args.address)
    config = load_config_from_args(args)
    result = where(address, config)
    if args.format == "json":
        sys.stdout.write(json.dumps(result.to_json()) + "\n")
    else:
        sys.stdout.write(result.to_text())
    return 0


def _explain(args: argparse.Namespace) -> int:
    from vmlayout.inspect.explain import explain, explain_pci_name
    from vmlayout.inspect.where import looks_like_address

    if looks_like_address(args.name):  # `explain 0xfee0_0000` answers as `where`
        args.address = args.name
        return _where(args)
    config = load_config_from_args(args)
    bar = explain_pci_name(args.name, config)
    if bar is not None:  # `rc0 3:0.0 bar1`, `rc0 0000:03:00.0 BAR1`, `rc0 00:00.0 pref`
        text = json.dumps(bar.to_json()) + "\n" if args.format == "json" else bar.to_text()
        sys.stdout.write(text)
        return 0
    result = explain(args.name, config)
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
