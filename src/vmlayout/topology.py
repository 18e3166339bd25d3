"""The VM's processors: how many, how they fill sockets, and the one rule that places
each VP in a vNUMA node and names it.

The layout decides memory, not processors, but SRAT, MADT, PPTT, the device trees' CPU
nodes and the UEFI blob must agree on how many VPs there are, which vNUMA node holds
each and what id firmware gives it. They all read this one value (the config's
`processors` section). The reference fills sockets in VP order and deals sockets to
vNUMA nodes round-robin: VP `v` sits in node `(v // vps_per_socket) % nodes`.
"""

from __future__ import annotations

from dataclasses import dataclass

from vmlayout.arch import Arch, ProcessorIds
from vmlayout.errors import VmLayoutError
from vmlayout.schema import setting

MAX_VP_COUNT = 4096


def _arch(arch: Arch | str) -> Arch:
    return arch if isinstance(arch, Arch) else Arch(arch)


def mpidr_of(vp: int) -> int:
    """MPIDR affinity fields (Aff0..Aff3 = the VP index's bytes), as ACPI lists them."""
    aff = vp.to_bytes(4, "little")
    return aff[0] | aff[1] << 8 | aff[2] << 16 | aff[3] << 32


@dataclass(frozen=True, slots=True)
class Processors:
    """The `processors` section. `vps_per_socket` None means the architecture's default
    (`ArchSpec.default_vps_per_socket`: every VP in one socket on x86_64, one per socket
    on aarch64). `smt` is reported to UEFI (two threads per core)."""

    vp_count: int = setting(2, "virtual processors", low=1, high=MAX_VP_COUNT)
    vps_per_socket: int | None = setting(
        None,
        "VPs per socket; VP v sits in vNUMA node (v // N) % nodes (default: every VP in "
        "one socket on x86_64, 1 on aarch64)",
        kind="optional_int",
        low=1,
        high=MAX_VP_COUNT,
    )
    smt: bool = setting(False, "two threads per core (UEFI processor information)")

    def __post_init__(self) -> None:
        if isinstance(self.vp_count, bool) or not 1 <= self.vp_count <= MAX_VP_COUNT:
            raise VmLayoutError(
                "invalid_argument", f"vp_count: {self.vp_count} is out of range 1..{MAX_VP_COUNT}"
            )
        if self.vps_per_socket is not None and not 1 <= self.vps_per_socket <= MAX_VP_COUNT:
            raise VmLayoutError(
                "invalid_argument",
                f"vps_per_socket: {self.vps_per_socket} is out of range 1..{MAX_VP_COUNT}",
            )

    def socket_size(self, arch: Arch | str) -> int:
        if self.vps_per_socket is not None:
            return self.vps_per_socket
        default = _arch(arch).spec.default_vps_per_socket
        return self.vp_count if default is None else default

    def vnode_of(self, vp: int, node_count: int, arch: Arch | str) -> int:
        return (vp // self.socket_size(arch)) % max(node_count, 1)

    def vnodes(self, node_count: int, arch: Arch | str) -> tuple[int, ...]:
        """The vNUMA node of every VP, in VP order."""
        return tuple(self.vnode_of(vp, node_count, arch) for vp in range(self.vp_count))

    def processor_ids(self, arch: Arch | str) -> tuple[int, ...]:
        """The id firmware gives every VP, in VP order: the local APIC id on x86_64, the
        MPIDR affinity on aarch64 (MADT, SRAT, the device trees' `cpu@` nodes)."""
        if _arch(arch).spec.processor_ids is ProcessorIds.MPIDR:
            return tuple(mpidr_of(vp) for vp in range(self.vp_count))
        return tuple(range(self.vp_count))


#: The former name, kept for the library's users.
VpTopology = Processors

#: The reference's processors when nothing is said: two VPs.
DEFAULT_PROCESSORS = Processors()

__all__ = ["DEFAULT_PROCESSORS", "MAX_VP_COUNT", "Processors", "VpTopology", "mpidr_of"]
