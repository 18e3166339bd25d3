"""Boot Linux under QEMU (TCG) on vmlayout's artifacts, run `vmlayout probe`'s script in a
busybox initramfs, and bring the guest's tarball back over the serial console.

The boot follows a VMM's Linux direct boot rather than a BIOS's, so that the guest sees
exactly vmlayout's views and nothing QEMU would add:

- x86_64: the zero page (`struct boot_params`, Linux x86 boot protocol, 32-bit entry) is
  built here from the bzImage's setup header, `emit e820` and the RSDP address. QEMU
  loads kernel, initrd, command line, zero page and the ACPI blob raw
  (`-device loader,force-raw=on`); `-machine …,acpi=off` keeps QEMU's own tables out. The
  firmware is a 64 KiB stub assembled with GNU as/ld/objcopy: it opens the PAM registers
  (RAM below 1 MiB, where Linux puts its AP trampoline), on q35 points PCIEXBAR at the
  layout's segment-0 ECAM, loads a flat GDT (selectors 0x10/0x18), enters protected mode
  and jumps to 0x100000 with %esi = zero page. (SeaBIOS clears 0x7000-0x90000 before it
  boots; qboot brings its own E820.)
- aarch64: `-kernel`/`-dtb` would make QEMU rewrite the tree, so the DTB, initrd and
  Image are loaded raw and a 2-instruction stub (x0 = DTB, branch to the Image) starts
  CPU 0. The GIC platform is QEMU virt's, given to vmlayout as options
  (`VIRT_GIC_OPTIONS`).

The guest's init runs the probe script and writes the tarball to the kernel log
(`/dev/kmsg`, which every console shows, even an earlycon) as base64 lines between
markers, then reboots; `-no-reboot` ends QEMU. A boot is time-boxed; its serial log is
kept next to the tarball so a failure can be read.
"""

from __future__ import annotations

import base64
import contextlib
import io
import itertools
import os
import re
import shutil
import struct
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from vmlayout.cli import main as vmlayout_main
from vmlayout.inspect.probe import probe_script

HERE = Path(__file__).resolve().parent
#: Where `fetch.sh` unpacks kernels and busybox.
CACHE = Path(os.environ.get("VMLAYOUT_BOOT_CACHE", HERE / ".cache"))
KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30

#: QEMU virt's GICv3 platform, as vmlayout options (every emit and verify gets them).
VIRT_GIC_OPTIONS = (
    "--gic-distributor-base", "0x08000000",
    "--gic-redistributors-base", "0x080A0000",
    "--gic-its-base", "0x08080000",
    "--timer-ppi", "27",
    "--gic-interrupts", "256",
)  # fmt: skip
#: QEMU virt's RAM starts here; an aarch64 boot config sets ram_start_address to it.
VIRT_RAM_START = 1 * GIB
VIRT_UART = 0x0900_0000

BEGIN, END = "VMLAYOUT-GUEST-BEGIN", "VMLAYOUT-GUEST-END"
LINE_PREFIX = "VMLB64:"
#: Seconds one boot may take before it is stopped (TCG boots take 5-16 s here).
BOOT_TIMEOUT_S = float(os.environ.get("VMLAYOUT_BOOT_TIMEOUT", "120"))


def require(condition: bool, what: str) -> None:
    """Boot tests need QEMU and the kernels: fail under CI=true, skip otherwise."""
    if condition:
        return
    message = f"{what} (run tests/boot/fetch.sh)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"boot tests need {message}")
    pytest.skip(f"missing {message}")


@dataclass(frozen=True, slots=True)
class Arch:
    name: str
    qemu: str
    kernel: Path
    busybox: Path


ARCHES = {
    "x86_64": Arch(
        "x86_64", "qemu-system-x86_64", CACHE / "x86_64/bzImage", CACHE / "x86_64/busybox"
    ),
    "aarch64": Arch(
        "aarch64", "qemu-system-aarch64", CACHE / "aarch64/vmlinuz", CACHE / "aarch64/busybox"
    ),
}


