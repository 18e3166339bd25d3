"""`fit`: the fitted windows are sufficient and each one step smaller fails."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vmlayout.config import config_from_dict, load_config
from vmlayout.errors import VmLayoutError
from vmlayout.pci_layout import assign_resolved
from vmlayout.pci_layout.fit import HIGH_STEP, LOW_STEP, fit_config, with_sizes
from vmlayout.policy import DynamicMmio, VmConfig, resolve
from vmlayout.ranges import GIB, MIB

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "gpus.toml"


def assign(config: VmConfig) -> None:
    assign_resolved(resolve(config))


def check_minimal(config: VmConfig) -> None:
    result = fit_config(config)
    assign(result.config)  # sufficient
    for w in result.windows:
        step = LOW_STEP if w.window == "low_mmio" else HIGH_STEP
        smaller = w.after - step
        if smaller < step:
            continue  # the smallest window the resolver accepts
        shrunk = with_sizes(result.config, {(w.index, w.window): smaller})
        with pytest.raises(VmLayoutError) as caught:
            assign(shrunk)
        assert caught.value.kind == "mmio_exhaustion", caught.value.message
        assert caught.value.message.startswith(f"{w.rc}: {w.window} MMIO exhaustion")


def test_fit_shrinks_the_generous_example_to_minimal_windows() -> None:
    config = load_config(ROOT / "examples" / "gpus.toml")
    result = fit_config(config)
    sizes = {w.window: (w.before, w.after) for w in result.windows}
    assert sizes["low_mmio"][1] < sizes["low_mmio"][0]
    assert sizes["high_mmio"][1] < sizes["high_mmio"][0]
    check_minimal(config)


def test_fit_grows_windows_that_are_too_small() -> None:
    config = load_config(ROOT / "examples" / "gpus.toml")
    rc = replace(
        config.pcie_root_complexes[0], low_mmio=DynamicMmio(2 * MIB), high_mmio=DynamicMmio(GIB)
    )
    small = replace(config, pcie_root_complexes=(rc,))
    with pytest.raises(VmLayoutError):
        assign(small)
    check_minimal(small)
    assert fit_config(small).config == fit_config(config).config


def gpu_config(**extra: Any) -> dict[str, Any]:
    gpu = {
        "type": "endpoint",
        "device": 0,
        "bars": [
            {"index": 0, "size": "256M"},
            {"index": 1, "size": "32G", "bits": 64, "prefetchable": True},
        ],
    }
    rcs = [
        {"name": f"rc{i}", "start_bus": 64 * i, "end_bus": 64 * i + 63, "devices": [gpu]}
        for i in range(3)
    ]
    return {"node_mem_sizes": ["8G"], "pcie_root_complexes": rcs, **extra}


def test_fit_accounts_for_where_each_window_lands_with_several_root_complexes() -> None:
    check_minimal(config_from_dict(gpu_config()))


def test_32_bit_bars_beyond_the_space_below_4_gib_cannot_fit() -> None:
    big = {
        "type": "endpoint",
        "device": 0,
        "bars": [{"index": i, "size": "2G"} for i in range(3)],
    }
    config = config_from_dict({"pcie_root_complexes": [{"name": "rc0", "devices": [big]}]})
    with pytest.raises(VmLayoutError) as caught:
        fit_config(config)
    assert caught.value.kind == "fit_impossible"
    assert "below 4 GiB" in caught.value.message


def test_fixed_windows_are_kept_and_too_small_ones_are_impossible() -> None:
    data = gpu_config()
    data["pcie_root_complexes"][0]["low_mmio"] = {"start": 0xE000_0000, "end": 0xE020_0000}
    with pytest.raises(VmLayoutError) as caught:
        fit_config(config_from_dict(data))
    assert caught.value.kind == "fit_impossible"
    assert "mmio_exhaustion" in caught.value.message


def test_bus_errors_are_impossible_whatever_the_size() -> None:
    data = gpu_config()
    data["pcie_root_complexes"][0]["end_bus"] = 0
    data["pcie_root_complexes"][0]["devices"] = [{"type": "root_port", "device": 0, "children": []}]
    with pytest.raises(VmLayoutError, match=r"bus number exhaustion at bridge 00:00\.0"):
        fit_config(config_from_dict(data))


def test_resolve_mmio_exhaustion_names_the_size_fit_would_choose() -> None:
    data = gpu_config()
    for rc in data["pcie_root_complexes"]:
        rc["low_mmio"], rc["high_mmio"] = "1G", "128G"
    data["pcie_root_complexes"][1]["low_mmio"] = "64M"
    config = config_from_dict(data)
    chosen = next(
        w.after for w in fit_config(config).windows if (w.rc, w.window) == ("rc1", "low_mmio")
    )
    with pytest.raises(VmLayoutError) as caught:
        assign(config)
    assert caught.value.message.startswith("rc1: low_mmio MMIO exhaustion: need 0x10000000")
    assert caught.value.message.endswith(
        f"`vmlayout fit` would choose low_mmio = {chosen >> 20} MiB"
    )


def test_chipset_low_candidates_align_the_top_of_the_low_windows() -> None:
    from vmlayout.pci_layout.fit import _chipset_low_candidates

    data = gpu_config()  # 256 MiB 32-bit BARs: 256 MiB-aligned mem32 pools
    config = config_from_dict(data)
    # Default chipset low 128 MiB puts the windows' top at 0xF800_0000; the next size
    # that puts it on a 256 MiB boundary is 256 MiB.
    assert _chipset_low_candidates(config) == [256 * MIB]


# Two root complexes whose 1 GiB aligned 32-bit pools crowd the space below 4 GiB: the
# per-window search only succeeds with a larger chipset low window, whose bytes the
# topmost low window can take instead.
TWO_32_BIT = """\
# two root complexes with 32-bit BARs only
[[pcie_root_complexes]]
name = "rc0"
[[pcie_root_complexes.devices]]
type = "endpoint"
device = 0
bars = [{ index = 0, size = "1 GiB" }]

