"""`vmlayout map`: the picture shows every placed range, in its band, readable at any scale."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from itertools import pairwise
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.cli import assert_one_line_error, run_cli
from vmlayout.config import DEFAULT_VM, config_from_dict, load_config
from vmlayout.inspect.picture import AXIS_WIDTH, BAND_WIDTH, Box, build_scene, render_svg
from vmlayout.policy import resolve

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_every_placed_range_is_a_box_in_its_band() -> None:
    resolved = resolve(load_config(EXAMPLES / "large-4tib.toml"))
    scene = build_scene(resolved)
    layout_boxes = [b for b in scene.boxes if b.band not in ("zones", "PCI BARs")]
    assert len(layout_boxes) == len(resolved.placed)
    by_name = {box.lines[0]: box for box in scene.boxes}
    ecam = by_name["pcie-seg0-ecam"]
    assert ecam.x == AXIS_WIDTH + scene.bands.index("PCIe ECAM") * BAND_WIDTH + 2
    assert by_name["chipset-low-mmio"].lines[1] == "0xf000_0000-0x1_0000_0000"
    assert by_name["ram3 (vnode 3)"].lines[2] == "1 TiB"


def test_higher_addresses_are_drawn_higher_and_tiny_ranges_stay_visible() -> None:
    scene = build_scene(resolve(load_config(EXAMPLES / "large-4tib.toml")))
    by_name = {box.lines[0]: box for box in scene.boxes}
    assert by_name["chipset-high-mmio"].y < by_name["chipset-low-mmio"].y
    assert by_name["intel-vtd-0"].height >= 20  # a 4 KiB range among TiBs
    assert scene.breaks, "the unused stretch below the fixed CXL window is drawn as a break"


def test_svg_is_well_formed_with_hex_labels(tmp_path: Path) -> None:
    svg = render_svg(build_scene(resolve(DEFAULT_VM)))
    root = ET.fromstring(svg)
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "0x1_0000_0000" in texts
    assert "chipset-high-mmio" in texts


def test_cli_map_writes_png_and_svg(tmp_path: Path) -> None:
    png, svg = tmp_path / "map.png", tmp_path / "map.svg"
    assert run_cli("map", EXAMPLES / "numa-vtl2.toml", "-o", png).returncode == 0
    assert run_cli("map", "-o", svg).returncode == 0
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size[0] > 500
    assert svg.read_text().startswith("<svg")
    assert_one_line_error(run_cli("map", "-o", tmp_path / "map.gif"), "must end in .svg or .png")
    assert not (tmp_path / "map.gif").exists()


def _by_size(boxes: list[Box]) -> list[tuple[int, int]]:
    """(size, height) of boxes, by size (their third line is the size)."""
    from vmlayout.ranges import parse_size

    return sorted((parse_size(b.lines[2].split(" (")[0], "size"), b.height) for b in boxes)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.integers(1, 4096).map(lambda m: m << 20), min_size=1, max_size=6),
    st.sampled_from([128 << 20, 80 << 20, 256 << 20]),
    st.lists(st.sampled_from([1, 2, 4, 8]).map(lambda m: m << 20), min_size=1, max_size=8),
)
def test_a_bigger_range_is_never_drawn_shorter(nodes: list[int], low: int, bars: list[int]) -> None:
    # The case: a 128 MiB chipset window drawn shorter than an 80 MiB root
    # complex window holding BARs. Every layout range's height grows with its size
    # alone, whatever nests in it.
    devices = [
        {"type": "endpoint", "device": d, "bars": [{"index": 0, "size": size}]}
        for d, size in enumerate(bars)
    ]
    rc = {"name": "rc0", "low_mmio": {"size": 80 << 20}, "devices": devices}
    config = config_from_dict(
        {
            "node_mem_sizes": nodes,
            "chipset_low_mmio_size": low,
            "virtio_mmio_count": 20,
            "pcie_root_complexes": [rc],
        }
    )
    scene = build_scene(resolve(config))
    pairs = _by_size([b for b in scene.boxes if b.band not in ("zones", "PCI BARs",
                      "bridge windows")])  # fmt: skip
    for (size_a, height_a), (size_b, height_b) in pairwise(pairs):
        assert size_a > size_b or height_a <= height_b, (size_a, height_a, size_b, height_b)


def test_bars_of_one_window_grow_with_size_and_columns_are_never_empty() -> None:
    scene = build_scene(resolve(load_config(EXAMPLES / "gpus.toml")))
    assert set(scene.bands) == {box.band for box in scene.boxes}
    assert "VTL2" not in scene.bands and "bridge windows" in scene.bands
    names = {box.lines[0] for box in scene.boxes}
    assert {"rc0 00:00.0 pref", "rc0 02:00.0 mem", "lapic", "ioapic"} <= names
    # In rc0's high window: 64 GiB BAR1s and 32 MiB BAR3s of the eight GPUs.
    bars = [
        b for b in scene.boxes if b.band == "PCI BARs" and b.lines[0].endswith(("BAR1", "BAR3"))
    ]
    heights = {b.lines[0].rsplit(" ", 1)[1]: set() for b in bars}  # type: dict[str, set[int]]
    for b in bars:
        heights[b.lines[0].rsplit(" ", 1)[1]].add(b.height)
    assert min(heights["BAR1"]) > max(heights["BAR3"])


def test_nested_windows_and_zones_are_indented_inside_their_parent() -> None:
    scene = build_scene(resolve(DEFAULT_VM))
    by_name = {box.lines[0]: box for box in scene.boxes}
    outer, msi, lapic = by_name["x86-reserved-zone"], by_name["msi-window"], by_name["lapic"]
    assert outer.x < msi.x < lapic.x
    assert outer.y <= msi.y <= lapic.y and lapic.y + lapic.height <= outer.y + outer.height


def test_an_outer_box_prints_no_text_under_the_boxes_inside_it() -> None:
    from vmlayout.inspect.picture import _visible_lines

    scene = build_scene(resolve(DEFAULT_VM))
    by_name = {box.lines[0]: box for box in scene.boxes}
    outer, msi = by_name["x86-reserved-zone"], by_name["msi-window"]
    assert outer.text_room == msi.y - outer.y  # msi-window is its highest child
    assert len(_visible_lines(outer)) * 12 <= outer.text_room
    assert by_name["chipset-low-mmio"].text_room is None  # nothing drawn inside it
