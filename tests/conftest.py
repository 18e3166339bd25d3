"""Hypothesis profiles for the fuzz tests (`tests/test_fuzz_*.py`) and shared fixtures.

`fuzz-quick` runs in every local test run; `fuzz-ci` is chosen when `CI=true` (as
`.ci/run` sets it on CI machines) and runs at least 20,000 cases across the config and
artifact fuzzers within a few minutes, while the suite's command stays the README's.
Only the fuzz tests use these profiles (through `tests.fuzzing.fuzz_settings`); every
other property test keeps its own settings.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

for _name, _examples in (("fuzz-quick", 60), ("fuzz-ci", 2500)):
    # A fuzz test of weight 1.0 runs `max_examples` cases; `tests/test_fuzz_budget.py`
    # checks that the CI profile adds up to at least 20,000 over all fuzz tests.
    settings.register_profile(
        _name,
        max_examples=_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        print_blob=True,
    )


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask, so file-mode tests do not depend on the caller's."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)
