"""`vmlayout probe`, `vmlayout verify` and `vmlayout check linux` on synthetic guest dumps.

The dumps are what Linux 6.1 showed when it booted the same configs under QEMU
(tests/boot): the /proc/iomem, /sys/firmware/memmap and node files below are copied
from such a boot, not computed by vmlayout, so a match here means vmlayout's
normalisation agrees with the kernel's.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from vmlayout.cli import main
from vmlayout.inspect.probe import PROBE_FILES, probe_script

TWO_NODES = 'node_mem_sizes = ["512 MiB", "512 MiB"]\n'
OPTIONS = ("--vp-count", "2", "--vps-per-socket", "1", "--pic", "--pit")
#: /proc/iomem of Linux 6.1 booted on TWO_NODES (pc, direct boot, vmlayout's E820).
IOMEM = """\
00000000-00000fff : Reserved
00001000-00018fff : System RAM
00019000-00019fff : ACPI Tables
0001a000-0009ffff : System RAM
000e0000-000fffff : Reserved
  000f0000-000fffff : System ROM
00100000-3fffffff : System RAM
  01000000-01e01ef1 : Kernel code
fec00000-fec00fff : PNP0003:00
  fec00000-fec003ff : IOAPIC 0
fee00000-fee00fff : Local APIC
"""
#: /sys/firmware/memmap of the same boot: (start, end inclusive, type).
MEMMAP = (
    ("0x0", "0x18fff", "System RAM"),
    ("0x19000", "0x19fff", "ACPI Tables"),
    ("0x1a000", "0xdffff", "System RAM"),
    ("0xe0000", "0xfffff", "Reserved"),
    ("0x100000", "0x3fffffff", "System RAM"),
)
DMESG = """\
[    0.031950] Initmem setup node 0 [mem 0x0000000000001000-0x000000001fffffff]
[    0.032549] Initmem setup node 1 [mem 0x0000000020000000-0x000000003fffffff]
"""


def run(*argv: str | Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def write_guest(root: Path, capsys: pytest.CaptureFixture[str], config: Path) -> Path:
    """A dump of TWO_NODES as Linux showed it, ACPI tables as `emit acpi` writes them."""
    guest = root / "guest"
    files = {
        "proc/iomem": IOMEM,
        "dmesg.txt": DMESG,
        "sys/devices/system/cpu/online": "0-1\n",
        "sys/devices/system/cpu/possible": "0-1\n",
        "sys/devices/system/cpu/present": "0-1\n",
        "sys/devices/system/node/node0/cpulist": "0\n",
        "sys/devices/system/node/node0/distance": "10 20\n",
        "sys/devices/system/node/node1/cpulist": "1\n",
        "sys/devices/system/node/node1/distance": "20 10\n",
    }
    for n, (start, end, kind) in enumerate(MEMMAP):
        for field, value in (("start", start), ("end", end), ("type", kind)):
            files[f"sys/firmware/memmap/{n}/{field}"] = value + "\n"
    for path, text in files.items():
        (guest / path).parent.mkdir(parents=True, exist_ok=True)
        (guest / path).write_text(text)
    tables = root / "acpi"
    assert run("emit", "acpi", config, "-o", tables, *OPTIONS, capsys=capsys)[0] == 0
    target = guest / "sys/firmware/acpi/tables"
    target.mkdir(parents=True)
    for name in ("DSDT", "FACP", "APIC", "SRAT", "SLIT"):
        shutil.copy(tables / f"{name}.aml", target / name)
    return guest


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "two.toml"
    path.write_text(TWO_NODES)
    return path


@pytest.fixture
def guest(tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    return write_guest(tmp_path, capsys, config)


def tarball(directory: Path, out: Path) -> Path:
    with tarfile.open(out, "w:gz") as archive:
        archive.add(directory, arcname=".")
    return out


def test_probe_prints_a_shell_script(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, out, _ = run("probe", capsys=capsys)
    assert status == 0 and out == probe_script()
    assert out.startswith("#!/bin/sh\n")
    for path in (*PROBE_FILES, "/sys/firmware/acpi/tables", "dmesg.txt"):
        assert path in out
    script = tmp_path / "probe.sh"
    script.write_text(out)
    if shutil.which("sh"):
        subprocess.run(["sh", "-n", str(script)], check=True, timeout=30)


def test_probe_script_collects_under_own_paths(tmp_path: Path) -> None:
    """Run here (any Linux has /proc/cpuinfo): the archive keeps guest paths."""
    script = tmp_path / "probe.sh"
    script.write_text(probe_script())
    out = tmp_path / "out.tar.gz"
    subprocess.run(["sh", str(script), str(out)], check=True, timeout=120, capture_output=True)
    with tarfile.open(out) as archive:
        names = {m.name.removeprefix("./") for m in archive.getmembers() if m.isreg()}
    assert {"proc/cpuinfo", "proc/iomem", "dmesg.txt"} <= names


def test_a_guest_that_saw_the_layout(
    config: Path, guest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run("verify", config, guest, *OPTIONS, capsys=capsys)
    assert (status, err) == (0, ""), out
    assert "✓ ACPI    SRAT  (identical)" in out
    # page 0 reserved and the BIOS area dropped, as Linux shows it
    assert "✓ iomem   Reserved 0x0-0x1000  (present)" in out
    assert "✓ iomem   System RAM 0x1_a000-0xa_0000  (present)" in out
    assert "✓ memmap  System RAM 0x1_a000-0xe_0000  (present)" in out
    assert "✓ NUMA    node1 memory  (0x2000_0000-0x4000_0000)" in out
    assert "normalised as Linux does" in out
    assert out.rstrip().endswith("the guest saw the layout")


def test_a_tarball_is_read_like_its_directory(
    config: Path, guest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = tarball(guest, tmp_path / "guest.tar.gz")
    status, out, _ = run("verify", config, archive, *OPTIONS, "--format", "json", capsys=capsys)
    doc = json.loads(out)
    assert status == 0 and doc["match"] is True
    assert {k: v for k, v in doc["facts"][0].items() if k in ("view", "fact", "ok")} == {
        "view": "ACPI",
        "fact": "DSDT",
        "ok": True,
    }


def test_a_different_config_is_a_mismatch(
    guest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.toml"
    other.write_text('node_mem_sizes = ["256 MiB", "768 MiB"]\n')
    status, out, _ = run("verify", other, guest, *OPTIONS, capsys=capsys)
    assert status == 1
    assert "✗ ACPI    SRAT" in out
    assert "✗ NUMA    node0 memory  (expected 0x1000-0x1000_0000, seen 0x1000-0x2000_0000)" in out
    assert out.rstrip().endswith("the guest did not see the layout")


def test_missing_ram_and_a_changed_table_are_named(
    config: Path, guest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    iomem = guest / "proc/iomem"
    iomem.write_text(
        IOMEM.replace("00100000-3fffffff : System RAM", "00100000-2fffffff : System RAM")
    )
    srat = guest / "sys/firmware/acpi/tables/SRAT"
    data = bytearray(srat.read_bytes())
    data[9] ^= 0xFF  # the checksum byte
    srat.write_bytes(bytes(data))
    status, out, _ = run("verify", config, guest, *OPTIONS, capsys=capsys)
    assert status == 1
    assert "✗ iomem   System RAM 0x10_0000-0x4000_0000  (expected present, seen System RAM " in out
    assert "0x10_0000-0x3000_0000" in out
    assert "✗ ACPI    SRAT  (expected 160 bytes, seen checksum" in out


def test_a_known_linux_message_is_a_warning(
    config: Path, guest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = guest / "dmesg.txt"
    message = "acpi PNP0A03:00: _OSC: platform retains control of PCIe features (AE_TYPE)"
    log.write_text(DMESG + f"[    0.9] {message}\n")
    status, out, _ = run("verify", config, guest, *OPTIONS, capsys=capsys)
    assert status == 0
    assert f"! dmesg   pci0-osc-8-bytes  (expected not logged, seen [    0.9] {message})" in out
    assert "1 warning(s)" in out


def _tar_with(member: tarfile.TarInfo, data: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.addfile(member, io.BytesIO(data) if member.isreg() else None)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "fragment"),
    [("../etc/passwd", "escapes the dump"), ("/proc/iomem", "escapes the dump")],
)
def test_a_hostile_archive_is_bad_input(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, fragment: str
) -> None:
    member = tarfile.TarInfo(name)
    member.size = 3
    path = tmp_path / "bad.tar.gz"
    path.write_bytes(_tar_with(member, b"abc"))
    status, out, err = run("verify", config, path, capsys=capsys)
    assert status == 2 and out == ""
    assert err.startswith("error: invalid_guest: ") and fragment in err
    assert len(err.splitlines()) == 1


def test_links_are_not_followed_and_garbage_is_refused(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link = tarfile.TarInfo("proc/iomem")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    path = tmp_path / "link.tar.gz"
    path.write_bytes(_tar_with(link))
    status, _, err = run("verify", config, path, capsys=capsys)
    assert status == 2 and "holds no files" in err
    path.write_bytes(b"\x1f\x8b" + bytes(100))
    status, _, err = run("verify", config, path, capsys=capsys)
    assert status == 2 and err.startswith("error: invalid_guest: ")


def test_an_arm64_tree_is_compared_byte_for_byte_then_by_property(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "arm.toml"
    config.write_text('arch = "aarch64"\nnode_mem_sizes = ["1 GiB"]\nram_start_address = "1 GiB"\n')
    dtb = tmp_path / "linux.dtb"
    assert (
        run(
            "emit",
            "dt-linux",
            config,
            "-o",
            dtb,
            "--bootargs",
            "quiet",
            "--vp-count",
            "1",
            capsys=capsys,
        )[0]
        == 0
    )
    guest = tmp_path / "guest"
    files = {
        "proc/iomem": "40000000-7fffffff : System RAM\n  44010000-4565ffff : Kernel code\n",
        "dmesg.txt": "NUMA: No NUMA configuration found\n"
        "Initmem setup node 0 [mem 0x0000000040000000-0x000000007fffffff]\n",
        "sys/devices/system/cpu/online": "0\n",
        "sys/devices/system/cpu/possible": "0\n",
        "sys/devices/system/cpu/present": "0\n",
        "sys/devices/system/node/node0/cpulist": "0\n",
        "sys/devices/system/node/node0/distance": "10\n",
    }
    for path, text in files.items():
        (guest / path).parent.mkdir(parents=True, exist_ok=True)
        (guest / path).write_text(text)
    (guest / "sys/firmware").mkdir(parents=True)
    shutil.copy(dtb, guest / "sys/firmware/fdt")
    status, out, _ = run(
        "verify", config, guest, "--bootargs", "quiet", "--vp-count", "1", capsys=capsys
    )
    assert status == 0, out
    assert "✓ FDT    /sys/firmware/fdt  (identical)" in out
    status, out, _ = run(
        "verify", config, guest, "--bootargs", "loud", "--vp-count", "1", capsys=capsys
    )
    assert status == 1
    assert "✗ FDT    /chosen:bootargs  (expected " + b"loud\0".hex() in out


def _findings(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, list[str]]:
    status, out, _ = run("check", "linux", *argv, "--format", "json", capsys=capsys)
    return status, [f["finding"] for f in json.loads(out)["findings"]]


def test_check_linux_names_the_default_vms_findings(capsys: pytest.CaptureFixture[str]) -> None:
    """The built-in VM's rc0 ECAM sits at 0x1_a000_0000 (above 4 GiB), rc0 has no _PRT, and
    the reference's MTRR pair 1 has base 0x800_0000 under a 4 GiB mask (it decodes [0, 4G))."""
    found = ["ecam-above-4g", "root-complex-no-prt", "mtrr-unaligned-pairs"]
    assert _findings(capsys) == (1, found)
    assert _findings(capsys, "--bios-date", "01/01/2010") == (1, found[1:])
    assert _findings(capsys, "--bios-date", "12/31/2009") == (1, found)
    status, out, _ = run("check", "linux", capsys=capsys)
    assert status == 1
    assert "Linux: PCI: MCFG region for 0000 [bus 00-ff] at 0x1a0000000 is above 4GB" in out
    assert "rc0 ECAM at 0x1_a000_0000" in out


