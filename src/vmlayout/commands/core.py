"""`resolve`, `emit mtrr`: the foundation's commands."""

from __future__ import annotations

import argparse
import json
import sys

from vmlayout.commands import (
    CommandGroups,
    add_config_arguments,
    resolve_for_view,
    resolve_from_args,
)


def register(groups: CommandGroups) -> None:
    resolve = groups.top.add_parser(
        "resolve",
        help="resolve a VM config to guest physical addresses",
        description="Resolve CONFIG (or the built-in default VM) and print every placed "
        "range and the chipset MMIO windows.",
    )
    add_config_arguments(resolve)
    resolve.add_argument("--format", choices=("table", "json"), default="table")
    resolve.add_argument(
        "--gaps",
        action="store_true",
        help="also list the gaps between ranges (with why each exists) and the "
        "architectural zones (json: adds `gaps` and `zones`)",
    )
    resolve.set_defaults(handler=_resolve)

    mtrr = groups.emit.add_parser(
        "mtrr",
        help="variable MTRRs as the reference VMM programs them",
        description="Variable MTRR (MSR, value) pairs computed from the resolved layout.",
    )
    add_config_arguments(mtrr)
    mtrr.add_argument("--format", choices=("table", "json"), default="table")
    mtrr.add_argument(
        "--variant",
        choices=("head", "pr3550"),
        default="head",
        help="reference algorithm variant for an empty high window (default: head)",
    )
    mtrr.set_defaults(handler=_emit_mtrr)

    inspect = groups.top.add_parser(
        "inspect",
        help="decode an artifact (or a directory of them) and print what it describes",
        description="Recognise PATH by its content and decode it back to ranges.",
    )
    inspect.add_argument("path", metavar="PATH", help="an artifact file or directory")
    inspect.add_argument("--format", choices=("table", "json"), default="table")
    inspect.add_argument(
        "--strict",
        action="store_true",
        help="for an `emit all` directory: count memory-type findings as disagreements",
    )
    inspect.set_defaults(handler=_inspect)


def _resolve(args: argparse.Namespace) -> int:
    from vmlayout.report import resolved_to_json, resolved_to_table

    resolved = resolve_from_args(args)
    extra: dict[str, object] = {}
    lines: list[str] = []
    if args.gaps:
        from vmlayout.inspect.where import gaps_to_json, gaps_to_lines, layout_gaps
        from vmlayout.zones import config_zones

        gaps, blocks = layout_gaps(resolved.config), config_zones(resolved.config)
        extra, lines = gaps_to_json(gaps, blocks), gaps_to_lines(gaps, blocks)
    if args.format == "json":
        sys.stdout.write(json.dumps({**resolved_to_json(resolved), **extra}) + "\n")
    else:
        sys.stdout.write(resolved_to_table(resolved) + "".join(f"{x}\n" for x in lines))
    return 0


def _emit_mtrr(args: argparse.Namespace) -> int:
    from vmlayout.firmware.mtrr import MtrrVariant, compute_variable_mtrrs
    from vmlayout.ranges import format_address

    resolved = resolve_for_view(args, "mtrr")
    writes = compute_variable_mtrrs(
        resolved.memory_layout,
        resolved.config.physical_address_size,
        resolved.chipset,
        MtrrVariant(args.variant),
    )
    if args.format == "json":
        sys.stdout.write(json.dumps({"mtrrs": [[w.msr, w.value] for w in writes]}) + "\n")
        return 0
    sys.stdout.write("msr     register        value\n")
    for w in writes:
        n, is_mask = divmod(w.msr - 0x200, 2)
        name = f"PHYS{'MASK' if is_mask else 'BASE'}{n}"
        sys.stdout.write(f"{w.msr:#06x}  {name:<14}  {format_address(w.value)}\n")
    from vmlayout.commands.x86 import mtrr_explanation
    from vmlayout.firmware.memtype import DEF_TYPE_VALUE, MtrrState

    state = MtrrState.from_msrs(writes)
    state = MtrrState(DEF_TYPE_VALUE, (), state.variable)  # MTRRs on, default UC
    width = resolved.config.physical_address_size
    sys.stdout.writelines(f"{line}\n" for line in mtrr_explanation(state, width))
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from pathlib import Path

    from vmlayout.inspect.dispatch import inspect_path

    text, status = inspect_path(Path(args.path), args.format, args.strict)
    sys.stdout.write(text)
    return status