def require_arch(arch: str) -> Arch:
    a = ARCHES[arch]
    require(shutil.which(a.qemu) is not None, a.qemu)
    if arch == "x86_64":
        for tool in ("as", "ld", "objcopy"):
            require(shutil.which(tool) is not None, f"GNU {tool}")
    require(a.kernel.is_file() and a.busybox.is_file(), f"{arch} kernel and busybox in {CACHE}")
    return a


# --- running vmlayout in-process, as a user's command line ----------------------------


_CLI_LOCK = threading.Lock()


def vmlayout(*argv: str | Path) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `vmlayout ARGV`, run in this process."""
    out, err = io.StringIO(), io.StringIO()
    # stdout redirection is process-wide: boots run in threads, one CLI call at a time
    with _CLI_LOCK, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = vmlayout_main([str(a) for a in argv])
        except SystemExit as exit_:
            status = int(exit_.code or 0)
    return status, out.getvalue(), err.getvalue()


def vmlayout_ok(*argv: str | Path) -> str:
    status, out, err = vmlayout(*argv)
    assert status == 0, (argv, status, out, err)
    return out


# --- initramfs ----------------------------------------------------------------------------

#: The `newc` header: magic, then 13 fields of 8 hex digits each, in this order.
CPIO_FIELDS = (
    "ino", "mode", "uid", "gid", "nlink", "mtime", "size",
    "devmajor", "devminor", "rdevmajor", "rdevminor", "namesize", "check",
)  # fmt: skip


def _pad4(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


def newc_cpio(entries: Sequence[tuple[str, int, bytes]]) -> bytes:
    """A `newc` cpio archive (the initramfs format) of (path, mode, data) entries; a mode
    with S_IFDIR is a directory. Written here so the harness needs no cpio binary."""
    out = bytearray()
    for ino, (name, mode, data) in enumerate([*entries, ("TRAILER!!!", 0, b"")], start=1):
        fields = {
            "ino": ino, "mode": mode, "uid": 0, "gid": 0, "nlink": 1, "mtime": 0,
            "size": len(data), "devmajor": 0, "devminor": 0, "rdevmajor": 0, "rdevminor": 0,
            "namesize": len(name) + 1, "check": 0,
        }  # fmt: skip
        header = ("070701" + "".join(f"{fields[f]:08x}" for f in CPIO_FIELDS)).encode()
        out += _pad4(header + name.encode() + b"\0")
        out += _pad4(data)
    return bytes(out)


INIT_SCRIPT = f"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev /tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for try in 1 2; do
  sh /probe.sh /tmp/guest.tar.gz >/dev/kmsg 2>&1
  status=$?
  echo "probe exit status $status, $(wc -c < /tmp/guest.tar.gz) bytes" > /dev/kmsg
  [ "$status" = 0 ] && [ -s /tmp/guest.tar.gz ] && break
done
{{
  echo "{BEGIN}"
  base64 -w 768 /tmp/guest.tar.gz | while read -r line; do echo "{LINE_PREFIX}$line"; done
  echo "{END}"
}} | while read -r line; do echo "$line" > /dev/kmsg; done
sync
reboot -f
"""


def initramfs(arch: Arch) -> bytes:
    """busybox, the probe script (`vmlayout probe`) and an init that ships the result."""
    # the library's script (what `vmlayout probe` prints): boots build this in worker
    # threads, where pytest's capture may swap sys.stdout under a redirection
    probe = probe_script().encode()
    return newc_cpio(
        [
            ("bin", 0o040755, b""),
            ("bin/busybox", 0o100755, arch.busybox.read_bytes()),
            ("init", 0o100755, INIT_SCRIPT.encode()),
            ("probe.sh", 0o100755, probe),
        ]
    )


# --- x86_64: zero page and firmware stub ---------------------------------------------------

#: Guest addresses of the x86 boot (all in RAM below the E820's ACPI area or at 1 MiB).
ZERO_PAGE = 0x7000
CMDLINE = 0x8000
KERNEL = 0x10_0000
INITRD_CEILING = 0x3800_0000