def test_check_linux_pci0_findings_and_the_osc_fix(capsys: pytest.CaptureFixture[str]) -> None:
    found = _findings(capsys, "--pci0")[1]
    assert "pci0-osc-8-bytes" in found and "pci0-shadows-root-complex" in found
    found = _findings(capsys, "--pci0", "--pci0-osc", "grant")[1]
    assert "pci0-osc-8-bytes" not in found


def test_check_linux_arm64(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one = tmp_path / "one.toml"
    one.write_text('arch = "aarch64"\nnode_mem_sizes = ["1 GiB"]\n')
    assert _findings(capsys, one) == (0, [])
    two = tmp_path / "two.toml"
    two.write_text(
        'arch = "aarch64"\nnode_mem_sizes = ["1 GiB", "1 GiB"]\n'
        '[[pcie_root_complexes]]\nhigh_mmio = { size = "4 GiB" }\n'
    )
    assert _findings(capsys, two) == (1, ["dt-no-numa", "dt-64bit-non-prefetchable"])
    assert _findings(capsys, two, "--dt-numa", "--dt-prefetchable-high") == (0, [])


def test_emit_smbios_entry_point_and_bios_date(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SMBIOS 3.0 (DSP0134 §5.2.2): `_SM3_`, 24-byte entry point whose bytes sum to 0,
    the table right after it; Type 0's third string is the release date Linux reads."""
    out = tmp_path / "smbios.bin"
    assert run("emit", "smbios", "-o", out, "--bios-date", "03/04/2011", capsys=capsys)[0] == 0
    assert run("emit", "smbios", "-o", tmp_path / "default.bin", capsys=capsys)[0] == 0
    assert b"01/01/2010" in (tmp_path / "default.bin").read_bytes()
    blob = out.read_bytes()
    assert blob[:5] == b"_SM3_" and blob[6] == 24 and sum(blob[:24]) % 256 == 0
    assert int.from_bytes(blob[16:24], "little") == 0xF0000 + 24
    table = blob[24:]
    assert table[0] == 0 and table[8] == 3  # Type 0, release date is string 3
    assert table[table[1] :].split(b"\0")[2] == b"03/04/2011"
    assert table.endswith(b"\x7f\x04\x01\x00\0\0")  # End-of-Table, handle 1
    status, _, err = run("emit", "smbios", "-o", out, "--bios-date", "2011-03-04", capsys=capsys)
    assert status == 2 and err.startswith("error: invalid_argument: --bios-date")


def test_check_linux_follows_the_mtrr_policy(capsys: pytest.CaptureFixture[str]) -> None:
    assert "mtrr-unaligned-pairs" not in _findings(capsys, "--mtrr-policy", "exact")[1]


def test_inspect_of_an_emit_all_set_tells_the_linux_findings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Told after the cross-check, never counted: the set is still consistent (exit 0)."""
    out = tmp_path / "set"
    assert run("emit", "all", "-o", out, capsys=capsys)[0] == 0
    status, text, _ = run("inspect", out, capsys=capsys)
    assert status == 0
    assert "linux: ecam-above-4g: rc0 ECAM at 0x1_a000_0000" in text
    status, text, _ = run("inspect", out, "--format", "json", capsys=capsys)
    keys = [f["finding"] for f in json.loads(text)["linux_findings"]]
    assert keys == ["ecam-above-4g", "root-complex-no-prt", "mtrr-unaligned-pairs"]


def test_bars_are_checked_against_their_bus_windows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --pci0 the chipset windows are PCI0's (bus 0): the low one is
    [0xf800_0000, 4 GiB) for the default 128 MiB low chipset size."""
    config = tmp_path / "two.toml"
    config.write_text(TWO_NODES)
    options = (*OPTIONS, "--pci0")
    guest = tmp_path / "g"
    guest.mkdir()
    base = write_guest(guest, capsys, config)
    tables = guest / "acpi"
    assert run("emit", "acpi", config, "-o", tables, *options, capsys=capsys)[0] == 0
    shutil.copy(tables / "DSDT.aml", base / "sys/firmware/acpi/tables/DSDT")
    (base / "proc/iomem").write_text(
        IOMEM + "f8000000-ffffffff : PCI Bus 0000:00\n100000000-11fffffff : PCI Bus 0000:00\n"
    )
    device = base / "sys/bus/pci/devices/0000:00:02.0"
    device.mkdir(parents=True)
    lines = [
        (0xFD00_0000, 0xFDFF_FFFF, 0x4_2208),  # BAR0, prefetchable memory, inside
        (0, 0, 0),
        (0xE000_0000, 0xE000_0FFF, 0x4_0200),  # BAR2, outside every window
        (0xC000, 0xC01F, 0x4_0101),  # BAR3, I/O: not checked
        (0, 0, 0),
        (0, 0, 0),
        (0xC_0000, 0xD_FFFF, 0x212),  # shadow ROM image: not a BAR
    ]
    (device / "resource").write_text(
        "".join(f"{a:#018x} {b:#018x} {c:#018x}\n" for a, b, c in lines)
    )
    status, out, _ = run("verify", config, base, *options, capsys=capsys)
    assert status == 1, out
    assert "✓ PCI     0000:00:02.0 BAR0 0xfd00_0000-0xfe00_0000  (inside)" in out
    assert "✗ PCI     0000:00:02.0 BAR2 0xe000_0000-0xe000_1000  (expected inside " in out
    assert "BAR3" not in out and "ROM" not in out
    # the two windows touch at 4 GiB and are compared merged
    assert "✓ iomem   host bridge 0xf800_0000-0x1_2000_0000  (present)" in out
