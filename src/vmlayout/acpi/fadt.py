"""The FADT (signature FACP, revision 6): fixed hardware of the platform. On x86_64
the reference's PM1/PM timer/GPE0 blocks at I/O port 0x400 and SCI IRQ 9; on aarch64
a hardware-reduced, PSCI-over-HVC platform. Both carry the DSDT's address."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar

from vmlayout.acpi.sdt import HEADER, Table, bad, build_table, expect_signature
from vmlayout.arch import Arch, InterruptController
from vmlayout.binfmt import Packed, Struct

GAS = Struct(
    "generic address",
    (
        ("space_id", "B"),
        ("bit_width", "B"),
        ("bit_offset", "B"),
        ("access_size", "B"),
        ("address", "Q"),
    ),
)


class AddressSpace(enum.IntEnum):
    SYSTEM_MEMORY = 0
    SYSTEM_IO = 1


class AccessSize(enum.IntEnum):
    UNDEFINED = 0
    BYTE = 1
    WORD = 2
    DWORD = 3
    QWORD = 4


@dataclass(frozen=True, slots=True)
class GenericAddress(Packed):
    LAYOUT: ClassVar[Struct] = GAS

    space_id: int = 0
    bit_width: int = 0
    bit_offset: int = 0
    access_size: int = 0
    address: int = 0

    @staticmethod
    def io(port: int, bit_width: int, access: AccessSize) -> GenericAddress:
        return GenericAddress(AddressSpace.SYSTEM_IO, bit_width, 0, access, port)


class FadtFlags(enum.IntFlag):
    NONE = 0
    WBINVD = 1 << 0
    WBINVD_FLUSH = 1 << 1
    PROC_C1 = 1 << 2
    P_LVL2_UP = 1 << 3
    PWR_BUTTON = 1 << 4
    SLP_BUTTON = 1 << 5
    FIX_RTC = 1 << 6
    RTC_S4 = 1 << 7
    TMR_VAL_EXT = 1 << 8
    DCK_CAP = 1 << 9
    RESET_REG_SUP = 1 << 10
    SEALED_CASE = 1 << 11
    HEADLESS = 1 << 12
    CPU_SW_SLP = 1 << 13
    PCI_EXP_WAK = 1 << 14
    USE_PLATFORM_CLOCK = 1 << 15
    S4_RTC_STS_VALID = 1 << 16
    REMOTE_POWER_ON_CAPABLE = 1 << 17
    FORCE_APIC_CLUSTER_MODEL = 1 << 18
    FORCE_APIC_PHYSICAL_DESTINATION_MODE = 1 << 19
    HW_REDUCED_ACPI = 1 << 20
    LOW_POWER_S0_IDLE_CAPABLE = 1 << 21


class ArmBootFlags(enum.IntFlag):
    NONE = 0
    PSCI_COMPLIANT = 1 << 0
    PSCI_USE_HVC = 1 << 1


FADT_BODY = Struct(
    "FADT body",
    (
        ("firmware_ctrl", "I"),
        ("dsdt", "I"),
        ("reserved", "B"),
        ("preferred_pm_profile", "B"),
        ("sci_int", "H"),
        ("smi_cmd", "I"),
        ("acpi_enable", "B"),
        ("acpi_disable", "B"),
        ("s4bios_req", "B"),
        ("pstate_cnt", "B"),
        ("pm1a_evt_blk", "I"),
        ("pm1b_evt_blk", "I"),
        ("pm1a_cnt_blk", "I"),
        ("pm1b_cnt_blk", "I"),
        ("pm2_cnt_blk", "I"),
        ("pm_tmr_blk", "I"),
        ("gpe0_blk", "I"),
        ("gpe1_blk", "I"),
        ("pm1_evt_len", "B"),
        ("pm1_cnt_len", "B"),
        ("pm2_cnt_len", "B"),
        ("pm_tmr_len", "B"),
        ("gpe0_blk_len", "B"),
        ("gpe1_blk_len", "B"),
        ("gpe1_base", "B"),
        ("cst_cnt", "B"),
        ("p_lvl2_lat", "H"),
        ("p_lvl3_lat", "H"),
        ("flush_size", "H"),
        ("flush_stride", "H"),
        ("duty_offset", "B"),
        ("duty_width", "B"),
        ("day_alrm", "B"),
        ("mon_alrm", "B"),
        ("century", "B"),
        ("iapc_boot_arch", "H"),
        ("reserved2", "B"),
        ("flags", "I"),
        ("reset_reg", GAS),
        ("reset_value", "B"),
        ("arm_boot_arch", "H"),
        ("minor_version", "B"),
        ("x_firmware_ctrl", "Q"),
        ("x_dsdt", "Q"),
        ("x_pm1a_evt_blk", GAS),
        ("x_pm1b_evt_blk", GAS),
        ("x_pm1a_cnt_blk", GAS),
        ("x_pm1b_cnt_blk", GAS),
        ("x_pm2_cnt_blk", GAS),
        ("x_pm_tmr_blk", GAS),
        ("x_gpe0_blk", GAS),
        ("x_gpe1_blk", GAS),
        ("sleep_control_reg", GAS),
        ("sleep_status_reg", GAS),
        ("hypervisor_vendor_identity", "Q"),
    ),
)
FADT_REVISION = 6
FADT_SIZE = HEADER.size + FADT_BODY.size
_NO_GAS = GenericAddress()


@dataclass(frozen=True, slots=True)
class Fadt(Packed):
    """Every FADT field (ACPI 6.x), zero unless set: what vmlayout writes and reads."""

    LAYOUT: ClassVar[Struct] = FADT_BODY

    firmware_ctrl: int = 0
    dsdt: int = 0
    preferred_pm_profile: int = 0
    sci_int: int = 0
    smi_cmd: int = 0
    acpi_enable: int = 0
    acpi_disable: int = 0
    s4bios_req: int = 0
    pstate_cnt: int = 0
    pm1a_evt_blk: int = 0
    pm1b_evt_blk: int = 0
    pm1a_cnt_blk: int = 0
    pm1b_cnt_blk: int = 0
    pm2_cnt_blk: int = 0
    pm_tmr_blk: int = 0
    gpe0_blk: int = 0
    gpe1_blk: int = 0
    pm1_evt_len: int = 0
    pm1_cnt_len: int = 0
    pm2_cnt_len: int = 0
    pm_tmr_len: int = 0
    gpe0_blk_len: int = 0
    gpe1_blk_len: int = 0
    gpe1_base: int = 0
    cst_cnt: int = 0
    p_lvl2_lat: int = 0
    p_lvl3_lat: int = 0
    flush_size: int = 0
    flush_stride: int = 0
    duty_offset: int = 0
    duty_width: int = 0
    day_alrm: int = 0
    mon_alrm: int = 0
    century: int = 0
    iapc_boot_arch: int = 0
    flags: FadtFlags = FadtFlags.NONE
    reset_reg: GenericAddress = _NO_GAS
    reset_value: int = 0
    arm_boot_arch: ArmBootFlags = ArmBootFlags.NONE
    minor_version: int = 0
    x_firmware_ctrl: int = 0
    x_dsdt: int = 0
    x_pm1a_evt_blk: GenericAddress = _NO_GAS
    x_pm1b_evt_blk: GenericAddress = _NO_GAS
    x_pm1a_cnt_blk: GenericAddress = _NO_GAS
    x_pm1b_cnt_blk: GenericAddress = _NO_GAS
    x_pm2_cnt_blk: GenericAddress = _NO_GAS
    x_pm_tmr_blk: GenericAddress = _NO_GAS
    x_gpe0_blk: GenericAddress = _NO_GAS
    x_gpe1_blk: GenericAddress = _NO_GAS
    sleep_control_reg: GenericAddress = _NO_GAS
    sleep_status_reg: GenericAddress = _NO_GAS
    hypervisor_vendor_identity: int = 0


#: The x86 power-management block base (I/O ports) and SCI, as the reference emulates.
PM_BASE = 0x400
SCI_IRQ = 9
#: Offsets of the PM registers within the PM block.
PM1_EVT_OFFSET, PM1_CNT_OFFSET, PM_TMR_OFFSET, GPE0_OFFSET, RESET_OFFSET = 0, 4, 8, 0xC, 0x33
X86_FLAGS = (
    FadtFlags.WBINVD
    | FadtFlags.PROC_C1
    | FadtFlags.PWR_BUTTON
    | FadtFlags.SLP_BUTTON
    | FadtFlags.RTC_S4
    | FadtFlags.TMR_VAL_EXT
    | FadtFlags.RESET_REG_SUP
    | FadtFlags.USE_PLATFORM_CLOCK
)


def fadt_of(dsdt_gpa: int, arch: Arch, hypervisor_vendor: int = 0) -> Fadt:
    """A hardware-reduced FADT booting by PSCI on a GIC platform, else the x86 PM blocks."""
    if arch.spec.interrupt_controller is InterruptController.GIC:
        return Fadt(
            flags=FadtFlags.HW_REDUCED_ACPI,
            arm_boot_arch=ArmBootFlags.PSCI_COMPLIANT | ArmBootFlags.PSCI_USE_HVC,
            minor_version=3,
            x_dsdt=dsdt_gpa,
            hypervisor_vendor_identity=hypervisor_vendor,
        )
    io = GenericAddress.io
    return Fadt(
        sci_int=SCI_IRQ,
        pm1_evt_len=4,
        pm1_cnt_len=2,
        pm_tmr_len=4,
        gpe0_blk_len=4,
        p_lvl2_lat=101,  # > 100: C2 unsupported
        p_lvl3_lat=1001,  # > 1000: C3 unsupported
        flags=X86_FLAGS,
        reset_reg=io(PM_BASE + RESET_OFFSET, 8, AccessSize.BYTE),
        reset_value=1,
        x_dsdt=dsdt_gpa,
        x_pm1a_evt_blk=io(PM_BASE + PM1_EVT_OFFSET, 32, AccessSize.WORD),
        x_pm1a_cnt_blk=io(PM_BASE + PM1_CNT_OFFSET, 16, AccessSize.WORD),
        x_pm_tmr_blk=io(PM_BASE + PM_TMR_OFFSET, 32, AccessSize.DWORD),
        x_gpe0_blk=io(PM_BASE + GPE0_OFFSET, 32, AccessSize.WORD),
    )


def build_fadt(dsdt_gpa: int, arch: Arch, hypervisor_vendor: int = 0) -> bytes:
    return build_table(b"FACP", FADT_REVISION, fadt_of(dsdt_gpa, arch, hypervisor_vendor).pack())


def decode_fadt(table: Table) -> Fadt:
    expect_signature(table, "FACP")
    if len(table.body) < FADT_BODY.size:
        raise bad("FACP", f"body of {len(table.body)} bytes is shorter than revision 6's")
    return Fadt.unpack(table.body, 0, "FACP")


def summarize_fadt(table: Table) -> dict[str, Any]:
    """Nothing beyond the header is shown; decoding still checks the table's shape."""
    decode_fadt(table)
    return {}