#: `struct boot_params` fields written here: (offset, struct format) per name
#: (Documentation/arch/x86/boot.rst and zero-page.rst).
BOOT_PARAMS = {
    "acpi_rsdp_addr": (0x070, "<Q"),
    "e820_entries": (0x1E8, "<B"),
    "setup_sects": (0x1F1, "<B"),
    "vid_mode": (0x1FA, "<H"),
    "jump": (0x200, "<H"),
    "header": (0x202, "<4s"),
    "version": (0x206, "<H"),
    "type_of_loader": (0x210, "<B"),
    "loadflags": (0x211, "<B"),
    "ramdisk_image": (0x218, "<I"),
    "ramdisk_size": (0x21C, "<I"),
    "cmd_line_ptr": (0x228, "<I"),
    "initrd_addr_max": (0x22C, "<I"),
    "cmdline_size": (0x238, "<I"),
    "e820_table": (0x2D0, "<2560s"),
}
SETUP_HEADER_START = 0x1F1


def _get(buf: bytes, field: str) -> int | bytes:
    offset, fmt = BOOT_PARAMS[field]
    value: int | bytes = struct.unpack_from(fmt, buf, offset)[0]
    return value


def _put(buf: bytearray, field: str, value: int | bytes) -> None:
    offset, fmt = BOOT_PARAMS[field]
    struct.pack_into(fmt, buf, offset, value)


