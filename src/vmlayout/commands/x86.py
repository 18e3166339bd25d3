"""x86 firmware views: full MTRR state and its memory-type check, E820, PCAT, UEFI blob."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from vmlayout.commands import (
    CommandGroups,
    add_config_arguments,
    resolve_for_view,
)
from vmlayout.commands.platform import (
    DEVICES,
    GIC,
    MTRR,
    PROCESSORS,
    UEFI,
    add_platform_arguments,
    int_argument,
)


def warn_ignored_mtrr_options(args: argparse.Namespace, config: Any) -> None:
    """A warning on stderr for an MTRR option the chosen policy ignores, so a silently
    ineffective flag is seen."""
    if config.platform.mtrr.policy != "reference":
        return
    for flag, dest in (
        ("--mtrr-count", "override_mtrr_count"),
        ("--mtrr-approximate", "override_mtrr_approximate"),
    ):
        if getattr(args, dest, None) is not None:
            sys.stderr.write(
                f"warning: {flag} has no effect with --mtrr-policy reference "
                "(the reference computes its own pairs)\n"
            )


def _mtrr_options(parser: argparse.ArgumentParser) -> None:
    add_platform_arguments(parser, (MTRR,))
    parser.add_argument("--format", choices=("table", "json"), default="table")


def register(groups: CommandGroups) -> None:
    state = groups.emit.add_parser(
        "mtrr-state",
        help="the complete initial MTRR state (DEF_TYPE, fixed and variable MTRRs)",
        description="Every MTRR MSR the chosen loader programs, with the variable pairs "
        "of the chosen policy.",
    )
    add_config_arguments(state)
    _mtrr_options(state)
    state.set_defaults(handler=_emit_state)

    check = groups.check.add_parser(
        "mtrr",
        help="effective memory types vs. the layout (exit 1 on violations)",
        description="Evaluate the MTRR state with the Intel SDM rules and check that "
        "every RAM byte is WB and every MMIO byte UC. Exit 0 when none is violated, 1 "
        "otherwise.",
    )
    add_config_arguments(check)
    _mtrr_options(check)
    check.set_defaults(handler=_check_mtrr)

    e820 = groups.emit.add_parser(
        "e820",
        help="the E820 map of a Linux direct boot",
        description="E820 entries for a direct-booted Linux; -o writes the packed 20-byte "
        "little-endian entries.",
    )
    add_config_arguments(e820)
    e820.add_argument(
        "--acpi-len", type=int_argument, default=0, help="ACPI table bytes (default 0)"
    )
    e820.add_argument("--smbios-len", type=int_argument, default=0, help="SMBIOS bytes (default 0)")
    e820.add_argument("--additional-pages", type=int_argument, default=0, help="extra low pages")
    e820.add_argument("--format", choices=("table", "json"), default="table")
    e820.add_argument("-o", "--output", metavar="FILE", help="write raw entries to FILE")
    e820.set_defaults(handler=_emit_e820)

    pcat = groups.emit.add_parser(
        "pcat",
        help="PCAT BIOS config items, E820 helper replies and the initial CMOS image",
        description="The layout-derived PCAT BIOS values and the full 256-byte initial "
        "CMOS image (defaults, memory bytes, checksums). Both chipset windows must exist "
        "and the first RAM range must be below 64 GiB.",
    )
    add_config_arguments(pcat)
    pcat.add_argument("--format", choices=("table", "json"), default="table")
    pcat.set_defaults(handler=_emit_pcat)

    uefi = groups.emit.add_parser(
        "uefi-config",
        help="the UEFI config blob",
        description="The UEFI config blob in the reference loader's structure order. "
        "Settings that are not layout default to reproducible values (zero GUID and "
        "entropy, 2 VPs, no SMT).",
    )
    add_config_arguments(uefi)
    uefi.add_argument("-o", "--output", required=True, metavar="FILE")
    uefi.add_argument(
        "--layout-only",
        action="store_true",
        help="only StructureCount, MemoryMap and MmioRanges",
    )
    add_platform_arguments(uefi, (PROCESSORS, DEVICES, GIC, UEFI))
    uefi.set_defaults(handler=_emit_uefi)


def _x86(args: argparse.Namespace, view: str = "mtrr") -> Any:
    return resolve_for_view(args, view)


def _state(args: argparse.Namespace, resolved: Any) -> Any:
    from vmlayout.artifacts import mtrr_state_of

    warn_ignored_mtrr_options(args, resolved.config)
    return mtrr_state_of(resolved)


def mtrr_explanation(state: Any, width: int) -> list[str]:
    """The variable pairs decoded (type and what they really cover) and the lint
    findings, as text lines."""
    from vmlayout.firmware.memtype import decode_variable_pairs, lint_mtrr_state

    lines = ["variable pairs (as the hardware reads them):"]
    lines += [f"  {pair.describe()}" for pair in decode_variable_pairs(state, width)]
    findings = lint_mtrr_state(state, width)
    lines += [f"lint: {finding}" for finding in findings]
    return lines


def mtrr_explanation_json(state: Any, width: int) -> dict[str, Any]:
    from vmlayout.firmware.memtype import decode_variable_pairs, lint_mtrr_state

    return {
        "pairs": [
            {
                "index": p.index,
                "base": p.base,
                "mask": p.mask,
                "valid": p.valid,
                "type": p.type_name,
                "covers": [[r.start, r.end] for r in p.covers],
                "ignored_base_bits": p.ignored_base_bits,
            }
            for p in decode_variable_pairs(state, width)
        ],
        "lint": lint_mtrr_state(state, width),
    }


def _emit_state(args: argparse.Namespace) -> int:
    from vmlayout.firmware.memtype import msr_name
    from vmlayout.ranges import format_address

    resolved = _x86(args)
    state = _state(args, resolved)
    writes = state.to_msrs()
    width = resolved.config.physical_address_size
    if args.format == "json":
        mtrr = resolved.config.platform.mtrr
        doc = {
            "loader": mtrr.loader,
            "policy": mtrr.policy,
            "msrs": [[w.msr, w.value] for w in writes],
            **mtrr_explanation_json(state, width),
        }
        sys.stdout.write(json.dumps(doc) + "\n")
        return 0
    sys.stdout.write("msr     register        value\n")
    for w in writes:
        sys.stdout.write(f"{w.msr:#06x}  {msr_name(w.msr):<14}  {format_address(w.value)}\n")
    sys.stdout.writelines(f"{line}\n" for line in mtrr_explanation(state, width))
    return 0


def _check_mtrr(args: argparse.Namespace) -> int:
    from vmlayout.firmware.memtype import (
        check_layout,
        effective_intervals,
        layout_expectations,
        type_name,
    )
    from vmlayout.ranges import format_address, readable_size

    resolved = _x86(args)
    state = _state(args, resolved)
    width = resolved.config.physical_address_size
    intervals = effective_intervals(state, width)
    violations = check_layout(intervals, layout_expectations(resolved))
    if args.format == "json":
        doc = {
            **mtrr_explanation_json(state, width),
            "intervals": [[i.range.start, i.range.end, i.name] for i in intervals],
            "violations": [
                {
                    "range": v.name,
                    "start": v.range.start,
                    "end": v.range.end,
                    "expected": type_name(v.expected),
                    "actual": type_name(v.actual),
                }
                for v in violations
            ],
        }
        sys.stdout.write(json.dumps(doc) + "\n")
    else:
        mtrr = resolved.config.platform.mtrr
        sys.stdout.write(f"effective memory types ({mtrr.policy} MTRRs, {mtrr.loader}):\n")
        for i in intervals:
            sys.stdout.write(
                f"  {format_address(i.range.start):>22} - {format_address(i.range.end):<22} "
                f"{readable_size(i.range.size):>10}  {i.name}\n"
            )
        sys.stdout.writelines(f"{line}\n" for line in mtrr_explanation(state, width))
        if violations:
            sys.stdout.write(f"{len(violations)} violation(s):\n")
            sys.stdout.writelines(f"  {v.describe()}\n" for v in violations)
        else:
            sys.stdout.write("no violations: all RAM is WB and all MMIO UC\n")
    return 1 if violations else 0


def _emit_e820(args: argparse.Namespace) -> int:
    from vmlayout.firmware.e820 import build_e820, e820_to_json, encode_e820
    from vmlayout.output import write_atomic
    from vmlayout.ranges import format_address, format_size

    resolved = _x86(args, "e820")
    entries = build_e820(
        resolved.memory_layout, args.acpi_len, args.smbios_len, args.additional_pages
    )
    if args.output:
        write_atomic(args.output, encode_e820(entries))
    if args.format == "json":
        sys.stdout.write(json.dumps(e820_to_json(entries)) + "\n")
    else:
        for n, e in enumerate(entries):
            sys.stdout.write(
                f"{n:>3}  {format_address(e.addr):>22}  {format_address(e.end):>22}  "
                f"{format_size(e.size):>10}  {e.type} {e.type_name}\n"
            )
    return 0


def _emit_pcat(args: argparse.Namespace) -> int:
    from vmlayout.firmware.pcat import PcatConfig

    resolved = _x86(args, "pcat")
    pcat = PcatConfig(resolved.memory_layout, resolved.chipset)
    if args.format == "json":
        sys.stdout.write(json.dumps(pcat.to_json()) + "\n")
        return 0
    for item, value in pcat.items().items():
        sys.stdout.write(f"{item.value:#04x}  {item.name:<28}  {value:#x} ({value})\n")
    for entry, replies in enumerate(pcat.e820_helper_replies()):
        shown = " / ".join(f"{v:#x}" for v in replies)
        sys.stdout.write(f"0x22  E820_ENTRY e820_entry={entry:<13}  {shown}\n")
    image = pcat.cmos_image()
    sys.stdout.write("CMOS (initial image; 0x15..0x18 memory, 0x2E/0x2F and 0x3E/0x3F checksums)\n")
    for row in range(0, len(image), 16):
        sys.stdout.write(f"  {row:02x}: {image[row : row + 16].hex(' ')}\n")
    return 0


def _emit_uefi(args: argparse.Namespace) -> int:
    from vmlayout.firmware.uefi import encode_layout_blob, uefi_blob_of
    from vmlayout.output import write_atomic

    resolved = resolve_for_view(args, "uefi")
    if args.layout_only:
        blob = encode_layout_blob(resolved.memory_layout.ram, resolved.chipset)
    else:
        blob = uefi_blob_of(resolved)
    write_atomic(args.output, blob)
    sys.stdout.write(f"wrote {len(blob)} bytes to {args.output}\n")
    return 0
