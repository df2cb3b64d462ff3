"""eval.memory_mb: its default, its validation, how it reaches the passes, and rows_within."""

from __future__ import annotations

import pytest

from rcekd_core.config import default_config, from_dict, load_config, parse_overrides
from rcekd_core.errors import ConfigError
from rcekd_core.memory import DEFAULT_BUDGET, MB, rows_within


def error_of(values: dict) -> str:
    with pytest.raises(ConfigError) as e:
        from_dict(values)
    return str(e.value)


def test_default_is_256_mb_and_matches_the_helpers_default():
    cfg = default_config()
    assert cfg.eval.memory_mb == 256 and cfg.eval.memory_bytes == 256 * MB == DEFAULT_BUDGET
    assert cfg.eval.chunk == 1024  # still the cap on contexts per chunk


@pytest.mark.parametrize("value, needle", [
    (0, "'eval.memory_mb' must be in (0, 10000000]; got 0"),
    (-5, "'eval.memory_mb' must be in (0, 10000000]; got -5"),
    (2.5, "'eval.memory_mb' must be int; got 2.5"),
    ("lots", "'eval.memory_mb' must be int; got 'lots'"),
    (True, "'eval.memory_mb' must be int; got True"),
    (10**8, "'eval.memory_mb' must be in (0, 10000000]; got 100000000"),
])
def test_memory_mb_rejects_what_is_not_a_positive_size(value, needle):
    assert needle in error_of({"eval": {"memory_mb": value}})


def test_memory_mb_is_set_like_any_setting():
    cfg = load_config("demo", parse_overrides(["eval.memory_mb=8"]))
    assert cfg.eval.memory_mb == 8 and cfg.eval.memory_bytes == 8 * MB
    assert cfg.eval.chunk == 1024  # the preset's other eval settings stay


def test_rows_within():
    assert rows_within(1000, 100) == 10
    assert rows_within(1000, 100, cap=4) == 4  # the cap wins over a large budget
    assert rows_within(99, 100) == 1  # at least one row, even above the budget
    assert rows_within(10**12, 1, cap=1024) == 1024
    assert rows_within(1000, 0) == 1000  # a zero-byte row counts as one byte
