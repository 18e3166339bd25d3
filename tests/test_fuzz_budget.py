"""The CI fuzz profile's size: issue 11 asks for at least 20,000 cases across decoders
and configs on every CI run."""

from __future__ import annotations

from hypothesis import settings

from tests.fuzzing import FUZZ_WEIGHTS, fuzz_settings


def test_the_ci_profile_runs_at_least_20000_cases_across_configs_and_decoders() -> None:
    per_test = settings.get_profile("fuzz-ci").max_examples
    totals = {target: int(per_test * weight) for target, weight in FUZZ_WEIGHTS.items()}
    assert sum(totals.values()) >= 20_000, totals
    configs = sum(n for target, n in totals.items() if target.startswith("config"))
    decoders = sum(n for target, n in totals.items() if target.startswith("artifact"))
    assert configs >= 5_000 and decoders >= 5_000, totals


def test_every_fuzz_target_has_a_weight() -> None:
    for target in FUZZ_WEIGHTS:
        assert fuzz_settings(target).max_examples >= 10
