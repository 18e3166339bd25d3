"""The boot harness's own formats, checked without QEMU: a wrong zero page, initramfs or
arm64 stub would otherwise only show as a guest that never reports back."""

from __future__ import annotations

import struct
from pathlib import Path

from tests.boot.harness import (
    BOOT_PARAMS,
    CMDLINE,
    aarch64_stub,
    acpi_blob,
    newc_cpio,
    zero_page,
)


def _bzimage(setup_sects: int = 3, version: int = 0x20F) -> bytes:
    """A bzImage-shaped file: setup sectors, then the protected-mode kernel."""
    image = bytearray((setup_sects + 1) * 512 + 64)
    image[0x1F1] = setup_sects
    image[0x200:0x202] = bytes((0xEB, 0x66))  # jmp: the header ends at 0x202 + 0x66
    image[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", image, 0x206, version)
    struct.pack_into("<I", image, 0x238, 2048)  # cmdline_size
    image[(setup_sects + 1) * 512 :] = b"K" * 64
    return bytes(image)


def test_zero_page_fields_follow_the_boot_protocol() -> None:
    """Documentation/arch/x86/zero-page.rst and boot.rst offsets."""
    e820 = struct.pack("<QQI", 0, 0x9_F000, 1) + struct.pack("<QQI", 0x10_0000, 0x3FF0_0000, 1)
    page, kernel = zero_page(_bzimage(), b"console=ttyS0\0", (0x3000_0000, 1234), e820, 0x18000)
    assert len(page) == 4096 and kernel == b"K" * 64
    assert page[0x202:0x206] == b"HdrS"  # the setup header is copied
    assert struct.unpack_from("<Q", page, 0x070)[0] == 0x18000  # acpi_rsdp_addr
    assert page[0x1E8] == 2  # e820_entries
    assert page[0x2D0 : 0x2D0 + 40] == e820
    assert page[0x210] == 0xFF  # type_of_loader: undefined
    assert struct.unpack_from("<II", page, 0x218) == (0x3000_0000, 1234)  # ramdisk
    assert struct.unpack_from("<I", page, 0x228)[0] == CMDLINE
    assert page[0x1EF] == 0  # sentinel untouched
    assert BOOT_PARAMS["e820_table"][0] == 0x2D0


def test_newc_archive_layout() -> None:
    """newc: "070701", 13 eight-digit hex fields, the NUL-terminated name, data, each
    padded to 4 bytes, ending in TRAILER!!!."""
    archive = newc_cpio([("init", 0o100755, b"#!/bin/sh\n")])
    assert archive.startswith(b"070701")
    header = archive[6 : 6 + 13 * 8]
    fields = [int(header[i : i + 8], 16) for i in range(0, len(header), 8)]
    assert fields[1] == 0o100755 and fields[6] == 10 and fields[11] == len("init") + 1
    name_at = 6 + 13 * 8
    assert archive[name_at : name_at + 5] == b"init\0"
    data_at = name_at + 5 + (-(name_at + 5) % 4)
    assert archive[data_at : data_at + 10] == b"#!/bin/sh\n"
    assert b"TRAILER!!!\0" in archive and len(archive) % 4 == 0


def test_aarch64_stub_encodings() -> None:
    """MOVZ (64-bit, hw=1) and B, as the ARM ARM encodes them."""
    stub = aarch64_stub(0x4020_0000, 0x4030_0000, 0x4400_0000)
    movz, branch = struct.unpack("<II", stub)
    assert movz == 0xD2A8_0400  # movz x0, #0x4020, lsl #16
    assert branch == 0x1400_0000 | ((0x4400_0000 - 0x4030_0004) >> 2)


def test_acpi_blob_puts_the_tables_where_the_xsdt_says(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('node_mem_sizes = ["1 GiB"]\n')
    blob, rsdp = acpi_blob(config, ())
    assert rsdp == 0x18000 and blob[:8] == b"RSD PTR "
    xsdt_at = struct.unpack_from("<Q", blob, 24)[0] - rsdp
    assert blob[xsdt_at : xsdt_at + 4] == b"XSDT"
    count = (struct.unpack_from("<I", blob, xsdt_at + 4)[0] - 36) // 8
    for address in struct.unpack_from(f"<{count}Q", blob, xsdt_at + 36):
        length = struct.unpack_from("<I", blob, address - rsdp + 4)[0]
        table = blob[address - rsdp : address - rsdp + length]
        assert sum(table) % 256 == 0  # every listed table is whole where it is listed
