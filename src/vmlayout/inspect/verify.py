"""`vmlayout verify`: did a running guest see the layout?

Compares a probe dump (`vmlayout.inspect.probe`) with the layout and the artifacts
vmlayout writes for it: ACPI tables and the FDT byte for byte (fields or properties of
what differs), the firmware memory map and `/proc/iomem` against the E820 or the
device tree's memory, NUMA nodes, CPU counts, PCI BARs against their windows, and the
known Linux messages of `vmlayout.inspect.linux_findings` in `dmesg.txt`.

Linux rewrites what firmware gives it before it shows it; the comparison applies the
same rewrites to the expectation, and lists them (`NORMALISATIONS`), rather than
loosening the comparison: touching entries of one type are merged, page 0 becomes
reserved and RAM in [0xA0000, 1 MiB) is dropped (x86), node 0's span starts after page 0.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vmlayout.acpi.tables import HEADER
from vmlayout.devicetree.fdt import decoded_tree, read_fdt
from vmlayout.errors import VmLayoutError
from vmlayout.firmware.e820 import ONE_MIB, E820Entry, E820Type
from vmlayout.inspect.linux_findings import FINDINGS, findings_in_log
from vmlayout.inspect.probe import DMESG, GuestDump
from vmlayout.ranges import PAGE_SIZE, format_address

#: How Linux names E820 types in /sys/firmware/memmap and /proc/iomem.
E820_LINUX_NAMES = {
    E820Type.RAM: "System RAM",
    E820Type.RESERVED: "Reserved",
    E820Type.ACPI: "ACPI Tables",
    E820Type.NVS: "ACPI Non-volatile Storage",
    E820Type.UNUSABLE: "Unusable memory",
}
#: The legacy BIOS area x86 Linux removes from RAM (`trim_bios_range`).
BIOS_AREA = (0xA0000, ONE_MIB)
NORMALISATIONS = {
    "x86_64": (
        "touching E820 entries of one type merged (Linux sanitises the map)",
        "page 0 reserved and RAM in [0xa_0000, 0x10_0000) removed in /proc/iomem "
        "(Linux's trim_bios_range)",
        "node spans start after page 0",
    ),
    "aarch64": ("touching memory ranges merged",),
}
ACPI_TABLES = "sys/firmware/acpi/tables"
FDT = "sys/firmware/fdt"
#: Tables vmlayout writes that Linux does not export under /sys/firmware/acpi/tables.
UNEXPORTED_TABLES = ("XSDT.aml", "RSDP.bin")
#: IORESOURCE_MEM in a sysfs `resource` line's flags; BARs and the ROM are entries 0-6.
IORESOURCE_MEM = 0x200
IORESOURCE_ROM_SHADOW = 0x2
PCI_BAR_ENTRIES = 7
PCI_ROM_ENTRY = 6

#: /proc/iomem names of host-bridge windows (x86 ACPI root bridges, arm64 DT bridges)
#: and of ECAM regions.
HOST_BRIDGE_NAMES = ("PCI Bus ", "pcie@")
ECAM_NAMES = ("PCI MMCONFIG ", "PCI ECAM")
Span = tuple[int, int]  # [start, end), byte granular (guest ranges need not be pages)


@dataclass(frozen=True, slots=True)
class Fact:
    """One thing the guest saw, against what the layout says it should have."""

    view: str
    name: str
    ok: bool
    expected: str = ""
    seen: str = ""
    #: False for a warning: shown, but not part of whether the guest saw the layout
    #: (a known Linux message costs the guest a feature, not its addresses).
    counts: bool = True

    @property
    def mismatch(self) -> bool:
        return not self.ok and self.counts


@dataclass(frozen=True, slots=True)
class Expectation:
    """What vmlayout writes for the guest: the resolved layout and its artifacts."""

    resolved: Any  # ResolvedLayout
    acpi: Mapping[str, bytes]
    e820: tuple[E820Entry, ...]
    dtb: bytes | None
    vp_count: int
    vp_vnodes: tuple[int, ...]
    #: (window, owner) per PCI segment: the host-bridge windows a BAR may sit in.
    windows: Mapping[int, tuple[tuple[Span, int, int], ...]]
    #: Windows Linux should list in /proc/iomem as a host bridge's ("PCI Bus").
    bridge_windows: tuple[Span, ...]
    pci0: bool


def span_text(span: Span) -> str:
    return f"{format_address(span[0])}-{format_address(span[1])}"


def merge_touching(entries: Iterable[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Sorted entries with touching or overlapping neighbours of one name merged."""
    out: list[tuple[int, int, str]] = []
    for start, end, name in sorted(entries):
        if out and out[-1][2] == name and out[-1][1] >= start:
            out[-1] = (out[-1][0], max(out[-1][1], end), name)
        else:
            out.append((start, end, name))
    return out


