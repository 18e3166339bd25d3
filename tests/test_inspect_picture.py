"""`vmlayout map`: the picture shows every placed range, in its band, readable at any scale."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from PIL import Image

from tests.cli import assert_one_line_error, run_cli
from vmlayout.config import DEFAULT_VM, load_config
from vmlayout.inspect.picture import AXIS_WIDTH, BAND_WIDTH, BANDS, build_scene, render_svg
from vmlayout.policy import resolve

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_every_placed_range_is_a_box_in_its_band() -> None:
    resolved = resolve(load_config(EXAMPLES / "large-4tib.toml"))
    scene = build_scene(resolved)
    assert len(scene.boxes) == len(resolved.placed)
    by_name = {box.lines[0]: box for box in scene.boxes}
    ecam = by_name["pcie-seg0-ecam"]
    assert ecam.x == AXIS_WIDTH + BANDS.index("PCIe ECAM") * BAND_WIDTH + 2
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
        assert image.format == "PNG" and image.size[0] > 1000
    assert svg.read_text().startswith("<svg")
    assert_one_line_error(run_cli("map", "-o", tmp_path / "map.gif"), "must end in .svg or .png")
    assert not (tmp_path / "map.gif").exists()
