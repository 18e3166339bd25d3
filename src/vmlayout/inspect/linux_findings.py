"""What Linux makes of the reference's views: each finding measured by booting Debian's
Linux 6.1 on vmlayout's artifacts, the kernel message it causes, and which configs
trigger it. One table serves `vmlayout check linux` (does a config trigger it?) and
`vmlayout verify` (did the guest's log show it?).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vmlayout.ranges import FOUR_GIB, format_address


@dataclass(frozen=True, slots=True)
class Finding:
    key: str
    #: The kernel message a user will meet (as Linux 6.1 prints it).
    message: str
    #: What it costs the guest.
    effect: str
    #: Matches the message in a kernel log; None: the kernel is silent about it.
    pattern: re.Pattern[str] | None
    #: resolved layout (its config's platform section included) -> why it triggers, or None.
    trigger: Callable[[Any], str | None]
    #: Only counted in a log when the layout has more than one vNUMA node.
    multi_node_only: bool = False


def _ecam_above_4g(resolved: Any) -> str | None:
    platform = resolved.config.platform
    if resolved.arch.value != "x86_64" or _bios_year(platform.x86.bios_date) >= MCFG_BIOS_YEAR:
        return None
    high = [rc for rc in resolved.pcie_root_complexes if rc.ecam.start >= FOUR_GIB]
    if not high:
        return None
    where = ", ".join(f"{rc.name} ECAM at {format_address(rc.ecam.start)}" for rc in high)
    return f"{where} (fix: --bios-date 01/01/2010 and emit smbios, loaded at 0xf_0000)"


#: Linux trusts an MCFG entry above 4 GiB only from a BIOS of this year or later.
MCFG_BIOS_YEAR = 2010


def _bios_year(date: str) -> int:
    """The year of an SMBIOS date `MM/DD/YYYY` (0 when there is none)."""
    tail = date.rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _pci0_shadows(resolved: Any) -> str | None:
    platform = resolved.config.platform
    if not platform.pci0:
        return None
    hit = [rc for rc in resolved.pcie_root_complexes if rc.segment == 0 and rc.start_bus == 0]
    return ", ".join(f"{rc.name} on segment 0, bus 0" for rc in hit) or None


def _pci0_osc(resolved: Any) -> str | None:
    platform = resolved.config.platform
    if platform.pci0 and platform.pci0_osc == "reference" and resolved.arch.value == "x86_64":
        return "\\_SB.PCI0._OSC returns 8 bytes (fix: --pci0-osc grant)"
    return None


def _no_prt(resolved: Any) -> str | None:
    if resolved.arch.value != "x86_64" or not resolved.pcie_root_complexes:
        return None
    return ", ".join(rc.name for rc in resolved.pcie_root_complexes) + ": no _PRT, no I/O window"


def _dt_no_numa(resolved: Any) -> str | None:
    platform = resolved.config.platform
    nodes = len(resolved.config.node_mem_sizes)
    if resolved.arch.value != "aarch64" or nodes < 2 or platform.linux.numa:
        return None
    return f"{nodes} vNUMA nodes, no numa-node-id or distance-map in the tree (fix: --dt-numa)"


def _dt_64bit_nonprefetchable(resolved: Any) -> str | None:
    platform = resolved.config.platform
    if resolved.arch.value != "aarch64" or platform.linux.prefetchable_high:
        return None
    hit = [rc.name for rc in resolved.pcie_root_complexes if rc.high_mmio.size >= FOUR_GIB]
    if not hit:
        return None
    return (
        ", ".join(hit)
        + ": non-prefetchable 64-bit window of 4 GiB or more (fix: --dt-prefetchable-high)"
    )


def _mtrr_face_value(resolved: Any) -> str | None:
    from vmlayout.artifacts import mtrr_state_of
    from vmlayout.firmware.memtype import decode_variable_pairs

    if resolved.arch.value != "x86_64":
        return None
    state = mtrr_state_of(resolved)
    width = resolved.config.physical_address_size
    odd = [p for p in decode_variable_pairs(state, width) if p.valid and p.ignored_base_bits]
    if not odd:
        return None
    return "; ".join(
        f"pair {p.index} base {format_address(p.base & ~0xFFF)} decodes as "
        + ", ".join(f"[{format_address(c.start)}, {format_address(c.end)})" for c in p.covers)
        for p in odd
    )


FINDINGS: tuple[Finding, ...] = (
    Finding(
        "ecam-above-4g",
        "PCI: MCFG region for 0000 [bus 00-ff] at 0x1a0000000 is above 4GB, ignored",
        "no ECAM: extended config space and _OSC control are lost (direct boot has no "
        "SMBIOS, and Linux trusts an MCFG entry above 4 GiB only from a BIOS dated 2010 or later)",
        re.compile(r"MCFG region for .* is above 4GB, ignored"),
        _ecam_above_4g,
    ),
    Finding(
        "pci0-shadows-root-complex",
        "(none: Linux binds \\_SB.PCI0 first and drops the root complex's windows)",
        "the root complex's windows are not host-bridge windows; its BARs are reassigned",
        None,
        _pci0_shadows,
    ),
    Finding(
        "pci0-osc-8-bytes",
        "_OSC: platform retains control of PCIe features (AE_TYPE)",
        "the OS gets no native PCIe control (hotplug, AER, PME) on PCI0",
        re.compile(r"_OSC: platform retains control of PCIe features \(AE_TYPE\)"),
        _pci0_osc,
    ),
    Finding(
        "root-complex-no-prt",
        "can't derive routing for PCI INT A",
        "legacy INTx of devices behind a root complex has no route (MSI still works)",
        re.compile(r"can't derive routing for PCI INT [A-D]"),
        _no_prt,
    ),
    Finding(
        "mtrr-unaligned-pairs",
        "/proc/mtrr: reg01: base=0x008000000 ( 128MB), size= 4096MB, count=1: write-back",
        "/proc/mtrr shows the reference's pairs at face value while the CPU decodes the "
        "aligned block (e.g. [0, 4 GiB)); check mtrr explains the real types (fix: "
        "--mtrr-policy exact)",
        None,
        _mtrr_face_value,
    ),
    Finding(
        "dt-no-numa",
        "NUMA: No NUMA configuration found",
        "an arm64 guest sees one node: its vNUMA layout is lost",
        re.compile(r"NUMA: No NUMA configuration found"),
        _dt_no_numa,
        multi_node_only=True,
    ),
    Finding(
        "dt-64bit-non-prefetchable",
        "Memory resource size exceeds max for 32 bits",
        "Linux expects a non-prefetchable window to fit 32 bits; the window is not used as "
        "a prefetchable 64-bit one",
        re.compile(r"Memory resource size exceeds max for 32 bits"),
        _dt_64bit_nonprefetchable,
    ),
)


@dataclass(frozen=True, slots=True)
class Logged:
    finding: Finding
    line: str


def findings_in_log(text: str, numa_nodes: int) -> list[Logged]:
    """Each finding whose message the log shows (first line of each)."""
    out = []
    lines = text.splitlines()
    for finding in FINDINGS:
        if finding.pattern is None or (finding.multi_node_only and numa_nodes < 2):
            continue
        line = next((x for x in lines if finding.pattern.search(x)), None)
        if line is not None:
            out.append(Logged(finding, line.strip()[:200]))
    return out


def triggered(resolved: Any) -> list[tuple[Finding, str]]:
    """Each finding this VM (layout and platform section) triggers, with the reason."""
    out = []
    for finding in FINDINGS:
        why = finding.trigger(resolved)
        if why:
            out.append((finding, why))
    return out