def linux_e820(entries: Sequence[E820Entry]) -> list[tuple[int, int, str]]:
    """The E820 as Linux's /sys/firmware/memmap shows it: touching entries merged."""
    named = [(e.addr, e.end, _e820_name(e.type)) for e in entries if e.size]
    return merge_touching(named)


def _e820_name(kind: int) -> str:
    try:
        return E820_LINUX_NAMES[E820Type(kind)]
    except ValueError:
        return f"type {kind}"


def linux_iomem_e820(entries: Sequence[E820Entry]) -> list[tuple[int, int, str]]:
    """The E820 as x86 Linux inserts it into /proc/iomem: page 0 reserved, RAM in the
    BIOS area removed (`trim_bios_range`), touching entries merged."""
    out: list[tuple[int, int, str]] = []
    for start, end, name in linux_e820(entries):
        if name != "System RAM":
            out.append((start, end, name))
            continue
        if start == 0:
            out.append((0, PAGE_SIZE, "Reserved"))
            start = PAGE_SIZE
        for piece in _minus((start, end), BIOS_AREA):
            out.append((*piece, name))
    return merge_touching(e for e in out if e[0] < e[1])


def _minus(span: Span, hole: Span) -> list[Span]:
    pieces = [(span[0], min(span[1], hole[0])), (max(span[0], hole[1]), span[1])]
    return [p for p in pieces if p[0] < p[1]]


# --- reading the guest's files --------------------------------------------------------------


def _int(text: str, what: str) -> int:
    try:
        return int(text.strip(), 0)
    except ValueError:
        raise VmLayoutError(
            "invalid_guest", f"{what}: not a number: {text.strip()[:40]!r}"
        ) from None


def guest_memmap(dump: GuestDump) -> list[tuple[int, int, str]] | None:
    entries: dict[str, dict[str, str]] = {}
    for path, data in dump.under("sys/firmware/memmap").items():
        index, _, field = path.partition("/")
        entries.setdefault(index, {})[field] = data.decode("utf-8", "replace").strip()
    if not entries:
        return None
    out = []
    for index, fields in entries.items():
        if not {"start", "end", "type"} <= set(fields):
            raise VmLayoutError("invalid_guest", f"sys/firmware/memmap/{index}: incomplete entry")
        start = _int(fields["start"], f"memmap/{index}/start")
        end = _int(fields["end"], f"memmap/{index}/end") + 1  # inclusive in sysfs
        out.append((start, end, fields["type"]))
    return sorted(out)


IOMEM_LINE = re.compile(r"^( *)([0-9a-fA-F]+)-([0-9a-fA-F]+) : (.*)$")


