"""VP placement: sockets filled in VP order, dealt to vNUMA nodes round-robin."""

from __future__ import annotations

from typing import Any

import pytest

from vmlayout.errors import VmLayoutError
from vmlayout.topology import VpTopology


def test_x86_default_socket_holds_every_vp_so_all_sit_in_node_0() -> None:
    assert VpTopology(vp_count=4).vnodes(2, "x86_64") == (0, 0, 0, 0)


def test_aarch64_default_is_one_vp_per_socket_dealt_round_robin() -> None:
    assert VpTopology(vp_count=5).vnodes(2, "aarch64") == (0, 1, 0, 1, 0)


def test_explicit_socket_size_groups_vps_before_dealing() -> None:
    assert VpTopology(vp_count=8, vps_per_socket=2).vnodes(3, "x86_64") == (
        0, 0, 1, 1, 2, 2, 0, 0,
    )  # fmt: skip


@pytest.mark.parametrize("kwargs", [{"vp_count": 0}, {"vp_count": 4097}, {"vps_per_socket": 0}])
def test_out_of_range_counts_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(VmLayoutError) as caught:
        VpTopology(**kwargs)
    assert caught.value.kind == "invalid_argument"
