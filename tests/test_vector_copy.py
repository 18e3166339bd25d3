"""The project's copy of the reference vectors equals the published set."""

from __future__ import annotations

import pytest

from tests.vectors import PROJECT_VECTORS, UPSTREAM_VECTORS, read_cases


def test_project_copy_has_every_vector_file_the_tests_read() -> None:
    names = {p.name for p in PROJECT_VECTORS.glob("*.jsonl")}
    assert {"allocator.jsonl", "resolver.jsonl", "pci.jsonl", "acpi-tables.jsonl"} <= names
    assert (PROJECT_VECTORS / "README.md").is_file()


@pytest.mark.skipif(
    not UPSTREAM_VECTORS.is_dir(), reason="no published vectors beside the checkout"
)
def test_project_copy_holds_exactly_the_published_cases() -> None:
    upstream = sorted(p.name for p in UPSTREAM_VECTORS.glob("*.jsonl"))
    assert sorted(p.name for p in PROJECT_VECTORS.glob("*.jsonl")) == upstream
    for name in upstream:
        assert read_cases(PROJECT_VECTORS / name) == read_cases(UPSTREAM_VECTORS / name), (
            f"{name} differs from the published copy: copy the new file in"
        )
