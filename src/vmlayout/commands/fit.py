"""`vmlayout fit`: right-size every root complex's dynamic windows for its devices."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from vmlayout.commands import CommandGroups

if TYPE_CHECKING:
    from vmlayout.policy import VmConfig


def register(groups: CommandGroups) -> None:
    fit = groups.top.add_parser(
        "fit",
        help="smallest root-complex windows that hold every device's BARs",
        description="Compute the smallest dynamic low (2 MiB steps) and high (1 GiB steps) "
        "window of every root complex that lists devices, such that the whole config "
        "resolves and every BAR is assigned; print a before/after table and whether the "
        "fitted layout fits the host's physical address width. Exit 2 when no size works.",
    )
    fit.add_argument("config", metavar="CONFIG", help="TOML or JSON config file")
    fit.add_argument(
        "-o",
        "--output",
        metavar="FITTED",
        help="write the fitted config here (same format as CONFIG; only window sizes change, "
        "and chipset_low_mmio_size when fit raises it)",
    )
    fit.add_argument(
        "--host-phys-bits",
        type=int,
        metavar="N",
        help="host physical address width to check against (default: the config's "
        "physical_address_size)",
    )
    fit.set_defaults(handler=_fit)


def _fit(args: argparse.Namespace) -> int:
    from pathlib import Path

    from vmlayout.config import config_from_dict, parse_config_text
    from vmlayout.errors import VmLayoutError
    from vmlayout.inputs import read_text
    from vmlayout.output import write_atomic
    from vmlayout.pci_layout.fit import fit_config
    from vmlayout.ranges import format_address, format_size, readable_size

    if args.host_phys_bits is not None and not 1 <= args.host_phys_bits <= 63:
        raise VmLayoutError(
            "invalid_argument", f"--host-phys-bits: {args.host_phys_bits} is out of range 1..63"
        )
    # Read once: `-o` edits this very text (and standard input cannot be read twice).
    text = read_text(Path(args.config), "invalid_config")
    data, fmt = parse_config_text(Path(args.config), text)
    config = config_from_dict(data)
    if not any(rc.devices for rc in config.pcie_root_complexes):
        raise VmLayoutError(
            "fit_impossible", f"{args.config}: no root complex lists devices; nothing to fit"
        )
    result = fit_config(config, args.host_phys_bits)

    rows = [("root complex", "window", "before", "after", "pool", "alignment", "placed at")]
    for w in result.windows:
        rows.append(
            (
                w.rc,
                w.window,
                format_size(w.before),
                format_size(w.after),
                readable_size(w.pool_size) if w.pool_size else "-",
                format_size(w.pool_alignment),
                f"{format_address(w.placed.start)}..{format_address(w.placed.end)}",
            )
        )
    if result.chipset_low_after != result.chipset_low_before:
        rows.append(
            (
                "chipset",
                "low",
                format_size(result.chipset_low_before),
                format_size(result.chipset_low_after),
                "-",
                "-",
                "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for i, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    top = result.layout_top
    verdict = "fits" if result.fits_host else "does NOT fit"
    lines.append("")
    lines.append(
        f"fitted layout top {format_address(top)} {verdict} a {result.host_bits}-bit host "
        f"physical address width (limit {format_address(1 << result.host_bits)})"
    )
    sys.stdout.write("\n".join(lines) + "\n")
    if not result.fits_host:
        raise result.width_error()
    if args.output is not None:
        write_atomic(args.output, fitted_text(args.config, text, data, fmt, config, result.config))
    return 0


def fitted_text(
    where: str, text: str, data: Any, fmt: str, original: VmConfig, fitted: VmConfig
) -> str:
    """CONFIG's text (parsed as `data`, in `fmt`) with only its window sizes changed (same
    format; TOML keeps its comments where the size lines can be edited in place).
    `data` is edited."""
    import json

    from vmlayout.config import config_from_dict
    from vmlayout.errors import VmLayoutError
    from vmlayout.inputs import parse_toml

    if fmt == "json":
        _set_sizes(data, fitted)
        return json.dumps(data, indent=2) + "\n"
    chipset_changed = original.chipset_low_mmio_size != fitted.chipset_low_mmio_size
    edited = _edit_toml(text, fitted, chipset_changed)
    if edited is not None:
        # The edit is line based; it stands only if it reads back as the fitted config
        # (a shape it does not know, e.g. a multi-line string, falls back to a rewrite).
        try:
            if config_from_dict(parse_toml(edited, where)) == fitted:
                return edited
        except VmLayoutError:
            pass
    _set_sizes(data, fitted)
    return toml_dumps(data)


def _size_value(old: object, size: int) -> object:
    from vmlayout.ranges import format_size

    return size if isinstance(old, int) and not isinstance(old, bool) else format_size(size)


def _set_sizes(data: dict[str, Any], fitted: Any) -> None:
    from vmlayout.config import config_from_dict
    from vmlayout.policy import DynamicMmio

    # A raised chipset low size is written whether or not CONFIG sets it: the default
    # would bring back the size the fitted windows do not fit.
    old = data.get("chipset_low_mmio_size")
    if old is not None or config_from_dict(data).chipset_low_mmio_size != (
        fitted.chipset_low_mmio_size
    ):
        data["chipset_low_mmio_size"] = _size_value(old, fitted.chipset_low_mmio_size)
    for rc_data, rc in zip(
        data.get("pcie_root_complexes", []), fitted.pcie_root_complexes, strict=False
    ):
        for key in ("low_mmio", "high_mmio"):
            window = getattr(rc, key)
            if not isinstance(window, DynamicMmio):
                continue
            old = rc_data.get(key)
            if isinstance(old, dict):
                old["size"] = _size_value(old.get("size"), window.size)
            elif old is not None:
                rc_data[key] = _size_value(old, window.size)
            else:
                rc_data[key] = {"size": _size_value(None, window.size)}


#: A TOML value on one line: an inline table, a basic or literal string, a bare word.
_VALUE = r"(\{[^}]*\}|\"(?:[^\"\\]|\\.)*\"|'[^']*'|[0-9A-Za-z_+.-]+)"


def _key(name: str) -> str:
    """A TOML key as written: bare, "basic" or 'literal'."""
    return rf"(?:{name}|\"{name}\"|'{name}')"


def _edit_toml(text: str, fitted: Any, chipset_changed: bool) -> str | None:
    """Rewrite the window sizes of each `[[pcie_root_complexes]]` table in place (and
    `chipset_low_mmio_size`, when `fit` raised it); None when the tables cannot be told
    apart (root complexes written as an inline array). Each size may be written as
    `low_mmio = "…"`, `low_mmio = { size = … }`, `low_mmio.size = …` or under a
    `[pcie_root_complexes.low_mmio]` sub-table; comments after a value are kept."""
    import re

    from vmlayout.policy import DynamicMmio
    from vmlayout.ranges import format_size

    lines = text.splitlines(keepends=True)
    rcs = _key("pcie_root_complexes")
    header = re.compile(rf"^\s*\[\[\s*{rcs}\s*\]\]\s*(#.*)?$")
    sub_table = re.compile(rf"^\s*\[{{1,2}}\s*{rcs}\s*\.\s*([^\]]+?)\s*\]")
    any_header = re.compile(r"^\s*\[")
    if chipset_changed:
        _edit_toml_chipset(lines, format_size(fitted.chipset_low_mmio_size))
    starts = [i for i, line in enumerate(lines) if header.match(line)]
    if len(starts) != len(fitted.pcie_root_complexes):
        return None
    for rc, start in reversed(list(zip(fitted.pcie_root_complexes, starts, strict=True))):
        end = next(
            (
                j
                for j in range(start + 1, len(lines))
                if any_header.match(lines[j]) and not sub_table.match(lines[j])
            ),
            len(lines),
        )
        for key in ("high_mmio", "low_mmio"):
            window = getattr(rc, key)
            if isinstance(window, DynamicMmio) and not _set_toml_size(
                lines, start + 1, end, key, format_size(window.size), sub_table
            ):
                lines.insert(start + 1, f'{key} = {{ size = "{format_size(window.size)}" }}\n')
    return "".join(lines)


def _set_toml_size(
    lines: list[str], begin: int, end: int, key: str, size: str, sub_table: Any
) -> bool:
    """Set the size of window `key` in lines `begin..end` of one root complex's table;
    False when the table does not set it (the window takes its default size)."""
    import re

    forms = [  # in the root complex's own table ...
        re.compile(rf"^(\s*{_key(key)}\s*=\s*){_VALUE}(.*)$", re.DOTALL),
        re.compile(rf"^(\s*{_key(key)}\s*\.\s*{_key('size')}\s*=\s*){_VALUE}(.*)$", re.DOTALL),
    ]
    in_sub = re.compile(rf"^(\s*{_key('size')}\s*=\s*){_VALUE}(.*)$", re.DOTALL)
    table: str | None = None  # the sub-table the line is in (None: the root complex's)
    for j in range(begin, end):
        opened = sub_table.match(lines[j])
        if opened is not None:
            table = opened.group(1).replace('"', "").replace("'", "").replace(" ", "")
            continue
        candidates = forms if table is None else [in_sub] if table == key else []
        for form in candidates:
            match = form.match(lines[j])
            if match:
                old = match.group(2)
                new = f'{{ size = "{size}" }}' if old.startswith("{") else f'"{size}"'
                lines[j] = match.group(1) + new + match.group(3)
                return True
    return False


def _edit_toml_chipset(lines: list[str], size: str) -> None:
    """Set the top-level `chipset_low_mmio_size` line, or add one before the first table
    (and the comments above it) when CONFIG relies on the default."""
    import re

    first_table = next(
        (i for i, line in enumerate(lines) if line.lstrip().startswith("[")), len(lines)
    )
    key = re.compile(rf"^(\s*{_key('chipset_low_mmio_size')}\s*=\s*){_VALUE}(.*)$", re.DOTALL)
    for j in range(first_table):
        match = key.match(lines[j])
        if match:
            lines[j] = f'{match.group(1)}"{size}"{match.group(3)}'
            return
    at = first_table
    while at > 0 and (not lines[at - 1].strip() or lines[at - 1].lstrip().startswith("#")):
        at -= 1
    lines.insert(at, f'chipset_low_mmio_size = "{size}"\n')


def toml_dumps(data: dict[str, Any], prefix: str = "") -> str:
    """A plain TOML writer for config data (scalars, lists of scalars, tables, arrays of
    tables); used only when CONFIG's text cannot be edited in place."""
    import json

    def scalar(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, str):
            return json.dumps(value)
        if isinstance(value, list):
            return "[" + ", ".join(scalar(v) for v in value) + "]"
        if isinstance(value, dict):
            return "{ " + ", ".join(f"{k} = {scalar(v)}" for k, v in value.items()) + " }"
        raise TypeError(f"cannot write {type(value).__name__} as TOML")

    out = []
    nested = []
    for key, value in data.items():
        if value is None:
            continue
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            nested.append((key, value))
        else:
            out.append(f"{key} = {scalar(value)}\n")
    for key, tables in nested:
        for table in tables:
            name = f"{prefix}{key}"
            out.append(f"\n[[{name}]]\n")
            out.append(toml_dumps(table, f"{name}."))
    return "".join(out)
