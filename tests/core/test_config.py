"""Presets and --set overrides into an ExperimentConfig: loading, merging, key and type errors,
and one section per registered KD method."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest
import yaml

from rcekd_core.config import (
    default_config,
    from_dict,
    list_presets,
    load_config,
    load_preset_dict,
    merge,
    parse_overrides,
    preset_path,
)
from rcekd_core.errors import ConfigError
from rcekd_core.kd.base import Distiller
from rcekd_core.kd.rcekd import RCEKDSettings
from rcekd_core.kd.registry import METHODS, register, unregister
from rcekd_core.settings import MethodSettings, setting


def error_of(values: dict) -> str:
    with pytest.raises(ConfigError) as e:
        from_dict(values)
    assert "\n" not in str(e.value)
    return str(e.value)


# ----------------------------------------------------------------------------- presets + overrides


def test_a_preset_loads_with_its_values_over_the_defaults():
    cfg = load_config("demo")
    assert cfg.name == "demo" and cfg.data.n_users == 1500 and cfg.teacher.heads == 2
    assert cfg.rcekd.lam == 0.1 and cfg.rcekd.K == 50 and cfg.rrd.M == 300
    assert cfg.rcekd.sampling == "teacher"  # not in the preset: the default
    assert cfg.student_train.weight_decay == 0.0
    assert {"demo", "demo-mf", "ml-100k"} <= set(list_presets())


def test_overrides_apply_over_the_preset_and_keep_its_other_values():
    cfg = load_config("demo", parse_overrides(["rcekd.K=7", "student.dim=12", "methods=kd,rcekd",
                                               "eval.ks=5,10", "rcekd.gamma=null"]))
    assert cfg.rcekd.K == 7 and cfg.rcekd.lam == 0.1 and cfg.rcekd.M == 100  # the rest of the section kept
    assert cfg.student.dim == 12 and cfg.student.blocks == 1
    assert cfg.methods == ["kd", "rcekd"] and cfg.eval.ks == [5, 10] and cfg.rcekd.gamma is None


def test_parse_overrides_nests_dotted_keys_and_parses_values_as_yaml():
    got = parse_overrides(["a.b=3", "a.c=x", "a.d.e=1.5", "flag=true", "empty=", "methods=kd,rcekd", "n=null"])
    assert got == {"a": {"b": 3, "c": "x", "d": {"e": 1.5}}, "flag": True, "empty": "",
                   "methods": "kd,rcekd", "n": None}
    assert parse_overrides(["a=1", "a.b=2"]) == {"a": {"b": 2}}  # a later dotted key wins
    assert parse_overrides(["text=[unclosed"]) == {"text": "[unclosed"}  # not YAML: kept as text
    for bad in ("noequals", "=3", " =3"):
        with pytest.raises(ConfigError, match="key=value"):
            parse_overrides([bad])


def test_merge_is_deep_and_leaves_its_inputs_alone():
    base = {"a": {"b": 1, "c": 2}, "d": [1]}
    over = {"a": {"c": 3, "e": 4}, "d": [2], "f": 5}
    assert merge(base, over) == {"a": {"b": 1, "c": 3, "e": 4}, "d": [2], "f": 5}
    assert base == {"a": {"b": 1, "c": 2}, "d": [1]} and over["a"] == {"c": 3, "e": 4}
    assert merge({"a": 1}, {"a": {"b": 2}}) == {"a": {"b": 2}}


def test_preset_files_and_bad_presets(tmp_path, monkeypatch):
    p = tmp_path / "mine.yaml"
    p.write_text(yaml.safe_dump({"student": {"dim": 6}}))
    cfg = load_config(str(p))
    assert cfg.name == "mine" and cfg.student.dim == 6  # the name defaults to the file's stem
    with pytest.raises(ConfigError, match="does not exist"):
        preset_path(str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match="unknown preset 'nope'; choose one of: .*demo"):
        preset_path("nope")
    (tmp_path / "bad.yaml").write_text("a: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_preset_dict(str(tmp_path / "bad.yaml"))
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_preset_dict(str(tmp_path / "list.yaml"))
    # RCEKD_PRESETS is searched first: a preset there shadows the shipped one of the same name
    (tmp_path / "demo.yaml").write_text(yaml.safe_dump({"name": "shadow", "seeds": [4, 5]}))
    monkeypatch.setenv("RCEKD_PRESETS", str(tmp_path))
    assert load_config("demo").seeds == [4, 5] and "mine" in list_presets()


# ----------------------------------------------------------------------------- unknown keys, types


def test_unknown_keys_name_the_known_ones():
    msg = error_of({"bogus": 1})
    assert msg.startswith("unknown setting 'bogus'; known here: ")
    known = msg.split("known here: ")[1].split(", ")
    assert {"data", "teacher", "student", "eval", "methods", "seeds", "kd_positions"} <= set(known)
    assert {name for name, m in METHODS.items() if m.settings is not None} <= set(known)
    assert "method_settings" not in known  # an implementation detail, not a setting
    msg = error_of({"data": {"nope": 1}})
    assert "unknown setting 'data.nope'" in msg and "kcore" in msg and "protocol" in msg
    msg = error_of({"rcekd": {"nope": 1}})
    assert "unknown setting 'rcekd.nope'" in msg
    assert set(msg.split("known here: ")[1].split(", ")) == {f.name for f in dataclasses.fields(RCEKDSettings)}


@pytest.mark.parametrize("values, needle", [
    ({"kd_positions": "middle"}, "unknown kd_positions 'middle'; choose last or all"),
    ({"device": "tpu"}, "unknown device 'tpu'; choose auto, cpu or cuda"),
    ({"data": {"protocol": "kfold"}}, "unknown data.protocol 'kfold'; choose loo or ratio"),
    ({"student": {"loss": "mse"}}, "unknown student.loss 'mse'; choose ce, bce, ssm or bpr"),
    ({"rcekd": {"sampling": 3}}, "unknown rcekd.sampling '3'; choose teacher or rank"),
    ({"kd": {"list": "both"}}, "unknown kd.list 'both'; choose teacher or student"),
])
def test_literal_settings_reject_other_values(values, needle):
    assert error_of(values) == needle


def test_literal_settings_accept_their_values():
    assert from_dict({"kd_positions": "last", "device": "cpu"}).kd_positions == "last"
    assert from_dict({"rcekd": {"sampling": "rank"}}).rcekd.sampling == "rank"


@pytest.mark.parametrize("values, needle", [
    ({"eval": {"mask_history": "maybe"}}, "'eval.mask_history' must be bool; got 'maybe'"),
    ({"eval": {"mask_history": 2}}, "'eval.mask_history' must be bool; got 2"),
    ({"student": {"dim": 2.5}}, "'student.dim' must be int; got 2.5"),
    ({"student": {"dim": True}}, "'student.dim' must be int; got True"),
    ({"student": {"dim": "big"}}, "'student.dim' must be int; got 'big'"),
    ({"student_train": {"lr": "fast"}}, "'student_train.lr' must be float; got 'fast'"),
    ({"student_train": {"lr": False}}, "'student_train.lr' must be float; got False"),
    ({"rcekd": {"gamma": "half"}}, "'rcekd.gamma' must be float; got 'half'"),
    ({"name": {"a": 1}}, "'name' must be str"),
    ({"eval": {"ks": "10,x"}}, "'eval.ks' must be int; got 'x'"),
    ({"seeds": 5}, "'seeds' must be a list"),
    ({"data": 3}, "'data' must be a mapping of settings; got 3"),
    ({"rcekd": [1, 2]}, "'rcekd' must be a mapping of settings"),
])
def test_type_errors_name_the_key_and_the_value(values, needle):
    assert needle in error_of(values)


def test_values_are_coerced_to_the_declared_types():
    cfg = from_dict({"eval": {"mask_history": "no", "ks": "5, 10"}, "student": {"dim": 4.0, "blocks": "2"},
                     "student_train": {"lr": "1e-2", "epochs": 3}, "teacher_train": {"weight_decay": 0},
                     "seeds": "0,1", "rcekd": {"gamma": 1}, "data": {"header": "yes"}})
    assert cfg.eval.mask_history is False and cfg.eval.ks == [5, 10]
    assert cfg.student.dim == 4 and type(cfg.student.dim) is int and cfg.student.blocks == 2
    assert cfg.student_train.lr == 0.01 and type(cfg.teacher_train.weight_decay) is float
    assert cfg.seeds == [0, 1] and cfg.rcekd.gamma == 1.0 and type(cfg.rcekd.gamma) is float
    assert cfg.data.header is True


# ----------------------------------------------------------------------------- method sections


def test_every_registered_method_with_settings_has_a_section():
    cfg = default_config()
    assert from_dict({}) == cfg
    with_settings = {name: m.settings for name, m in METHODS.items() if m.settings is not None}
    assert set(cfg.method_settings) == set(with_settings) and "scratch" not in cfg.method_settings
    assert {"kd", "rcekd", "rrd", "dcd", "cd", "unkd", "hetcomp", "de"} <= set(with_settings)
    for name, cls in with_settings.items():
        section = cfg.method(name)
        assert type(section) is cls and section == cls()  # the class's defaults
        assert getattr(cfg, name) is section  # cfg.rcekd reads like any section
        assert isinstance(section, MethodSettings) and section.lam >= 0
    with pytest.raises(AttributeError):
        cfg.no_such_section  # noqa: B018
    # each config has its own sections
    other = default_config()
    other.rcekd.K = 3
    assert cfg.rcekd.K == RCEKDSettings().K


def test_to_dict_has_the_method_sections_at_the_top_level_and_round_trips():
    cfg = load_config("demo", {"rcekd": {"K": 7, "gamma": 0.5}, "student": {"dim": 12}, "methods": ["all"]})
    tree = cfg.to_dict()
    assert "method_settings" not in tree
    for name, section in cfg.method_settings.items():
        assert tree[name] == dataclasses.asdict(section)
    assert tree["rcekd"]["K"] == 7 and tree["student"]["dim"] == 12 and tree["methods"] == list(METHODS)
    assert yaml.safe_load(yaml.safe_dump(tree)) == tree  # plain YAML (config.yaml of a run)
    again = from_dict(tree)
    assert again == cfg and again.to_dict() == tree
    assert from_dict(default_config().to_dict()) == default_config()


@dataclass
class ProbeSettings(MethodSettings):
    width: int = setting(3, "a probe's list length", gt=0)


class Probe(Distiller):
    name = "probe"
    Settings = ProbeSettings


def test_a_newly_registered_method_gets_a_section():
    register(Probe)
    try:
        cfg = from_dict({"probe": {"width": 5}})
        assert cfg.probe == ProbeSettings(width=5) and default_config().probe == ProbeSettings()
        assert cfg.to_dict()["probe"] == {"lam": 1.0, "width": 5}
        assert "'probe.width' must be > 0" in error_of({"probe": {"width": 0}})
    finally:
        unregister("probe")
    assert "probe" not in default_config().method_settings
    assert "unknown setting 'probe'" in error_of({"probe": {"width": 5}})


def test_every_shipped_preset_loads_and_validates():
    from rcekd_core.config import PRESET_DIR

    names = sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
    assert {"demo", "gowalla-hstu", "citeulike-hstu", "yelp-hstu", "gowalla"} <= set(names)
    for name in names:
        cfg = load_config(name)
        assert cfg.name == name
    hstu = load_config("gowalla-hstu")
    assert (hstu.data.protocol, hstu.teacher.blocks, hstu.student.blocks, hstu.student.negatives) == ("ratio", 8, 1, 1024)
