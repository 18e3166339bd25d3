"""`vmlayout map`: a picture of the guest physical address space.

Address spaces span KiB-sized IOMMU pages to TiB of RAM with a 4 GiB hole in between, so
a linear axis shows nothing. The axis here is piecewise: every stretch between two range
boundaries gets a height growing with the logarithm of its size, and long unused
stretches are drawn as breaks. One scene description feeds both renderers (SVG by hand,
PNG through Pillow), so the two pictures cannot disagree.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from xml.sax.saxutils import escape

from vmlayout.allocator import PlacedRange, PlacedRangeKind, extent_name
from vmlayout.errors import VmLayoutError
from vmlayout.policy import ResolvedLayout
from vmlayout.ranges import format_address, format_size
from vmlayout.zones import ZoneBlock, config_zones

BANDS = (
    "RAM",
    "chipset MMIO",
    "zones",
    "PCIe ECAM",
    "PCIe windows",
    "bridge windows",
    "PCI BARs",
    "other MMIO",
    "VTL2",
    "reserved",
)
_VNODE_COLOURS = ("#4e79a7", "#76b7b2", "#59a14f", "#8cd17d", "#2f6690", "#9ecae9")
_BAND_COLOURS = {
    "chipset MMIO": "#e15759",
    "zones": "#d4a6c8",
    "PCIe ECAM": "#f28e2b",
    "PCIe windows": "#edc948",
    "bridge windows": "#f1ce63",
    "PCI BARs": "#ff9da7",
    "other MMIO": "#b07aa1",
    "VTL2": "#9c755f",
    "reserved": "#bab0ac",
}
AXIS_WIDTH = 150
BAND_WIDTH = 190
TOP_MARGIN = 50
BREAK_HEIGHT = 18
MIN_HEIGHT = 22
LOG_SCALE = 7.0
#: Horizontal step per nesting level in the bridge-window and zone columns.
NEST_INDENT = 10
#: Tallest PNG drawn (many decoders stop at 32767 or 65535 rows).
MAX_PNG_HEIGHT = 32767


@dataclass(frozen=True, slots=True)
class Box:
    x: int
    y: int
    width: int
    height: int
    fill: str
    lines: tuple[str, ...]
    band: str = ""
    #: Height free for text above the first box drawn inside this one (None: all).
    text_room: int | None = None


@dataclass(frozen=True, slots=True)
class Label:
    x: int
    y: int
    text: str
    anchor: str = "start"  # or "end"


@dataclass(frozen=True, slots=True)
class Scene:
    width: int
    height: int
    boxes: tuple[Box, ...]
    labels: tuple[Label, ...]
    breaks: tuple[int, ...]  # y positions of axis breaks
    #: The columns drawn, left to right (only bands that hold a box).
    bands: tuple[str, ...] = ()


def band_of(tag: str, kind: PlacedRangeKind) -> str:
    if kind is PlacedRangeKind.RAM:
        return "RAM"
    if kind is PlacedRangeKind.RESERVED:
        return "reserved"
    if tag.startswith("chipset-"):
        return "chipset MMIO"
    if tag.startswith("vtl2"):
        return "VTL2"
    if tag.endswith("-ecam"):
        return "PCIe ECAM"
    if tag.startswith("pcie-") and (tag.endswith("-low-mmio") or tag.endswith("-high-mmio")):
        return "PCIe windows"
    return "other MMIO"


def segment_height(size: int, used: bool) -> int:
    """A layout range's height: strictly growing with its size (log-scaled), so a
    bigger range is never drawn shorter; an unused stretch is a fixed-height break."""
    if not used:
        return BREAK_HEIGHT
    return MIN_HEIGHT + int(LOG_SCALE * max(0.0, math.log2(size / 0x1000)))


@dataclass(frozen=True, slots=True)
class _Axis:
    """Address -> y. Only the layout's own ranges (disjoint) and the gaps between them
    are axis segments, each one `segment_height` tall, so every range's box height
    depends on its size alone; what nests inside a range (BARs, bridge windows,
    zones) is placed linearly within it."""

    points: tuple[int, ...]
    ys: tuple[int, ...]
    #: The layout's range boundaries (the axis labels).
    labelled: tuple[int, ...]

    def y(self, address: int) -> int:
        i = bisect.bisect_right(self.points, address) - 1
        if i < 0:
            return self.ys[0]
        if i >= len(self.points) - 1:
            return self.ys[-1]
        a, b = self.points[i], self.points[i + 1]
        return self.ys[i] - (self.ys[i] - self.ys[i + 1]) * (address - a) // (b - a)


def _axis(placed: list[PlacedRange], inner: list[int]) -> tuple[_Axis, list[int], int]:
    """(axis, y of each break, total height). Each layout range (they are disjoint) or
    gap between them is one `segment_height` tall; inside a range, the boundaries of
    what nests in it (`inner`, sorted) split its height by the logarithm of each
    piece's size, so a 4 KiB BAR in a 2 TiB window stays readable."""
    points = sorted({0, *(p.range.start for p in placed), *(p.range.end for p in placed)})
    if len(points) < 2:
        points.append(0x1000)
    used = {(p.range.start, p.range.end) for p in placed}
    heights = [segment_height(b - a, (a, b) in used) for a, b in pairwise(points)]
    total = sum(heights)
    # y grows downwards in both renderers; draw high addresses at the top.
    y = TOP_MARGIN + total
    refined, ys, breaks = [points[0]], [y], []
    for (a, b), h in zip(pairwise(points), heights, strict=True):
        if (a, b) not in used:
            breaks.append(y - h // 2)
            pieces = [b]
        else:
            pieces = [*inner[bisect.bisect_right(inner, a) : bisect.bisect_left(inner, b)], b]
        weights = [segment_height(q - p, True) for p, q in pairwise([a, *pieces])]
        done = 0
        for q, w in zip(pieces, weights, strict=True):
            done += w
            refined.append(q)
            ys.append(y - h * done // sum(weights))
        y -= h
    return _Axis(tuple(refined), tuple(ys), tuple(points)), breaks, total


def _nesting(spans: list[tuple[int, int]]) -> tuple[list[int], list[int | None]]:
    """(nesting depth, index of the innermost span holding it) of each `[start, end)`
    among the others (depth 0: outermost), in one sweep over the spans sorted by
    (start, -end)."""
    order = sorted(range(len(spans)), key=lambda i: (spans[i][0], -spans[i][1]))
    depth = [0] * len(spans)
    parent: list[int | None] = [None] * len(spans)
    open_spans: list[int] = []
    for i in order:
        start, _ = spans[i]
        while open_spans and spans[open_spans[-1]][1] <= start:
            open_spans.pop()
        depth[i] = len(open_spans)
        parent[i] = open_spans[-1] if open_spans else None
        open_spans.append(i)
    return depth, parent


def build_scene(resolved: ResolvedLayout, blocks: tuple[ZoneBlock, ...] | None = None) -> Scene:
    """The picture of `resolved`; `blocks` are the architectural zones (default: those
    of its config's architecture, platform and processors)."""
    from vmlayout.pci_layout import assign_resolved
    from vmlayout.pci_layout.report import pci_rows

    if blocks is None:
        blocks = config_zones(resolved.config)
    placed = [p for p in resolved.placed if not p.range.is_empty()]
    vnode_of = {r.range: r.vnode for r in resolved.memory_layout.ram}
    rows = [row for rc, a in assign_resolved(resolved).items() for row in pci_rows(rc, a)]
    nested: list[tuple[str, str, int, int]] = [
        ("bridge windows" if r.kind == "window" else "PCI BARs", r.name, r.start, r.end)
        for r in rows
    ]
    nested += [("zones", b.label(), b.start, b.end) for b in blocks]
    axis, breaks, total = _axis(placed, sorted({x for n in nested for x in n[2:]}))

    # band, span, fill, lines, depth, index of the item holding it (nested columns)
    items: list[tuple[str, int, int, str, tuple[str, ...], int, int | None]] = []
    extents: dict[str, int] = {}
    for p in placed:
        index = extents[p.tag] = extents.get(p.tag, -1) + 1
        tag = extent_name(p.tag, index)  # the one name `resolve` and `explain` use
        band = band_of(p.tag, p.kind)
        if band == "RAM":
            vnode = vnode_of.get(p.range, 0)
            fill = _VNODE_COLOURS[vnode % len(_VNODE_COLOURS)]
            name = f"{tag} (vnode {vnode})"
        else:
            fill, name = _BAND_COLOURS[band], tag
        lines = _lines(name, p.range.start, p.range.end)
        items.append((band, p.range.start, p.range.end, fill, lines, 0, None))
    for band in ("bridge windows", "PCI BARs", "zones"):
        mine = [n for n in nested if n[0] == band]
        depths, parents = _nesting([(n[2], n[3]) for n in mine])
        first = len(items)
        for (_, name, start, end), depth, parent in zip(mine, depths, parents, strict=True):
            fill, lines = _BAND_COLOURS[band], _lines(name, start, end)
            items.append(
                (band, start, end, fill, lines, depth, None if parent is None else first + parent)
            )

    bands = tuple(b for b in BANDS if any(item[0] == b for item in items))
    column = {band: i for i, band in enumerate(bands)}
    # An outer box's text stops where the first box nested in it begins.
    room: dict[int, int] = {}
    for _, _, end, _, _, _, parent in items:
        if parent is not None:
            child_top, parent_top = axis.y(end), axis.y(items[parent][2])
            room[parent] = min(room.get(parent, child_top - parent_top), child_top - parent_top)
    boxes = []
    for index, (band, start, end, fill, lines, depth, _) in enumerate(items):
        top, bottom = axis.y(end), axis.y(start)
        indent = min(depth * NEST_INDENT, BAND_WIDTH // 2)
        boxes.append(
            Box(
                AXIS_WIDTH + column[band] * BAND_WIDTH + 2 + indent,
                top,
                BAND_WIDTH - 4 - indent,
                max(bottom - top, 2),
                fill,
                lines,
                band,
                room.get(index),
            )
        )
    labels = [Label(AXIS_WIDTH - 8, axis.y(p) + 4, format_address(p), "end") for p in axis.labelled]
    labels += [
        Label(AXIS_WIDTH + i * BAND_WIDTH + 6, TOP_MARGIN - 14, band)
        for i, band in enumerate(bands)
    ]
    title = (
        f"vmlayout {resolved.arch.value}: RAM {format_size(resolved.memory_layout.ram_size)}, "
        f"layout top {format_address(resolved.layout_top)} (log-scaled, breaks = unused)"
    )
    labels.append(Label(8, 18, title))
    width = AXIS_WIDTH + len(bands) * BAND_WIDTH + 10
    return Scene(width, TOP_MARGIN + total + 20, tuple(boxes), tuple(labels), tuple(breaks), bands)


def _lines(name: str, start: int, end: int) -> tuple[str, ...]:
    return (name, f"{format_address(start)}-{format_address(end)}", format_size(end - start))


def _visible_lines(box: Box, line_height: int = 12) -> tuple[str, ...]:
    """As many lines as fit; none in a box too low for one (its neighbours' text would
    overprint it)."""
    room = box.height if box.text_room is None else min(box.height, box.text_room)
    return box.lines[: max(0, (room - 2) // line_height)]


def render_svg(scene: Scene) -> str:
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{scene.width}" height="{scene.height}" '
        f'font-family="monospace" font-size="10">',
        f'<rect width="{scene.width}" height="{scene.height}" fill="white"/>',
    ]
    for y in scene.breaks:
        out.append(
            f'<path d="M {AXIS_WIDTH - 30} {y - 3} l 10 6 l 10 -6 l 10 6" stroke="#555" '
            'fill="none"/>'
        )
    for box in scene.boxes:
        out.append(
            f'<rect x="{box.x}" y="{box.y}" width="{box.width}" height="{box.height}" '
            f'fill="{box.fill}" stroke="#333" stroke-width="0.5"/>'
        )
        for i, line in enumerate(_visible_lines(box)):
            out.append(f'<text x="{box.x + 4}" y="{box.y + 11 + 12 * i}">{escape(line)}</text>')
    for label in scene.labels:
        out.append(
            f'<text x="{label.x}" y="{label.y}" text-anchor="{label.anchor}">'
            f"{escape(label.text)}</text>"
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def render_png(scene: Scene) -> bytes:
    import io

    try:
        from PIL import Image, ImageDraw
    except ImportError:
        raise VmLayoutError(
            "missing_dependency", "map: PNG output needs Pillow (pip install 'vmlayout[map]')"
        ) from None
    if scene.height > MAX_PNG_HEIGHT:
        # Pillow would allocate width x height x 3 bytes (gigabytes for 20,000 vNUMA
        # nodes); the SVG has no such limit.
        raise VmLayoutError(
            "output_error",
            f"map: the picture is {scene.height} pixels tall, more than a PNG of "
            f"{MAX_PNG_HEIGHT}; write .svg instead",
        )
    image = Image.new("RGB", (scene.width, scene.height), "white")
    draw = ImageDraw.Draw(image)
    for y in scene.breaks:
        x = AXIS_WIDTH - 30
        draw.line([(x, y - 3), (x + 10, y + 3), (x + 20, y - 3), (x + 30, y + 3)], fill="#555555")
    for box in scene.boxes:
        draw.rectangle(
            [box.x, box.y, box.x + box.width, box.y + box.height], fill=box.fill, outline="#333333"
        )
        for i, line in enumerate(_visible_lines(box)):
            draw.text((box.x + 4, box.y + 2 + 12 * i), line, fill="black")
    for label in scene.labels:
        width = draw.textlength(label.text)
        left = label.x - width if label.anchor == "end" else label.x
        draw.text((left, label.y - 10), label.text, fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def render(
    resolved: ResolvedLayout, path: Path, blocks: tuple[ZoneBlock, ...] | None = None
) -> bytes:
    """The picture for `path`'s suffix (.svg or .png)."""
    scene = build_scene(resolved, blocks)
    suffix = path.suffix.lower()
    if suffix == ".svg":
        return render_svg(scene).encode()
    if suffix == ".png":
        return render_png(scene)
    raise VmLayoutError("usage", f"{path}: map output must end in .svg or .png")
