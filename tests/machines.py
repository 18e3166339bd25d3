"""Tests' way to ask for a VM with other processors or platform choices: the emitters
read both from the config, so a test replaces the config's sections (the layout does
not depend on them, so the resolved layout stays valid)."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from vmlayout.policy import ResolvedLayout

#: Flat test keyword -> path in the VM description.
_PATHS = {
    "vp_count": "processors.vp_count",
    "vps_per_socket": "processors.vps_per_socket",
    "smt": "processors.smt",
    "pci0": "platform.chipset_device",
    "serial": "platform.serial",
    "vmbus": "platform.vmbus",
    "hyperv": "platform.hyperv",
    "virtio_irq": "platform.virtio_irq",
    "rsdp_gpa": "platform.rsdp_address",
    "cxl_window_restrictions": "platform.cxl_window_restrictions",
    "ioapic": "platform.x86.ioapic",
    "pic": "platform.x86.pic",
    "pit": "platform.x86.pit",
    "vtd_address_width": "platform.x86.vtd_address_width",
    "gic": "platform.gic",
    "initrd_size": "platform.linux.initrd_size",
    "bootargs": "platform.linux.bootargs",
    "vmbus_redirection": "platform.paravisor.vmbus_redirection",
    "memory_allocation_mode": "platform.paravisor.memory_allocation_mode",
    "vtl2_memory_size": "platform.paravisor.vtl2_memory_size",
    "bios_guid": "platform.uefi.bios_guid",
    "entropy": "platform.uefi.entropy",
    "frontpage": "platform.uefi.frontpage",
}


def _set(obj: Any, parts: list[str], value: Any) -> Any:
    head, *rest = parts
    new = value if not rest else _set(getattr(obj, head), rest, value)
    return dataclasses.replace(obj, **{head: new})


def vm_config(config: Any, **choices: Any) -> Any:
    """`config` with the given processors/platform choices (flat test keywords)."""
    for key, value in choices.items():
        if key == "pci0":
            value = "pci0" if value else "vmod"
        if key == "bios_guid" and isinstance(value, uuid.UUID):
            value = str(value)
        config = _set(config, _PATHS[key].split("."), value)
    return config


def with_vm(resolved: ResolvedLayout, **choices: Any) -> ResolvedLayout:
    """The same layout, described with other processors or platform choices."""
    return dataclasses.replace(resolved, config=vm_config(resolved.config, **choices))
