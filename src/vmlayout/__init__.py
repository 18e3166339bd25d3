"""vmlayout: where everything lives in a VM's guest physical address space.

The stable library surface is listed in `__all__`; names resolve lazily so that
`import vmlayout` (and the CLI's cold start) stays cheap. See docs/api.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> module defining it.
_EXPORTS = {
    "load_config": "vmlayout.api",
    "resolve": "vmlayout.api",
    "layout_json": "vmlayout.api",
    "config_json": "vmlayout.api",
    "pci_assignment": "vmlayout.api",
    "e820_map": "vmlayout.api",
    "e820_bytes": "vmlayout.api",
    "reference_mtrrs": "vmlayout.api",
    "mtrr_msrs": "vmlayout.api",
    "pcat_config": "vmlayout.api",
    "uefi_config_blob": "vmlayout.api",
    "acpi_tables": "vmlayout.api",
    "linux_device_tree": "vmlayout.api",
    "paravisor_device_tree": "vmlayout.api",
    "artifact_set": "vmlayout.api",
    "where": "vmlayout.api",
    "explain": "vmlayout.api",
    "diff": "vmlayout.api",
    "fit": "vmlayout.api",
    "inspect": "vmlayout.api",
    "InspectResult": "vmlayout.inspect.dispatch",
    "VmConfig": "vmlayout.policy",
    "RootComplexConfig": "vmlayout.policy",
    "DynamicMmio": "vmlayout.policy",
    "FixedMmio": "vmlayout.policy",
    "Vtl2Layout": "vmlayout.policy",
    "Arch": "vmlayout.arch",
    "IommuKind": "vmlayout.policy",
    "ResolvedLayout": "vmlayout.policy",
    "RootComplexRanges": "vmlayout.policy",
    "ChipsetMmioRanges": "vmlayout.layout",
    "MemoryLayout": "vmlayout.layout",
    "MemoryRange": "vmlayout.ranges",
    "VmLayoutError": "vmlayout.errors",
    "VpTopology": "vmlayout.topology",
    "Processors": "vmlayout.topology",
    "Platform": "vmlayout.platform",
    "GicPlatform": "vmlayout.platform",
}

__all__ = [
    "Arch",
    "ChipsetMmioRanges",
    "DynamicMmio",
    "FixedMmio",
    "GicPlatform",
    "InspectResult",
    "IommuKind",
    "MemoryLayout",
    "MemoryRange",
    "Platform",
    "Processors",
    "ResolvedLayout",
    "RootComplexConfig",
    "RootComplexRanges",
    "VmConfig",
    "VmLayoutError",
    "VpTopology",
    "Vtl2Layout",
    "__version__",
    "acpi_tables",
    "artifact_set",
    "config_json",
    "diff",
    "e820_bytes",
    "e820_map",
    "explain",
    "fit",
    "inspect",
    "layout_json",
    "linux_device_tree",
    "load_config",
    "mtrr_msrs",
    "paravisor_device_tree",
    "pcat_config",
    "pci_assignment",
    "reference_mtrrs",
    "resolve",
    "uefi_config_blob",
    "where",
]

if TYPE_CHECKING:
    from vmlayout.api import (
        acpi_tables,
        artifact_set,
        config_json,
        diff,
        e820_bytes,
        e820_map,
        explain,
        fit,
        inspect,
        layout_json,
        linux_device_tree,
        load_config,
        mtrr_msrs,
        paravisor_device_tree,
        pcat_config,
        pci_assignment,
        reference_mtrrs,
        resolve,
        uefi_config_blob,
        where,
    )
    from vmlayout.arch import Arch
    from vmlayout.errors import VmLayoutError
    from vmlayout.inspect.dispatch import InspectResult
    from vmlayout.layout import ChipsetMmioRanges, MemoryLayout
    from vmlayout.platform import GicPlatform, Platform
    from vmlayout.policy import (
        DynamicMmio,
        FixedMmio,
        IommuKind,
        ResolvedLayout,
        RootComplexConfig,
        RootComplexRanges,
        VmConfig,
        Vtl2Layout,
    )
    from vmlayout.ranges import MemoryRange
    from vmlayout.topology import Processors, VpTopology


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vmlayout' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