def zero_page(
    bzimage: bytes, cmdline: bytes, initrd: tuple[int, int], e820: bytes, rsdp: int
) -> tuple[bytes, bytes]:
    """(zero page, protected-mode kernel) for a 32-bit-entry direct boot."""
    assert _get(bzimage, "header") == b"HdrS", "not a bzImage"
    version = _get(bzimage, "version")
    assert isinstance(version, int) and version >= 0x20E, "boot protocol < 2.14"
    jump = _get(bzimage, "jump")
    assert isinstance(jump, int)
    header_end = 0x202 + (jump >> 8)  # the setup header ends where its jump lands
    page = bytearray(4096)
    page[SETUP_HEADER_START:header_end] = bzimage[SETUP_HEADER_START:header_end]
    sects = _get(bzimage, "setup_sects")
    assert isinstance(sects, int)
    kernel = bzimage[((sects or 4) + 1) * 512 :]
    limit = _get(bzimage, "cmdline_size")
    assert isinstance(limit, int) and len(cmdline) < limit
    _put(page, "vid_mode", 0xFFFF)
    _put(page, "type_of_loader", 0xFF)
    _put(page, "ramdisk_image", initrd[0])
    _put(page, "ramdisk_size", initrd[1])
    _put(page, "cmd_line_ptr", CMDLINE)
    _put(page, "acpi_rsdp_addr", rsdp)
    assert len(e820) % 20 == 0 and len(e820) <= 2560
    _put(page, "e820_entries", len(e820) // 20)
    _put(page, "e820_table", e820)
    return bytes(page), kernel


STUB_SOURCE = r"""
    .code16
    .text
rom:
    /* an SMBIOS blob laid out at 0xF0000 (where this 64 KiB ROM also appears), or nothing */
    SMBIOS_INCLUDE
    .p2align 4
    .globl _start
.macro pci_write8 reg, val
    movl $(0x80000000 | ((\reg) & 0xfc)), %eax
    movw $0xcf8, %dx
    outl %eax, %dx
    movw $(0xcfc + ((\reg) & 3)), %dx
    movb $(\val), %al
    outb %al, %dx
.endm
.macro pci_write32 reg, val
    movl $(0x80000000 | (\reg)), %eax
    movw $0xcf8, %dx
    outl %eax, %dx
    movw $0xcfc, %dx
    movl $(\val), %eax
    outl %eax, %dx
.endm
_start:
    cli
    cld
    /* PAM1..PAM6: read/write RAM in [0xC0000, 0xF0000); 0xF0000 stays this ROM */
    pci_write8 PAM+1, 0x33
    pci_write8 PAM+2, 0x33
    pci_write8 PAM+3, 0x33
    pci_write8 PAM+4, 0x33
    pci_write8 PAM+5, 0x33
    pci_write8 PAM+6, 0x33
.if Q35
    pci_write32 0x64, PCIEXBAR_HI
    pci_write32 0x60, PCIEXBAR_LO
.endif
    lgdtl %cs:(gdt_desc - rom)
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmpl $0x10, $pm32
    .code32
pm32:
    movw $0x18, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movw %ax, %ss
    movl $ZERO_PAGE, %esi
    xorl %ebp, %ebp
    xorl %edi, %edi
    xorl %ebx, %ebx
    movl $KERNEL, %eax
    jmp *%eax
    .p2align 3
gdt:
    .quad 0, 0, 0x00cf9a000000ffff, 0x00cf92000000ffff
gdt_end:
gdt_desc:
    .word gdt_end - gdt - 1
    .long gdt
    .org 0xfff0
    .code16
    jmp _start
    .org 0x10000
"""
#: PAM0 in the host bridge's config space: i440FX (pc) and Q35 MCH.
PAM_REGISTER = {"pc": 0x59, "q35": 0x90}
#: Q35 PCIEXBAR length field: 256, 128 or 64 MiB of ECAM (bits 2:1), and enable (bit 0).
PCIEXBAR_LENGTH = {256 * MIB: 0b000, 128 * MIB: 0b010, 64 * MIB: 0b100}


def x86_stub(
    work: Path, machine: str, ecam: tuple[int, int] | None, smbios: bytes | None = None
) -> Path:
    """The firmware stub for `machine`, PCIEXBAR at `ecam` (start, size) on q35, and an
    SMBIOS blob (built for 0xF0000) at the ROM's start."""
    symbols = {"PAM": PAM_REGISTER[machine], "ZERO_PAGE": ZERO_PAGE, "KERNEL": KERNEL, "Q35": 0}
    if machine == "q35" and ecam is not None:
        start, size = ecam
        symbols |= {
            "Q35": 1,
            "PCIEXBAR_LO": (start & 0xFFFF_FFFF) | PCIEXBAR_LENGTH[size] | 1,
            "PCIEXBAR_HI": start >> 32,
        }
    source, obj, elf, out = (work / f"stub.{ext}" for ext in ("S", "o", "elf", "bin"))
    include = ""
    if smbios is not None:
        (work / "smbios.bin").write_bytes(smbios)
        include = f'.incbin "{work / "smbios.bin"}"'
    source.write_text(STUB_SOURCE.replace("SMBIOS_INCLUDE", include))
    defsyms = [arg for k, v in symbols.items() for arg in ("--defsym", f"{k}={v:#x}")]
    for cmd in (
        ["as", "--32", *defsyms, "-o", obj, source],
        ["ld", "-m", "elf_i386", "-Ttext=0xffff0000", "-e", "_start", "-o", elf, obj],
        ["objcopy", "-O", "binary", elf, out],
    ):
        subprocess.run([str(c) for c in cmd], check=True, capture_output=True, timeout=60)
    assert out.stat().st_size == 64 * KIB
    return out


def acpi_blob(config: Path, options: Sequence[str]) -> tuple[bytes, int]:
    """(RSDP page + tables as laid out in memory, RSDP address): the tables `emit acpi
    CONFIG OPTIONS` writes, in the order `build_acpi_tables` appends them."""
    from vmlayout.acpi.dsdt import build_acpi_tables
    from vmlayout.cli import build_parser
    from vmlayout.commands import resolve_from_args

    args = build_parser().parse_args(["emit", "acpi", str(config), "-o", "-", *options])
    files = build_acpi_tables(resolve_from_args(args))
    blob = bytearray()
    for name, table in files.items():
        if name != "RSDP.bin":
            blob += table + bytes(-len(table) % 8)
    rsdp = files["RSDP.bin"]
    xsdt_address = struct.unpack_from("<Q", rsdp, 24)[0]
    rsdp_address = (
        xsdt_address - (len(blob) - len(files["XSDT.aml"]) - (-len(files["XSDT.aml"]) % 8)) - 4096
    )
    assert rsdp_address % 4096 == 0
    return rsdp.ljust(4096, b"\0") + bytes(blob), rsdp_address


# --- running one boot ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Boot:
    """One finished boot: the guest's tarball (None when none came back) and its log."""

    tarball: Path | None
    serial_log: Path
    elapsed_s: float

    def explain(self) -> str:
        text = self.serial_log.read_text(errors="replace") if self.serial_log.exists() else ""
        tail = "\n".join(text.splitlines()[-60:])
        return (
            f"no guest tarball after {self.elapsed_s:.0f} s; serial log {self.serial_log}:\n{tail}"
        )


def run_qemu(command: Sequence[str], work: Path) -> Boot:
    """Run QEMU with its serial console in `work/serial.log` until the guest's end
    marker, its exit, or the time box; then decode the tarball between the markers."""
    log = work / "serial.log"
    started = time.monotonic()
    with open(work / "qemu.stderr", "wb") as stderr:
        process = subprocess.Popen(
            [*command, "-serial", f"file:{log}"],
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
        )
        try:
            while process.poll() is None and time.monotonic() - started < BOOT_TIMEOUT_S:
                if log.exists() and END.encode() in log.read_bytes():
                    break
                time.sleep(0.25)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    elapsed = time.monotonic() - started
    text = log.read_text(errors="replace") if log.exists() else ""
    found = re.findall(rf"{LINE_PREFIX}([A-Za-z0-9+/=]+)", text)
    if END not in text or not found:
        return Boot(None, log, elapsed)
    tarball = work / "guest.tar.gz"
    tarball.write_bytes(base64.b64decode("".join(found)))
    return Boot(tarball, log, elapsed)


def resolved_of(config: Path) -> Any:
    from vmlayout.config import load_config
    from vmlayout.policy import resolve

    return resolve(load_config(str(config)))


def ram_ranges(config: Path) -> list[tuple[int, int]]:
    return [(r.range.start, r.range.end) for r in resolved_of(config).memory_layout.ram]


def boot_x86(
    config: Path,
    options: Sequence[str],
    work: Path,
    machine: str,
    vps_per_socket: int,
    smbios: Sequence[str] | None = None,
) -> Boot:
    """Boot `config` on QEMU `machine` (pc or q35) with vmlayout's ACPI and E820, and
    with `smbios` (options of `emit smbios`) its SMBIOS in the firmware ROM."""
    arch = require_arch("x86_64")
    vmlayout_ok("emit", "acpi", config, "-o", work / "acpi", *options)
    blob, rsdp = acpi_blob(config, options)
    acpi_len = len(blob) - 4096
    vmlayout_ok("emit", "e820", config, "--acpi-len", str(acpi_len), "-o", work / "e820.bin")
    ram = ram_ranges(config)
    initrd = initramfs(arch)
    low_end = max(end for start, end in ram if start < 4 * GIB)
    initrd_at = (min(low_end, INITRD_CEILING) - len(initrd)) & ~0xFFFFF
    cmdline = b"console=ttyS0,115200 nokaslr panic=-1 printk.devkmsg=on rdinit=/init\0"
    page, kernel = zero_page(
        arch.kernel.read_bytes(),
        cmdline,
        (initrd_at, len(initrd)),
        (work / "e820.bin").read_bytes(),
        rsdp,
    )
    files = {
        "zeropage.bin": (page, ZERO_PAGE),
        "cmdline.bin": (cmdline, CMDLINE),
        "kernel.bin": (kernel, KERNEL),
        "initrd.bin": (initrd, initrd_at),
        "acpi.bin": (blob, rsdp),
    }
    loaders = []
    for name, (data, address) in files.items():
        (work / name).write_bytes(data)
        loaders += ["-device", f"loader,file={work / name},addr={address:#x},force-raw=on"]
    ecam = _segment0_ecam(config)
    smbios_blob = None
    if smbios is not None:
        vmlayout_ok("emit", "smbios", "-o", work / "smbios.blob", *smbios)
        smbios_blob = (work / "smbios.blob").read_bytes()
    stub = x86_stub(work, machine, ecam, smbios_blob)
    total = sum(end - start for start, end in ram)
    vp_count = int(_option(options, "--vp-count", "2"))
    machine_opts = f"{machine},acpi=off"
    if any(start >= 4 * GIB for start, _ in ram):
        machine_opts += f",max-ram-below-4g={low_end}"
    command = [
        arch.qemu, "-machine", machine_opts, "-accel", "tcg", "-nodefaults", "-no-reboot",
        "-display", "none", "-monitor", "none", "-bios", str(stub),
        "-m", f"{total // MIB}M",
        "-smp", f"{vp_count},sockets={vp_count // vps_per_socket},cores={vps_per_socket},threads=1",
        *loaders,
    ]  # fmt: skip
    return run_qemu(command, work)


def _option(options: Sequence[str], name: str, default: str) -> str:
    return options[list(options).index(name) + 1] if name in options else default


def _segment0_ecam(config: Path) -> tuple[int, int] | None:
    """The ECAM of segment 0 (start, size), which q35's PCIEXBAR is pointed at."""
    for segment, ecam in resolved_of(config).pci_segments:
        if segment == 0:
            return ecam.start, ecam.size
    return None


def aarch64_stub(dtb: int, stub: int, kernel: int) -> bytes:
    """`movz x0, #(dtb >> 16), lsl #16; b kernel` (A64 encodings, ARM ARM C6)."""
    assert dtb & 0xFFFF == 0 and dtb < 1 << 32
    movz = 0xD2A0_0000 | ((dtb >> 16) << 5)  # sf=1 MOVZ hw=1, Rd=x0
    offset = kernel - (stub + 4)
    assert offset % 4 == 0 and abs(offset) < 1 << 27
    branch = 0x1400_0000 | ((offset >> 2) & 0x3FF_FFFF)
    return struct.pack("<II", movz, branch)


#: Guest offsets from RAM start for the arm64 boot (QEMU keeps its own tree in the first
#: MiB): DTB, stub, Image (2 MiB aligned,
#: above the loader's initrd at RAM + 16 MiB).
DTB_OFFSET, STUB_OFFSET, IMAGE_OFFSET = 2 * MIB, 3 * MIB, 64 * MIB


def aarch64_bootargs() -> str:
    return (
        f"earlycon=pl011,mmio32,{VIRT_UART:#x} keep_bootcon panic=-1 printk.devkmsg=on rdinit=/init"
    )


def boot_aarch64(config: Path, options: Sequence[str], work: Path) -> Boot:
    """Boot `config` on QEMU virt (GICv3) with vmlayout's Linux device tree."""
    import gzip

    arch = require_arch("aarch64")
    initrd = initramfs(arch)
    dtb = work / "linux.dtb"
    vmlayout_ok(
        "emit", "dt-linux", config, "-o", dtb, "--bootargs", aarch64_bootargs(),
        "--initrd-size", str(len(initrd)), *options,
    )  # fmt: skip
    ram = ram_ranges(config)
    start = ram[0][0]
    assert start == VIRT_RAM_START, "an aarch64 boot config needs ram_start_address = 1 GiB"
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ram)), "RAM must be contiguous"
    image = arch.kernel.read_bytes()
    if image[:2] == b"\x1f\x8b":
        image = gzip.decompress(image)
    text_offset = struct.unpack_from("<Q", image, 8)[0]
    kernel_at = start + IMAGE_OFFSET + text_offset
    files = {
        "linux.dtb": (dtb.read_bytes(), start + DTB_OFFSET),
        "initrd.bin": (initrd, start + 16 * MIB),
        "Image": (image, kernel_at),
    }
    loaders = []
    for name, (data, address) in files.items():
        (work / name).write_bytes(data)
        loaders += ["-device", f"loader,file={work / name},addr={address:#x},force-raw=on"]
    stub_at = start + STUB_OFFSET
    (work / "stub.bin").write_bytes(aarch64_stub(start + DTB_OFFSET, stub_at, kernel_at))
    loaders += ["-device", f"loader,file={work / 'stub.bin'},addr={stub_at:#x},cpu-num=0"]
    total = ram[-1][1] - start
    vp_count = int(_option(options, "--vp-count", "1"))
    command = [
        arch.qemu, "-machine", "virt,gic-version=3", "-cpu", "cortex-a57", "-accel", "tcg",
        "-nodefaults", "-no-reboot", "-display", "none", "-monitor", "none",
        "-m", f"{total // MIB}M", "-smp", str(vp_count), *loaders,
    ]  # fmt: skip
    return run_qemu(command, work)
