"""Configs several test modules share."""

from __future__ import annotations

from typing import Any

#: Two vNUMA nodes, two PCIe segments with VT-d, a high and a VTL2 chipset window: the
#: VM of the compatibility examples (growing its high window moves exactly 3 ranges).
TWO_SOCKET: dict[str, Any] = {
    "node_mem_sizes": [8 << 30, 8 << 30],
    "chipset_high_mmio_size": 4 << 30,
    "vtl2_chipset_mmio_size": 1 << 30,
    "pcie_root_complexes": [
        {"name": "rc0", "segment": 0, "iommu": "intel_vtd"},
        {"name": "rc1", "segment": 1, "iommu": "intel_vtd"},
    ],
}