def guest_iomem(dump: GuestDump) -> list[tuple[int, int, int, str]] | None:
    """(depth, start, end, name) of every /proc/iomem line."""
    text = dump.text("proc/iomem")
    if text is None:
        return None
    out = []
    for line in text.splitlines():
        m = IOMEM_LINE.match(line)
        if m:
            out.append((len(m[1]) // 2, int(m[2], 16), int(m[3], 16) + 1, m[4].strip()))
    return out


def cpu_list(text: str, what: str) -> tuple[int, ...]:
    """A kernel CPU list (`0-3,8`) as numbers; empty text is no CPU."""
    out: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        first = _int(low, what)
        last = _int(high, what) if high else first
        if last - first > 1 << 16:
            raise VmLayoutError("invalid_guest", f"{what}: CPU list too long")
        out.extend(range(first, last + 1))
    return tuple(out)


def guest_nodes(dump: GuestDump) -> dict[int, dict[str, str]]:
    nodes: dict[int, dict[str, str]] = {}
    for path, data in dump.under("sys/devices/system/node").items():
        m = re.fullmatch(r"node(\d+)/(cpulist|distance|meminfo)", path)
        if m:
            nodes.setdefault(int(m[1]), {})[m[2]] = data.decode("utf-8", "replace")
    return nodes


INITMEM = re.compile(r"Initmem setup node (\d+) \[mem (0x[0-9a-f]+)-(0x[0-9a-f]+)\]")


# --- the comparison ------------------------------------------------------------------------


def verify(expect: Expectation, dump: GuestDump) -> list[Fact]:
    arch = expect.resolved.arch.value
    facts: list[Fact] = []
    has_acpi = any(dump.under(ACPI_TABLES))
    if arch == "x86_64" or has_acpi:
        facts += _acpi_facts(expect, dump)
    if arch == "aarch64" and (FDT in dump.files or not has_acpi):
        facts += _fdt_facts(expect, dump)
    if arch == "x86_64":
        facts += _memmap_facts(expect, dump)
    facts += _iomem_facts(expect, dump)
    facts += _numa_facts(expect, dump)
    facts += _cpu_facts(expect, dump)
    facts += _pci_facts(expect, dump)
    facts += _dmesg_facts(expect, dump)
    return facts


def _acpi_facts(expect: Expectation, dump: GuestDump) -> list[Fact]:
    seen = {p: d for p, d in dump.under(ACPI_TABLES).items() if "/" not in p}
    facts = []
    expected = {n: t for n, t in expect.acpi.items() if n not in UNEXPORTED_TABLES}
    signatures = [t[:4].decode("ascii", "replace") for t in expected.values()]
    instance: dict[str, int] = {}
    for table in expected.values():
        sig = table[:4].decode("ascii", "replace")
        instance[sig] = instance.get(sig, 0) + 1
        name = sig if signatures.count(sig) == 1 else f"{sig}{instance[sig]}"
        data = seen.pop(name, None)
        if data is None:
            facts.append(Fact("ACPI", name, False, f"{len(table)} bytes", "missing"))
        elif data == table:
            facts.append(Fact("ACPI", name, True, f"{len(table)} bytes", "identical"))
        else:
            facts.append(Fact("ACPI", name, False, f"{len(table)} bytes", _table_diff(table, data)))
    for name, data in sorted(seen.items()):
        facts.append(Fact("ACPI", name, False, "no such table", f"{len(data)} bytes"))
    return facts


def _table_diff(ours: bytes, theirs: bytes) -> str:
    """Which header fields differ, and where the body first does."""
    out = []
    if len(ours) >= HEADER.size and len(theirs) >= HEADER.size:
        a, b = HEADER.unpack(ours), HEADER.unpack(theirs)
        out += [f"{k} {a[k]!r} vs {b[k]!r}" for k in HEADER.names if a[k] != b[k]]
    body = next(
        (
            i
            for i, (x, y) in enumerate(zip(ours, theirs, strict=False))
            if x != y and i >= HEADER.size
        ),
        None,
    )
    if body is not None:
        out.append(f"body differs from offset {body:#x}")
    elif len(ours) != len(theirs):
        out.append(f"{len(theirs)} bytes")
    return "; ".join(out) or "differs"


def _fdt_facts(expect: Expectation, dump: GuestDump) -> list[Fact]:
    data = dump.files.get(FDT)
    if expect.dtb is None:
        return []
    if data is None:
        return [Fact("FDT", "/sys/firmware/fdt", False, f"{len(expect.dtb)} bytes", "missing")]
    if data == expect.dtb:
        return [Fact("FDT", "/sys/firmware/fdt", True, f"{len(data)} bytes", "identical")]
    facts = [Fact("FDT", "/sys/firmware/fdt", False, f"{len(expect.dtb)} bytes", "differs")]
    try:
        theirs = decoded_tree(read_fdt(data))
    except VmLayoutError as error:
        return [*facts, Fact("FDT", "decoded", False, "a device tree", error.message)]
    ours = decoded_tree(read_fdt(expect.dtb))
    for path in sorted(set(ours) | set(theirs)):
        a, b = ours.get(path), theirs.get(path)
        if a is None or b is None:
            facts.append(
                Fact("FDT", path, False, "node" if a else "no node", "node" if b else "missing")
            )
            continue
        for prop in sorted(set(a) | set(b)):
            if a.get(prop) != b.get(prop):
                facts.append(
                    Fact(
                        "FDT", f"{path}:{prop}", False, a.get(prop, "absent"), b.get(prop, "absent")
                    )
                )
    return facts


def _memmap_facts(expect: Expectation, dump: GuestDump) -> list[Fact]:
    seen = guest_memmap(dump)
    if seen is None:
        return [Fact("memmap", "/sys/firmware/memmap", False, "the E820", "missing")]
    return _range_facts("memmap", linux_e820(expect.e820), seen)


def _range_facts(
    view: str, expected: Sequence[tuple[int, int, str]], seen: Sequence[tuple[int, int, str]]
) -> list[Fact]:
    facts = []
    remaining = list(seen)
    for entry in expected:
        name = f"{entry[2]} {span_text(entry[:2])}"
        if entry in remaining:
            remaining.remove(entry)
            facts.append(Fact(view, name, True, "present", "present"))
        else:
            near = [s for s in remaining if s[0] < entry[1] and entry[0] < s[1]]
            shown = ", ".join(f"{s[2]} {span_text(s[:2])}" for s in near) or "absent"
            facts.append(Fact(view, name, False, "present", shown))
    for extra in remaining:
        facts.append(Fact(view, f"{extra[2]} {span_text(extra[:2])}", False, "absent", "present"))
    return facts


def _iomem_facts(expect: Expectation, dump: GuestDump) -> list[Fact]:
    lines = guest_iomem(dump)
    if lines is None:
        return [Fact("iomem", "/proc/iomem", False, "the memory map", "missing")]
    arch = expect.resolved.arch.value
    if arch == "x86_64":
        kinds = set(E820_LINUX_NAMES.values())
        expected = linux_iomem_e820(expect.e820)
        seen = merge_touching((s, e, n) for d, s, e, n in lines if d == 0 and n in kinds)
    else:
        ram = [
            (r.range.start, r.range.end, "System RAM") for r in expect.resolved.memory_layout.ram
        ]
        expected = merge_touching(ram)
        seen = merge_touching((s, e, n) for d, s, e, n in lines if d == 0 and n == "System RAM")
    facts = _range_facts("iomem", expected, seen)
    bridges = merge_touching(
        (s, e, "host bridge") for _, s, e, n in lines if n.startswith(HOST_BRIDGE_NAMES)
    )
    expected_bridges = merge_touching((*w, "host bridge") for w in expect.bridge_windows)
    facts += _range_facts("iomem", expected_bridges, bridges)
    ecam = [
        (rc.ecam.start, rc.ecam.end, ecam_name(rc, arch))
        for rc in expect.resolved.pcie_root_complexes
    ]
    seen_ecam = [(s, e, n) for _, s, e, n in lines if n.startswith(ECAM_NAMES)]
    facts += _range_facts("iomem", ecam, seen_ecam)
    return facts


def ecam_name(rc: Any, arch: str) -> str:
    """How Linux names a root complex's ECAM in /proc/iomem (x86 from the MCFG, arm64
    from the tree's host bridge)."""
    if arch == "aarch64":
        return "PCI ECAM"
    return f"PCI MMCONFIG {rc.segment:04x} [bus {rc.start_bus:02x}-{rc.end_bus:02x}]"


def _node_memory(expect: Expectation) -> dict[int, list[Span]]:
    out: dict[int, list[Span]] = {}
    for r in expect.resolved.memory_layout.ram:
        start = (
            max(r.range.start, PAGE_SIZE)
            if expect.resolved.arch.value == "x86_64"
            else r.range.start
        )
        out.setdefault(r.vnode, []).append((start, r.range.end))
    return out


def _numa_facts(expect: Expectation, dump: GuestDump) -> list[Fact]:
    nodes = guest_nodes(dump)
    if not nodes:
        return [Fact("NUMA", "/sys/devices/system/node", False, "NUMA nodes", "missing")]
    memory = _node_memory(expect)
    count = len(expect.resolved.config.node_mem_sizes)
    cpus: dict[int, list[int]] = {}
    for vp, node in enumerate(expect.vp_vnodes):
        cpus.setdefault(node, []).append(vp)
    online = [n for n in range(count) if n in memory or n in cpus]
    matrix = _distances(expect.resolved.config, count)
    spans = {
        int(m[1]): (int(m[2], 16), int(m[3], 16) + 1)
        for m in INITMEM.finditer(dump.text(DMESG) or "")
    }
    facts = []
    for node in online:
        name = f"node{node}"
        seen = nodes.pop(node, None)
        if seen is None:
            facts.append(Fact("NUMA", name, False, "online", "absent"))
            continue
        want_cpus = tuple(cpus.get(node, ()))
        got_cpus = cpu_list(seen.get("cpulist", ""), f"{name}/cpulist")
        facts.append(
            Fact("NUMA", f"{name} CPUs", want_cpus == got_cpus, _cpus(want_cpus), _cpus(got_cpus))
        )
        want_row = " ".join(str(matrix[node][other]) for other in online)
        got_row = " ".join(seen.get("distance", "").split())
        facts.append(
            Fact("NUMA", f"{name} distances", want_row == got_row, want_row, got_row or "missing")
        )
        ranges = memory.get(node, [])
        want_span = (ranges[0][0], ranges[-1][1]) if ranges else None
        got_span = spans.get(node)
        if want_span is not None or got_span is not None:
            facts.append(
                Fact(
                    "NUMA",
                    f"{name} memory",
                    want_span == got_span,
                    span_text(want_span) if want_span else "none",
                    span_text(got_span) if got_span else "none (no Initmem line in dmesg.txt)",
                )
            )
    for node in sorted(nodes):
        facts.append(Fact("NUMA", f"node{node}", False, "no such node", "online"))
    return facts


def _distances(config: Any, count: int) -> list[list[int]]:
    """SLIT semantics: 10 local, 20 remote, then the configured overrides."""
    matrix = [[10 if i == j else 20 for j in range(count)] for i in range(count)]
    for src, dst, distance in config.numa_distances:
        matrix[src][dst] = distance
    return matrix


def _cpus(cpus: Sequence[int]) -> str:
    return ",".join(map(str, cpus)) if cpus else "none"


def _cpu_facts(expect: Expectation, dump: GuestDump) -> list[Fact]:
    want = tuple(range(expect.vp_count))
    facts = []
    for what in ("online", "possible", "present"):
        text = dump.text(f"sys/devices/system/cpu/{what}")
        got = cpu_list(text, f"cpu/{what}") if text is not None else None
        shown = _cpus(got) if got is not None else "missing"
        facts.append(Fact("CPUs", what, got == want, _cpus(want), shown))
    return facts


def _pci_facts(expect: Expectation, dump: GuestDump) -> list[Fact]:
    facts = []
    for path, data in sorted(dump.under("sys/bus/pci/devices").items()):
        m = re.fullmatch(r"([0-9a-f]{4,}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])/resource", path)
        if not m:
            continue
        segment, bus = int(m[1], 16), int(m[2], 16)
        windows = [w for w, first, last in expect.windows.get(segment, ()) if first <= bus <= last]
        device = path.rsplit("/", 1)[0]
        lines = data.decode("utf-8", "replace").splitlines()[:PCI_BAR_ENTRIES]
        for index, line in enumerate(lines):
            fields = line.split()
            if len(fields) != 3:
                continue
            start, end, flags = (_int(f, f"{device}/resource") for f in fields)
            if not flags & IORESOURCE_MEM or end <= start:
                continue
            if index == PCI_ROM_ENTRY and flags & IORESOURCE_ROM_SHADOW:
                continue  # the legacy VGA ROM image at 0xC0000, not a BAR the OS placed
            bar = (start, end + 1)
            inside = any(w[0] <= bar[0] and bar[1] <= w[1] for w in windows)
            name = f"{device} {'ROM' if index == PCI_ROM_ENTRY else f'BAR{index}'} {span_text(bar)}"
            shown = ", ".join(span_text(w) for w in windows) or "no window for this bus"
            facts.append(
                Fact("PCI", name, inside, f"inside {shown}", "inside" if inside else "outside")
            )
    return facts


def _dmesg_facts(expect: Expectation, dump: GuestDump) -> list[Fact]:
    text = dump.text(DMESG)
    if text is None:
        return [Fact("dmesg", DMESG, False, "the kernel log", "missing")]
    nodes = len(expect.resolved.config.node_mem_sizes)
    found = findings_in_log(text, numa_nodes=nodes)
    facts = [Fact("dmesg", f.finding.key, False, "not logged", f.line, counts=False) for f in found]
    if not found:
        facts.append(Fact("dmesg", "known findings", True, f"none of {len(FINDINGS)}", "none"))
    return facts


# --- output ---------------------------------------------------------------------------------


def facts_table(facts: Sequence[Fact], arch: str) -> str:
    width = max((len(f.view) for f in facts), default=4)
    lines = [f"normalised as Linux does: {'; '.join(NORMALISATIONS[arch])}"]
    for f in facts:
        mark = "✓" if f.ok else ("✗" if f.counts else "!")
        detail = f"expected {f.expected}, seen {f.seen}" if not f.ok else f.seen
        lines.append(f"{mark} {f.view:<{width}}  {f.name}  ({detail})")
    bad = sum(f.mismatch for f in facts)
    warnings = sum(not f.ok and not f.counts for f in facts)
    verdict = "the guest saw the layout" if not bad else "the guest did not see the layout"
    counted = len(facts) - warnings
    note = f" ({warnings} warning(s) marked !)" if warnings else ""
    lines.append(f"{counted - bad} of {counted} facts match{note}: {verdict}")
    return "\n".join(lines) + "\n"


def facts_json(facts: Sequence[Fact], arch: str) -> dict[str, Any]:
    return {
        "match": not any(f.mismatch for f in facts),
        "normalised": list(NORMALISATIONS[arch]),
        "facts": [
            {
                "view": f.view,
                "fact": f.name,
                "ok": f.ok,
                "warning": not f.ok and not f.counts,
                "expected": f.expected,
                "seen": f.seen,
            }
            for f in facts
        ],
    }