[[pcie_root_complexes]]
name = "rc1"
segment = 1
[[pcie_root_complexes.devices]]
type = "endpoint"
device = 0
bars = [{ index = 0, size = "1 GiB" }, { index = 1, size = "512 MiB" }]
"""

# rc1's fixed window leaves two gaps below 4 GiB, 130 MiB at 0 and 130 MiB under the
# default 128 MiB chipset window. rc0's 129 MiB pool (64 MiB aligned) fits only the
# first, but a window of at most 130 MiB goes into the second, the higher one, where the
# pool does not fit: only a chipset low window of 256 MiB, which shrinks that gap to
# 2 MiB, lets it land at 0.
BEHIND_FIXED = """\
# rc1's fixed window leaves a gap at 0 and one under the chipset window
[[pcie_root_complexes]]
name = "rc0"
[[pcie_root_complexes.devices]]
type = "endpoint"
device = 0
bars = [
    { index = 0, size = "64 MiB" },
    { index = 1, size = "64 MiB" },
    { index = 2, size = "1 MiB" },
]

[[pcie_root_complexes]]
name = "rc1"
segment = 1
low_mmio = { start = 0x0820_0000, end = 0xEFE0_0000 }
[[pcie_root_complexes.devices]]
type = "endpoint"
device = 0
bars = [{ index = 0, size = "256 MiB" }]
"""


def from_toml(text: str) -> VmConfig:
    from vmlayout.inputs import parse_toml

    return config_from_dict(parse_toml(text, "config.toml"))


def holds(config: VmConfig) -> bool:
    try:
        assign(config)
    except VmLayoutError:
        return False
    return True


def test_fit_keeps_the_chipset_low_size_when_the_topmost_window_can_take_its_bytes() -> None:
    config = from_toml(TWO_32_BIT)
    result = fit_config(config)
    assert result.chipset_low_after == result.chipset_low_before == 128 * MIB
    assert result.config.chipset_low_mmio_size == 128 * MIB
    assert holds(result.config)
    sizes = {(w.rc, w.window): w.after for w in result.windows}
    # rc0 is placed first, right under the chipset window, and keeps the 896 MiB the
    # search's 1 GiB chipset window had: every window below it stays where it was.
    assert sizes[("rc0", "low_mmio")] == 2432 * MIB
    assert sizes[("rc1", "low_mmio")] == 1536 * MIB
    shrunk = with_sizes(result.config, {(0, "low_mmio"): 2430 * MIB})
    assert not holds(shrunk)


def test_raising_the_chipset_low_size_helps_when_a_fixed_window_sits_below_it() -> None:
    config = from_toml(BEHIND_FIXED)
    assert config.chipset_low_mmio_size == 128 * MIB
    # With the default chipset window no size of rc0's window works ...
    assert not any(
        holds(with_sizes(config, {(0, "low_mmio"): size}))
        for size in range(LOW_STEP, 4096 * MIB, LOW_STEP)
    )
    # ... and a larger one is the only fit.
    result = fit_config(config)
    assert (result.chipset_low_before, result.chipset_low_after) == (128 * MIB, 256 * MIB)
    assert holds(result.config)
    assert [w.after for w in result.windows if w.window == "low_mmio"] == [130 * MIB, 3708 * MIB]


@pytest.mark.parametrize("suffix", [".toml", ".json"])
@pytest.mark.parametrize("with_key", [False, True], ids=["default", "explicit"])
@pytest.mark.parametrize("text", [TWO_32_BIT, BEHIND_FIXED], ids=["two-32-bit", "behind-fixed"])
def test_the_fitted_file_resolves_and_assigns(
    tmp_path: Path, text: str, with_key: bool, suffix: str
) -> None:
    import json

    from vmlayout.cli import main
    from vmlayout.inputs import parse_toml

    if with_key:
        text = 'chipset_low_mmio_size = "128 MiB"\n' + text
    source = tmp_path / f"config{suffix}"
    fitted = tmp_path / f"fitted{suffix}"
    if suffix == ".json":
        source.write_text(json.dumps(parse_toml(text, "config.toml")))
    else:
        source.write_text(text)
    expected = fit_config(load_config(source)).config
    assert main(["fit", str(source), "-o", str(fitted)]) == 0
    written = load_config(fitted)
    assert written == expected
    assign(written)
    if suffix == ".toml":  # edited in place: the comment survives
        comment = next(line for line in text.splitlines() if line.startswith("#"))
        assert comment in fitted.read_text().splitlines()


def test_the_hint_never_names_the_size_the_window_already_has() -> None:
    # What `fit -o` used to write for TWO_32_BIT: the windows the search found with a
    # 1 GiB chipset window, without the chipset size.
    sizes = {(0, "low_mmio"): 1536 * MIB, (1, "low_mmio"): 1536 * MIB}
    config = with_sizes(from_toml(TWO_32_BIT), sizes)
    with pytest.raises(VmLayoutError) as caught:
        assign(config)
    assert caught.value.kind == "mmio_exhaustion"
    assert caught.value.message.startswith("rc0: low_mmio MMIO exhaustion")
    assert caught.value.message.endswith("`vmlayout fit` would choose low_mmio = 2432 MiB")


#: The ways TOML can spell gpus.toml's two window sizes (the devices follow unchanged).
WINDOW_SPELLINGS = {
    "inline-table": 'low_mmio = { size = "512 MiB" }  # generous\nhigh_mmio = { size = "2 TiB" }',
    "string": 'low_mmio = "512 MiB"  # generous\nhigh_mmio = 2199023255552',
    "dotted": 'low_mmio.size = "512 MiB"  # generous\n"high_mmio" . size = "2 TiB"',
    "sub-tables": '[pcie_root_complexes.low_mmio]\nsize = "512 MiB"  # generous\n'
    "[pcie_root_complexes.high_mmio]\nsize = '2 TiB'",
    "default": "# generous",
}


@pytest.mark.parametrize("spelling", list(WINDOW_SPELLINGS))
def test_fit_o_edits_every_toml_spelling_of_a_window_size_in_place(
    tmp_path: Path, spelling: str
) -> None:
    """Issue 20: `fit -o` on dotted keys (`low_mmio.size = …`) failed on its own edit.
    The sizes are those docs/pci.md derives for gpus.toml (144 MiB, 1 TiB), the
    comments stay where they were."""
    from vmlayout.cli import main

    devices = EXAMPLE.read_text().split("# Two root ports", 1)[1]
    text = (
        '# my VM\nnode_mem_sizes = ["64 GiB"]\n\n[[pcie_root_complexes]]\nname = "rc0"\n'
        f"{WINDOW_SPELLINGS[spelling]}\n\n# Two root ports{devices}"
    )
    source, fitted = tmp_path / "vm.toml", tmp_path / "fitted.toml"
    source.write_text(text)
    assert main(["fit", str(source), "-o", str(fitted)]) == 0
    (rc,) = load_config(fitted).pcie_root_complexes
    assert (rc.low_mmio, rc.high_mmio) == (DynamicMmio(144 * MIB), DynamicMmio(1024 * GIB))
    written = fitted.read_text().splitlines()
    for comment in ("# my VM", "# Two root ports, each leading to a switch (upstream port on "
                    "the root port's bus)."):  # fmt: skip
        assert comment in written
    assert any(line.endswith("# generous") for line in written)
    # Only the two size lines changed (or were added, where the config used the defaults).
    changed = set(written) - set(text.splitlines())
    assert len(changed) == 2, changed


def test_fit_o_rewrites_root_complexes_written_as_an_inline_array(tmp_path: Path) -> None:
    from vmlayout.cli import main

    source, fitted = tmp_path / "vm.toml", tmp_path / "fitted.toml"
    source.write_text(
        'pcie_root_complexes = [\n  { name = "rc0", low_mmio = "64 MiB", devices = [\n'
        '    { type = "endpoint", device = 0, bars = [{ index = 0, size = "128 MiB" }] },\n'
        "  ] },\n]\n"
    )
    assert main(["fit", str(source), "-o", str(fitted)]) == 0
    (rc,) = load_config(fitted).pcie_root_complexes
    # A 128 MiB BAR, 128 MiB aligned: the window must start aligned and hold it.
    assert isinstance(rc.low_mmio, DynamicMmio) and rc.low_mmio.size >= 128 * MIB
    assign(load_config(fitted))


#: 600 GiB of RAM (3 GiB below 4 GiB, 597 GiB above: RAM ends at 601 GiB, above 2**39)
#: and one 512 GiB BAR: its 512 GiB aligned pool starts at 1 TiB, so the fitted layout
#: ends past 1.5 TiB, below 2 TiB: 41 bits.
WIDE = """
node_mem_sizes = ["600 GiB"]
{width}
[[pcie_root_complexes]]
[[pcie_root_complexes.devices]]
type = "endpoint"
device = 0
bars = [{{ index = 0, size = "512 GiB", bits = 64, prefetchable = true }}]
"""


def test_a_too_narrow_host_gets_the_minimum_width_and_what_reaches_highest(
    tmp_path: Path,
) -> None:
    """Issue 19: `fit --host-phys-bits 39` named neither the 41 bits nor that RAM alone
    already ends above 2**39."""
    from tests.fuzzing import assert_one_line_error, run_main

    config = tmp_path / "wide.toml"
    config.write_text(WIDE.format(width=""))
    outcome = run_main("fit", config, "--host-phys-bits", "39")
    assert_one_line_error(
        outcome,
        "fit_impossible: --host-phys-bits: ",
        "the limit is --host-phys-bits 39",
        "at least 41 bits hold the layout",
        "highest is pcie-seg0-ecam",
        "RAM alone already ends above 2^39, at 0x96_4000_0000",
    )
    assert run_main("fit", config, "--host-phys-bits", "41").status == 0


def test_a_too_narrow_config_width_is_blamed_on_the_config(tmp_path: Path) -> None:
    from tests.fuzzing import assert_one_line_error, run_main

    config = tmp_path / "wide.toml"
    config.write_text(WIDE.format(width="physical_address_size = 40"))
    assert_one_line_error(
        run_main("fit", config),
        "fit_impossible: physical_address_size: ",
        "the limit is the config's physical_address_size = 40",
        "at least 41 bits hold the layout",
        "RAM alone ends at 0x96_4000_0000",
    )
    # `resolve` checks the config's width too: with its own 1 GiB high window the layout
    # ends just above RAM's 601 GiB, so 40 bits hold it, and 39 bits do not hold RAM.
    config.write_text(WIDE.format(width="physical_address_size = 39"))
    assert_one_line_error(
        run_main("resolve", config),
        "address_width_exceeded: physical_address_size: ",
        "the limit is the config's physical_address_size = 39",
        "at least 40 bits hold the layout",
        "RAM alone already ends above 2^39, at 0x96_4000_0000",
    )


def test_fit_of_many_root_complexes_mixing_aligned_and_unaligned_pools_is_minimal() -> None:
    """The windows `fit` does not search (pools aligned within the window's step) and
    those it does (16 MiB / 8 GiB aligned pools, whose need depends on where they land)
    are each one step smaller too small, checked by resolving every shrink."""
    pref = {"bits": 64, "prefetchable": True}
    shapes = [
        [{"index": 0, "size": "1 MiB"}, {"index": 1, "size": "1 GiB", **pref}],
        [{"index": 0, "size": "16 MiB"}, {"index": 1, "size": "8 GiB", **pref}],
        [{"index": 0, "size": "64 KiB"}],
    ]
    rcs = [
        {"segment": i, "devices": [{"type": "endpoint", "device": 0, "bars": shapes[i % 3]}]}
        for i in range(12)
    ]
    check_minimal(config_from_dict({"node_mem_sizes": ["6 GiB"], "pcie_root_complexes": rcs}))


_SPELLINGS = {
    "inline": '{key} = {{ size = "{size}" }}',
    "string": '{key} = "{size}"',
    "dotted": '{key}.size = "{size}"',
    "quoted": "'{key}' . \"size\" = '{size}'",
}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    low=st.sampled_from([*_SPELLINGS, "sub-table", "default"]),
    high=st.sampled_from([*_SPELLINGS, "sub-table", "default"]),
    spaces=st.sampled_from(("", " ", "\t")),
    comment=st.booleans(),
)
def test_fit_o_reads_back_as_the_fitted_config_for_any_window_spelling(
    tmp_path_factory: pytest.TempPathFactory, low: str, high: str, spaces: str, comment: bool
) -> None:
    from vmlayout.cli import main

    work = tmp_path_factory.mktemp("spelling")
    lines, tables = [], []
    for key, spelling, size in (("low_mmio", low, "512 MiB"), ("high_mmio", high, "2 TiB")):
        tail = "  # sized by hand" if comment else ""
        if spelling == "sub-table":
            tables.append(f"[pcie_root_complexes.{key}]\nsize{spaces}={spaces}'{size}'{tail}")
        elif spelling != "default":
            lines.append(_SPELLINGS[spelling].format(key=key, size=size) + tail)
    devices = EXAMPLE.read_text().split("# Two root ports", 1)[1]
    text = "\n".join(
        ['# my VM\nnode_mem_sizes = ["64 GiB"]\n', "[[pcie_root_complexes]]", 'name = "rc0"',
         *lines, *tables, "", f"# Two root ports{devices}"]
    )  # fmt: skip
    source, fitted = work / "vm.toml", work / "fitted.toml"
    source.write_text(text)
    assert main(["fit", str(source), "-o", str(fitted)]) == 0
    assert load_config(fitted) == fit_config(load_config(source)).config
    assert "# my VM" in fitted.read_text().splitlines()  # edited in place, not rewritten
