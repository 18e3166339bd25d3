"""`inspect DIR`'s PCI view: pci.json's assignments against a re-assignment, and each
one's own nesting check (`vmlayout.pci.check`)."""

from __future__ import annotations

from typing import Any

from vmlayout.errors import VmLayoutError
from vmlayout.inputs import parse_json
from vmlayout.pci.check import NESTING_OK, assignment_rows, nesting_problems
from vmlayout.pci_layout import assign_resolved
from vmlayout.policy import ResolvedLayout


def expected_pci_rows(resolved: ResolvedLayout) -> dict[str, Any]:
    """`inspect DIR` rows for each root complex with devices, from a re-assignment."""
    rows: dict[str, Any] = {}
    for name, assignment in assign_resolved(resolved).items():
        rows[f"PCI {name} assignment"] = assignment_rows(assignment.to_json())
        rows[f"PCI {name} nesting"] = (NESTING_OK,)
    return rows


def read_pci_json(artifacts: Any, resolved: Any) -> dict[str, Any]:
    """The `PCI` view: pci.json's assignments and its own nesting check."""
    doc = parse_json(artifacts.files["pci.json"], "pci.json", "invalid_artifact")
    rows: dict[str, Any] = {}
    try:
        complexes = list(doc["root_complexes"])
        for rc in complexes:
            name = str(rc["name"])
            low = (int(rc["low_mmio"][0]), int(rc["low_mmio"][1]))
            high = (int(rc["high_mmio"][0]), int(rc["high_mmio"][1]))
            rows[f"PCI {name} assignment"] = assignment_rows(rc["pci"])
            problems = nesting_problems(rc["pci"], low, high)
            rows[f"PCI {name} nesting"] = tuple(problems) if problems else (NESTING_OK,)
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise VmLayoutError("invalid_artifact", f"pci.json: malformed ({error})") from None
    return rows
