"""Linux boots under QEMU on vmlayout's artifacts and `vmlayout verify` says it saw the
layout (marker `boot`; QEMU and kernels from tests/boot/fetch.sh: skipped locally
without them, failing under CI=true).

Boots start together when the first boot test runs, two at a time, and each test waits
for its own; a failed boot's serial log is in the assertion message.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.boot.harness import (
    VIRT_GIC_OPTIONS,
    Boot,
    aarch64_bootargs,
    boot_aarch64,
    boot_x86,
    require_arch,
    vmlayout,
)

pytestmark = pytest.mark.boot

#: Boots running at once (each takes about one core under TCG).
PARALLEL_BOOTS = 2


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    config: str
    options: tuple[str, ...] = ()
    machine: str = "virt"
    vps_per_socket: int = 1
    #: x86: options of `emit smbios` for an SMBIOS in the firmware ROM (None: none).
    smbios: tuple[str, ...] | None = None

    @property
    def is_x86(self) -> bool:
        return self.machine in ("pc", "q35")


X86_CASES = (
    Case(
        "pc-two-nodes",
        'node_mem_sizes = ["512 MiB", "512 MiB"]\n',
        ("--vp-count", "2", "--vps-per-socket", "1", "--pic", "--pit"),
        "pc",
    ),
    Case(
        "pc-memoryless-node",
        'node_mem_sizes = ["512 MiB", 0, "512 MiB"]\n',
        ("--vp-count", "3", "--vps-per-socket", "1", "--pic", "--pit"),
        "pc",
    ),
    Case(
        "pc-pci0-ram-above-4g",
        'node_mem_sizes = ["3 GiB", "512 MiB"]\nchipset_low_mmio_size = "1 GiB"\n',
        ("--pci0", "--vp-count", "4", "--vps-per-socket", "2", "--pic", "--pit"),
        "pc",
        vps_per_socket=2,
    ),
    Case(
        "pc-pci0-osc-grant",
        'node_mem_sizes = ["1 GiB"]\n',
        ("--pci0", "--pci0-osc", "grant", "--vp-count", "2", "--pic", "--pit"),
        "pc",
        vps_per_socket=2,
    ),
    Case(
        "q35-root-complex",
        'node_mem_sizes = ["512 MiB", "512 MiB"]\npcie_ecam_below_4gb = true\n'
        "numa_distances = [[0, 1, 30], [1, 0, 30]]\n"
        '[[pcie_root_complexes]]\nname = "rc0"\nnuma_node = 1\n',
        ("--vp-count", "2", "--vps-per-socket", "1", "--pic", "--pit"),
        "q35",
    ),
)
ARM_CASES = (
    Case(
        "virt-one-node",
        'arch = "aarch64"\nnode_mem_sizes = ["1 GiB"]\nram_start_address = "1 GiB"\n',
        ("--vp-count", "2"),
    ),
    Case(
        "virt-four-vps",
        'arch = "aarch64"\nnode_mem_sizes = ["768 MiB"]\nram_start_address = "1 GiB"\n'
        'chipset_low_mmio_size = "256 MiB"\n',
        ("--vp-count", "4"),
    ),
    Case(
        "virt-no-high-window",
        'arch = "aarch64"\nnode_mem_sizes = ["1536 MiB"]\nram_start_address = "1 GiB"\n'
        "chipset_high_mmio_size = 0\nvirtio_mmio_count = 2\n",
        ("--vp-count", "3"),
    ),
)
#: A root complex whose ECAM QEMU virt decodes (0x40_1000_0000, after a chipset high
#: window sized to end there) and a 4 GiB 64-bit window on QEMU's high PCIe MMIO.
VIRT_ROOT_COMPLEX = (
    'arch = "aarch64"\nnode_mem_sizes = ["1 GiB"]\nram_start_address = "1 GiB"\n'
    'chipset_high_mmio_size = "0x3F_1000_0000"\n[[pcie_root_complexes]]\nname = "rc0"\n'
    'high_mmio = { start = "0x80_0000_0000", end = "0x81_0000_0000" }\n'
)
VIRT_TWO_NODES = (
    'arch = "aarch64"\nnode_mem_sizes = ["512 MiB", "512 MiB"]\nram_start_address = "1 GiB"\n'
    "numa_distances = [[0, 1, 25], [1, 0, 25]]\n"
)
#: The built-in VM's root complex: ECAM at 0x1_a000_0000, above 4 GiB, on q35.
Q35_HIGH_ECAM = 'node_mem_sizes = ["1 GiB"]\n[[pcie_root_complexes]]\nname = "rc0"\n'
FIX_CASES = (
    Case(
        "q35-high-ecam-smbios",
        Q35_HIGH_ECAM,
        ("--vp-count", "2", "--pic", "--pit"),
        "q35",
        vps_per_socket=2,
        smbios=("--bios-date", "01/01/2010"),
    ),
    Case("virt-root-complex", VIRT_ROOT_COMPLEX, ("--vp-count", "2")),
    Case(
        "virt-root-complex-prefetchable",
        VIRT_ROOT_COMPLEX,
        ("--vp-count", "2", "--dt-prefetchable-high"),
    ),
    Case("virt-two-nodes-dt-numa", VIRT_TWO_NODES, ("--vp-count", "2", "--dt-numa")),
)
#: The reference's tree for two vNUMA nodes: Linux sees one (verify exit 1).
MISMATCH_CASES = (
    Case("virt-two-nodes", VIRT_TWO_NODES, ("--vp-count", "2")),
    Case("q35-high-ecam", Q35_HIGH_ECAM, ("--vp-count", "2", "--pic", "--pit"), "q35", 2),
)
MATCHING = (*X86_CASES, *ARM_CASES, *FIX_CASES)
CASES = {c.name: c for c in (*MATCHING, *MISMATCH_CASES)}


@dataclass(frozen=True, slots=True)
class Booted:
    case: Case
    config: Path
    boot: Boot
    #: Options `verify` needs: the case's plus the platform the harness chose.
    verify_options: tuple[str, ...]


def _boot(case: Case, root: Path) -> Booted:
    work = root / case.name
    work.mkdir()
    config = work / "config.toml"
    config.write_text(case.config)
    if case.is_x86:
        boot = boot_x86(config, case.options, work, case.machine, case.vps_per_socket, case.smbios)
        return Booted(case, config, boot, case.options)
    options = (*VIRT_GIC_OPTIONS, *case.options)
    boot = boot_aarch64(config, options, work)
    initrd = (work / "initrd.bin").stat().st_size
    extra = ("--bootargs", aarch64_bootargs(), "--initrd-size", str(initrd))
    return Booted(case, config, boot, (*options, *extra))


@pytest.fixture(scope="session")
def boots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Future[Booted]]]:
    require_arch("x86_64")
    require_arch("aarch64")
    root = tmp_path_factory.mktemp("boot")
    with ThreadPoolExecutor(PARALLEL_BOOTS) as pool:
        futures = {name: pool.submit(_boot, case, root) for name, case in CASES.items()}
        yield futures
        for future in futures.values():
            future.cancel()


def _booted(boots: dict[str, Future[Booted]], name: str) -> tuple[Booted, Path]:
    booted = boots[name].result()
    assert booted.boot.tarball is not None, booted.boot.explain()
    return booted, booted.boot.tarball


@pytest.mark.parametrize("name", [c.name for c in MATCHING])
def test_guest_saw_the_layout(boots: dict[str, Future[Booted]], name: str) -> None:
    booted, guest = _booted(boots, name)
    status, out, err = vmlayout("verify", booted.config, guest, *booted.verify_options)
    assert (status, err) == (0, ""), f"{out}\nserial log: {booted.boot.serial_log}"
    assert "the guest saw the layout" in out


def test_a_mismatched_config_is_exit_1(boots: dict[str, Future[Booted]], tmp_path: Path) -> None:
    """The two-node guest against a config whose nodes split the same RAM differently:
    the SRAT, node spans and node memory differ, and verify says so."""
    booted, guest = _booted(boots, "pc-two-nodes")
    other = tmp_path / "other.toml"
    other.write_text('node_mem_sizes = ["256 MiB", "768 MiB"]\n')
    status, out, _ = vmlayout("verify", other, guest, *booted.verify_options)
    assert status == 1, out
    assert "✗ ACPI    SRAT" in out
    assert "✗ NUMA    node0 memory  (expected 0x1000-0x1000_0000, seen 0x1000-0x2000_0000)" in out


def _log(booted: Booted) -> str:
    from vmlayout.inspect.probe import read_guest

    assert booted.boot.tarball is not None, booted.boot.explain()
    text = read_guest(booted.boot.tarball).text("dmesg.txt")
    assert text is not None
    return text


def test_pci0_osc_grant_gives_linux_pcie_control(boots: dict[str, Future[Booted]]) -> None:
    """The reference's 8-byte PCI0 `_OSC` makes Linux keep no PCIe control (the finding);
    `--pci0-osc grant` returns the 12-byte buffer and Linux no longer complains."""
    finding = "_OSC: platform retains control of PCIe features (AE_TYPE)"
    assert finding in _log(boots["pc-pci0-ram-above-4g"].result())
    fixed = _log(boots["pc-pci0-osc-grant"].result())
    assert finding not in fixed
    assert "PNP0A03:00: _OSC: OS supports" in fixed


def test_dt_prefetchable_high_window(boots: dict[str, Future[Booted]]) -> None:
    """The reference marks a 4 GiB 64-bit window non-prefetchable and Linux warns;
    `--dt-prefetchable-high` makes it a prefetchable 64-bit root bus resource."""
    finding = "Memory resource size exceeds max for 32 bits"
    assert finding in _log(boots["virt-root-complex"].result())
    fixed = _log(boots["virt-root-complex-prefetchable"].result())
    assert finding not in fixed
    assert "root bus resource [mem 0x8000000000-0x80ffffffff pref]" in fixed


def test_dt_numa_gives_linux_the_nodes(boots: dict[str, Future[Booted]]) -> None:
    """Two vNUMA nodes in the reference's tree: Linux finds no NUMA configuration and
    verify says the guest did not see the layout; with `--dt-numa` it reports both nodes
    and their distance (the match is `test_guest_saw_the_layout[virt-two-nodes-dt-numa]`)."""
    booted, guest = _booted(boots, "virt-two-nodes")
    assert "NUMA: No NUMA configuration found" in _log(booted)
    status, out, _ = vmlayout("verify", booted.config, guest, *booted.verify_options)
    assert status == 1
    assert "✗ NUMA   node0 CPUs  (expected 0, seen 0,1)" in out
    assert "✗ NUMA   node1  (expected online, seen absent)" in out
    fixed = _log(boots["virt-two-nodes-dt-numa"].result())
    assert "NUMA: No NUMA configuration found" not in fixed
    assert "Initmem setup node 1 [mem 0x0000000060000000-0x000000007fffffff]" in fixed


def test_smbios_makes_linux_use_an_ecam_above_4g(boots: dict[str, Future[Booted]]) -> None:
    """Without SMBIOS Linux ignores the default ECAM (above 4 GiB) and verify says the
    guest did not see it; with `emit smbios` (BIOS date 2010) Linux maps it."""
    booted, guest = _booted(boots, "q35-high-ecam")
    assert "is above 4GB, ignored" in _log(booted)
    status, out, _ = vmlayout("verify", booted.config, guest, *booted.verify_options)
    assert status == 1
    assert "✗ iomem   PCI MMCONFIG 0000 [bus 00-ff] 0x1_6000_0000-0x1_7000_0000" in out
    fixed = _log(boots["q35-high-ecam-smbios"].result())
    assert "is above 4GB, ignored" not in fixed
    assert "BIOS direct boot 01/01/2010" in fixed  # the DMI line
    assert "PCI: MMCONFIG at [mem 0x160000000-0x16fffffff] reserved" in fixed
