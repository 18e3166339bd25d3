"""The one list of ACPI table kinds vmlayout writes and reads (`TABLES`): signature,
file name, the module declaring its field tables with its encoder and decoder, and
what `inspect` shows of it. Sniffing, `inspect`, stale-table removal and the views
iterate this list; adding a table is a module plus an entry here.

The builders are re-exported for the table-set assembly in `dsdt.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vmlayout.acpi.cxl import decode_cedt, summarize_cedt
from vmlayout.acpi.decode import decode_definition_block, device_memory
from vmlayout.acpi.fadt import build_fadt as build_fadt
from vmlayout.acpi.fadt import decode_fadt, summarize_fadt
from vmlayout.acpi.gtdt import build_gtdt as build_gtdt
from vmlayout.acpi.gtdt import decode_gtdt, summarize_gtdt
from vmlayout.acpi.iommu import (
    decode_dmar,
    decode_iort,
    decode_ivrs,
    summarize_dmar,
    summarize_iort,
    summarize_ivrs,
)
from vmlayout.acpi.madt import build_madt as build_madt
from vmlayout.acpi.madt import decode_madt, summarize_madt
from vmlayout.acpi.mcfg import build_mcfg as build_mcfg
from vmlayout.acpi.mcfg import decode_mcfg, summarize_mcfg
from vmlayout.acpi.pptt import build_pptt as build_pptt
from vmlayout.acpi.pptt import decode_pptt_nodes, summarize_pptt
from vmlayout.acpi.rsdp import RSDP_SIGNATURE, decode_xsdt
from vmlayout.acpi.rsdp import build_rsdp as build_rsdp
from vmlayout.acpi.rsdp import build_xsdt as build_xsdt
from vmlayout.acpi.sdt import DSDT_FLAVOUR as DSDT_FLAVOUR
from vmlayout.acpi.sdt import HEADER as HEADER
from vmlayout.acpi.sdt import OEM_IDS as OEM_IDS
from vmlayout.acpi.sdt import SSDT_FLAVOUR as SSDT_FLAVOUR
from vmlayout.acpi.sdt import Table
from vmlayout.acpi.sdt import build_table as build_table
from vmlayout.acpi.slit import build_slit as build_slit
from vmlayout.acpi.slit import decode_slit, summarize_slit
from vmlayout.acpi.srat import build_srat as build_srat
from vmlayout.acpi.srat import decode_srat, decode_srat_entries


@dataclass(frozen=True, slots=True)
class TableKind:
    """One ACPI table kind: `decode` gives its typed content, `summarize` the
    JSON-ready content `inspect` shows beyond the header (both None for the RSDP,
    which has no table header: `decode_rsdp` reads it)."""

    signature: bytes
    file: str
    module: str
    decode: Callable[[Table], object] | None
    summarize: Callable[[Table], dict[str, Any]] | None

    @property
    def name(self) -> str:
        return self.signature.decode("ascii").strip()


def _summarize_srat(table: Table) -> dict[str, Any]:
    memory, _ = decode_srat(table)
    return {
        "memory": [{"start": m.range.start, "end": m.range.end, "vnode": m.vnode} for m in memory]
    }


def _summarize_definition_block(table: Table) -> dict[str, Any]:
    return {
        "devices": [
            {
                "path": d.path,
                "memory": [[r.start, r.end] for r in device_memory(d, table.signature)],
            }
            for d in decode_definition_block(table)
            if isinstance(d.names.get("_CRS"), bytes)
        ]
    }


def _summarize_xsdt(table: Table) -> dict[str, Any]:
    """The addresses are not shown; decoding still checks the table's shape."""
    decode_xsdt(table)
    return {}


def _kind(
    signature: str,
    module: str,
    decode: Callable[[Table], object],
    summarize: Callable[[Table], dict[str, Any]],
) -> TableKind:
    return TableKind(
        signature.encode("ascii"), f"{signature}.aml", f"vmlayout.acpi.{module}", decode, summarize
    )


#: Every table kind, in the reference's append order (DSDT, FADT, MADT, SRAT, SLIT,
#: MCFG, IORT, SSDT, CEDT, PPTT, IVRS, DMAR, GTDT, XSDT), then the RSDP.
TABLES: tuple[TableKind, ...] = (
    _kind("DSDT", "dsdt", decode_definition_block, _summarize_definition_block),
    _kind("FACP", "fadt", decode_fadt, summarize_fadt),
    _kind("APIC", "madt", decode_madt, summarize_madt),
    _kind("SRAT", "srat", decode_srat_entries, _summarize_srat),
    _kind("SLIT", "slit", decode_slit, summarize_slit),
    _kind("MCFG", "mcfg", decode_mcfg, summarize_mcfg),
    _kind("IORT", "iommu", decode_iort, summarize_iort),
    _kind("SSDT", "dsdt", decode_definition_block, _summarize_definition_block),
    _kind("CEDT", "cxl", decode_cedt, summarize_cedt),
    _kind("PPTT", "pptt", decode_pptt_nodes, summarize_pptt),
    _kind("IVRS", "iommu", decode_ivrs, summarize_ivrs),
    _kind("DMAR", "iommu", decode_dmar, summarize_dmar),
    _kind("GTDT", "gtdt", decode_gtdt, summarize_gtdt),
    _kind("XSDT", "rsdp", decode_xsdt, _summarize_xsdt),
    TableKind(RSDP_SIGNATURE, "RSDP.bin", "vmlayout.acpi.rsdp", None, None),
)
TABLES_BY_SIGNATURE = {kind.signature: kind for kind in TABLES}
TABLES_BY_FILE = {kind.file: kind for kind in TABLES}


def kind_of(data: bytes) -> TableKind | None:
    """The table kind `data` starts with, if it is one of ours."""
    if data.startswith(RSDP_SIGNATURE):
        return TABLES_BY_SIGNATURE[RSDP_SIGNATURE]
    if len(data) < HEADER.size:
        return None
    return TABLES_BY_SIGNATURE.get(HEADER.unpack(data)["signature"])
