"""`--param` specs: syntax, the config check (names, types, ranges, catalogue), grids."""

from __future__ import annotations

import pytest

from rcekd_core.config import default_config
from rcekd_core.errors import ConfigError
from rcekd_core.sweep.space import Param, as_overrides, bind, grid, parse_param


@pytest.mark.parametrize("spec, kind, low, high, choices, integer", [
    ("rcekd.lam=log:0.001..10", "log", 0.001, 10, (), False),
    ("kd.lam=log:1e-4..1", "log", 1e-4, 1, (), False),
    ("rcekd.lam=0..1", "uniform", 0, 1, (), True),  # integer ends: integer until bound to a float setting
    ("rcekd.K=5..50", "uniform", 5, 50, (), True),
    ("rcekd.lam=0.5..2.5", "uniform", 0.5, 2.5, (), False),
    ("rcekd.beta=1,3,5", "choice", None, None, (1, 3, 5), False),
    ("rcekd.beta=0.5, 1e1 ,3", "choice", None, None, (0.5, 10.0, 3), False),
    ("rcekd.sampling=rank,uniform", "choice", None, None, ("rank", "uniform"), False),
    ("rcekd.lam=7", "choice", None, None, (7,), False),
    (" kd.lam = log:1e-3..1e-1 ", "log", 1e-3, 1e-1, (), False),
])
def test_specs_parse_to_their_kind_and_values(spec, kind, low, high, choices, integer):
    p = parse_param(spec)
    assert (p.kind, p.low, p.high, p.choices, p.integer) == (kind, low, high, choices, integer)
    assert p.method == spec.split(".")[0].strip() and "." not in p.setting


@pytest.mark.parametrize("spec, needle", [
    ("rcekd.lam", "<method>.<setting>=<values>"),
    ("lam=0.1", "<method>.<setting>"),
    ("a.b.c=1", "<method>.<setting>"),
    (".lam=1", "<method>.<setting>"),
    ("rcekd.lam=", "gives no values"),
    ("rcekd.lam=1..0", "low end must be below"),
    ("rcekd.lam=1..1", "low end must be below"),
    ("rcekd.lam=log:0..1", "above 0"),
    ("rcekd.lam=log:-1..1", "above 0"),
    ("rcekd.lam=a..b", "two finite numbers"),
    ("rcekd.lam=1..inf", "two finite numbers"),
    ("rcekd.lam=log:1,2", "log: needs a range"),
    ("rcekd.beta=1,,3", "empty value"),
    ("rcekd.beta=1,3,1", "twice"),
])
def test_malformed_specs_are_refused_with_the_fix(spec, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.").replace("<", ".").replace(">", ".")):
        parse_param(spec)


@pytest.fixture(scope="module")
def base() -> dict:
    return default_config().to_dict()


def test_bind_coerces_to_the_setting_type(base):
    lam, beta, sampling, k = bind([parse_param("rcekd.lam=0..1"), parse_param("rcekd.beta=1,3"),
                                   parse_param("rcekd.sampling=rank,teacher"), parse_param("rcekd.K=5..20")],
                                  base, ["rcekd"])
    assert (lam.low, lam.high, lam.integer) == (0.0, 1.0, False) and isinstance(lam.low, float)  # a float setting
    assert beta.choices == (1.0, 3.0) and all(isinstance(v, float) for v in beta.choices)
    assert sampling.choices == ("rank", "teacher")
    assert (k.low, k.high, k.integer) == (5, 20, True)


@pytest.mark.parametrize("spec, methods, needle", [
    ("nope.lam=1,2", ["kd"], "unknown method 'nope'"),
    ("scratch.lam=1,2", ["scratch"], "scratch has no settings"),
    ("rcekd.lam=1,2", ["kd"], "not in --methods"),
    ("kd.bogus=1,2", ["kd"], "no setting 'bogus'"),
    ("kd.K=1.5..4", ["kd"], "integer ends"),
    ("kd.K=log:0..4", ["kd"], "above 0"),
    ("kd.list=0..1", ["kd"], "not a number"),
    ("kd.lam=-1,1", ["kd"], "must be ≥ 0"),
    ("kd.lam=-1..1", ["kd"], "must be ≥ 0"),
    ("kd.lam=a,b", ["kd"], "must be float"),
    ("kd.list=student,nobody", ["kd"], "unknown kd.list"),
])
def test_bind_refuses_what_the_config_refuses(base, spec, methods, needle):
    with pytest.raises(ConfigError, match=needle):
        bind([parse_param(spec)], base, methods)


def test_bind_checks_item_counts_against_the_catalogue(base):
    kd_only = {**base, "methods": ["kd"]}
    bind([parse_param("kd.K=5,30")], kd_only, ["kd"], n_items=60)
    with pytest.raises(ConfigError, match="exceeds the 60 items"):
        bind([parse_param("kd.K=5,100")], kd_only, ["kd"], n_items=60)


def test_a_parameter_given_twice_is_refused(base):
    with pytest.raises(ConfigError, match="given twice"):
        bind([parse_param("kd.lam=1,2"), parse_param("kd.lam=log:1e-3..1")], base, ["kd"])


def test_grid_is_every_combination_and_refuses_ranges():
    points = grid([parse_param("rcekd.lam=0.1,1"), parse_param("rcekd.beta=1,3,5")])
    assert len(points) == 6 and {"rcekd.lam": 1, "rcekd.beta": 5} in points
    assert len({tuple(sorted(p.items())) for p in points}) == 6
    assert grid([]) == [{}]
    with pytest.raises(ConfigError, match="--sampler grid needs lists"):
        grid([parse_param("rcekd.lam=log:0.1..1")])


def test_overrides_put_each_value_in_its_method_section():
    assert as_overrides({"rcekd.lam": 0.1, "rcekd.beta": 3.0, "kd.lam": 0.01}) == {
        "rcekd": {"lam": 0.1, "beta": 3.0}, "kd": {"lam": 0.01}}


def test_a_param_survives_the_plan_file():
    p = parse_param("rcekd.lam=log:0.001..10")
    assert Param.from_dict(p.to_dict()) == p
    c = parse_param("rcekd.sampling=rank,teacher")
    assert Param.from_dict(c.to_dict()) == c
