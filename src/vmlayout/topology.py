"""Where each virtual processor sits: the one rule every view of the CPUs shares.

The layout decides memory, not processors, but SRAT, MADT, the device trees' CPU nodes
and the UEFI blob must agree on which vNUMA node holds each VP. The reference fills
sockets in VP order and deals sockets to vNUMA nodes round-robin:
VP `v` sits in node `(v // vps_per_socket) % nodes`.
"""

from __future__ import annotations

from dataclasses import dataclass

from vmlayout.errors import VmLayoutError

MAX_VP_COUNT = 4096


@dataclass(frozen=True, slots=True)
class VpTopology:
    """`vps_per_socket` None means the architecture's default (see `for_arch`)."""

    vp_count: int = 2
    vps_per_socket: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.vp_count <= MAX_VP_COUNT:
            raise VmLayoutError(
                "invalid_argument", f"vp_count: {self.vp_count} is out of range 1..{MAX_VP_COUNT}"
            )
        if self.vps_per_socket is not None and not 1 <= self.vps_per_socket <= MAX_VP_COUNT:
            raise VmLayoutError(
                "invalid_argument",
                f"vps_per_socket: {self.vps_per_socket} is out of range 1..{MAX_VP_COUNT}",
            )

    def socket_size(self, arch: str) -> int:
        """The reference takes the host's socket size on x86_64 (here: one socket holds
        every VP) and puts one VP per socket on aarch64."""
        if self.vps_per_socket is not None:
            return self.vps_per_socket
        return self.vp_count if arch == "x86_64" else 1

    def vnode_of(self, vp: int, node_count: int, arch: str) -> int:
        return (vp // self.socket_size(arch)) % max(node_count, 1)

    def vnodes(self, node_count: int, arch: str) -> tuple[int, ...]:
        """The vNUMA node of every VP, in VP order."""
        return tuple(self.vnode_of(vp, node_count, arch) for vp in range(self.vp_count))
