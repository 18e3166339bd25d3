"""`vmlayout map`: a picture of the guest physical address space.

Address spaces span KiB-sized IOMMU pages to TiB of RAM with a 4 GiB hole in between, so
a linear axis shows nothing. The axis here is piecewise: every stretch between two range
boundaries gets a height growing with the logarithm of its size, and long unused
stretches are drawn as breaks. One scene description feeds both renderers (SVG by hand,
PNG through Pillow), so the two pictures cannot disagree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from xml.sax.saxutils import escape

from vmlayout.allocator import PlacedRangeKind, extent_name
from vmlayout.errors import VmLayoutError
from vmlayout.policy import ResolvedLayout
from vmlayout.ranges import format_address, format_size

BANDS = (
    "RAM",
    "chipset MMIO",
    "PCIe ECAM",
    "PCIe windows",
    "PCI BARs",
    "other MMIO",
    "VTL2",
    "reserved",
)
_VNODE_COLOURS = ("#4e79a7", "#76b7b2", "#59a14f", "#8cd17d", "#2f6690", "#9ecae9")
_BAND_COLOURS = {
    "chipset MMIO": "#e15759",
    "PCIe ECAM": "#f28e2b",
    "PCIe windows": "#edc948",
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


def _segment_height(size: int, used: bool) -> int:
    if not used:
        return BREAK_HEIGHT
    return MIN_HEIGHT + int(LOG_SCALE * max(0.0, math.log2(size / 0x1000)))


def build_scene(resolved: ResolvedLayout) -> Scene:
    from vmlayout.pci_layout.report import pci_bar_regions

    placed = list(resolved.placed)
    vnode_of = {r.range: r.vnode for r in resolved.memory_layout.ram}
    bars = pci_bar_regions(resolved)  # inside the PCIe windows, so on used segments
    points = sorted(
        {
            0,
            *(p.range.start for p in placed),
            *(p.range.end for p in placed),
            *(start for _, start, _ in bars),
            *(end for _, _, end in bars),
        }
    )
    if len(points) < 2:
        points.append(0x1000)
    # Segments between consecutive points lie wholly inside or outside each range, so
    # one sweep over +1/-1 boundary counts marks the used ones: O(n log n) for n
    # ranges, not a scan of every range per segment (minutes at 20,000 vNUMA nodes).
    index_of = {point: i for i, point in enumerate(points)}
    delta = [0] * (len(points) + 1)
    for p in placed:
        if not p.range.is_empty():
            delta[index_of[p.range.start]] += 1
            delta[index_of[p.range.end]] -= 1
    used_segment = []
    depth = 0
    for i in range(len(points) - 1):
        depth += delta[i]
        used_segment.append(depth > 0)

    # y grows downwards in both renderers; draw high addresses at the top.
    heights = [
        _segment_height(b - a, is_used)
        for (a, b), is_used in zip(pairwise(points), used_segment, strict=True)
    ]
    total = sum(heights)
    y_of: dict[int, int] = {}
    y = TOP_MARGIN + total
    y_of[points[0]] = y
    breaks = []
    for (_, b), h, is_used in zip(pairwise(points), heights, used_segment, strict=True):
        if not is_used:
            breaks.append(y - h // 2)
        y -= h
        y_of[b] = y
    labels = [Label(AXIS_WIDTH - 8, y_of[p] + 4, format_address(p), "end") for p in points]
    labels += [
        Label(AXIS_WIDTH + i * BAND_WIDTH + 6, TOP_MARGIN - 14, band)
        for i, band in enumerate(BANDS)
    ]
    boxes = []
    extents: dict[str, int] = {}
    for p in placed:
        index = extents[p.tag] = extents.get(p.tag, -1) + 1
        tag = extent_name(p.tag, index)  # the one name `resolve` and `explain` use
        band = band_of(p.tag, p.kind)
        column = BANDS.index(band)
        top, bottom = y_of[p.range.end], y_of[p.range.start]
        if band == "RAM":
            vnode = vnode_of.get(p.range, 0)
            fill = _VNODE_COLOURS[vnode % len(_VNODE_COLOURS)]
            name = f"{tag} (vnode {vnode})"
        else:
            fill, name = _BAND_COLOURS[band], tag
        boxes.append(
            Box(
                AXIS_WIDTH + column * BAND_WIDTH + 2,
                top,
                BAND_WIDTH - 4,
                max(bottom - top, 2),
                fill,
                (
                    name,
                    f"{format_address(p.range.start)}-{format_address(p.range.end)}",
                    format_size(p.range.size),
                ),
            )
        )
    column = BANDS.index("PCI BARs")
    for name, start, end in bars:
        top, bottom = y_of[end], y_of[start]
        boxes.append(
            Box(
                AXIS_WIDTH + column * BAND_WIDTH + 2,
                top,
                BAND_WIDTH - 4,
                max(bottom - top, 2),
                _BAND_COLOURS["PCI BARs"],
                (name, f"{format_address(start)}-{format_address(end)}", format_size(end - start)),
            )
        )
    title = (
        f"vmlayout {resolved.arch.value}: RAM {format_size(resolved.memory_layout.ram_size)}, "
        f"layout top {format_address(resolved.layout_top)} (log-scaled, breaks = unused)"
    )
    labels.append(Label(8, 18, title))
    width = AXIS_WIDTH + len(BANDS) * BAND_WIDTH + 10
    return Scene(width, TOP_MARGIN + total + 20, tuple(boxes), tuple(labels), tuple(breaks))


def _visible_lines(box: Box, line_height: int = 12) -> tuple[str, ...]:
    return box.lines[: max(0, (box.height - 2) // line_height)] or box.lines[:1]


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


def render(resolved: ResolvedLayout, path: Path) -> bytes:
    """The picture for `path`'s suffix (.svg or .png)."""
    scene = build_scene(resolved)
    suffix = path.suffix.lower()
    if suffix == ".svg":
        return render_svg(scene).encode()
    if suffix == ".png":
        return render_png(scene)
    raise VmLayoutError("usage", f"{path}: map output must end in .svg or .png")
