"""Validation: the rules that span several settings, each method's own rules, the declared range
of every bounded setting, and the catalogue-size checks (only for the methods that run)."""

from __future__ import annotations

import copy
import dataclasses
import typing

import pytest

from rcekd_core.config import check_sizes, default_config, from_dict, load_config
from rcekd_core.errors import ConfigError
from rcekd_core.eval.metrics import metric_names
from rcekd_core.kd.registry import METHODS
from rcekd_core.models.registry import MODELS, is_general
from rcekd_core.settings import ExperimentConfig, ModelConfig, check_ranges
from rcekd_core.validation import SECTIONS


def error_of(values: dict) -> str:
    with pytest.raises(ConfigError) as e:
        from_dict(values)
    assert "\n" not in str(e.value)  # one line
    return str(e.value)


GENERAL = {"data": {"protocol": "ratio"}}


def pair(teacher: str, student: str, loss_s: str | None = None) -> dict:
    """Teacher and student archs with a loss each takes (bpr for general models), and the protocol."""
    def loss(arch):
        return "bpr" if is_general(arch) else "ce"

    out = {"teacher": {"arch": teacher, "loss": loss(teacher)},
           "student": {"arch": student, "loss": loss_s or loss(student)}}
    return {**out, **GENERAL} if is_general(teacher) and is_general(student) else out


# ----------------------------------------------------------------------------- families, protocol


@pytest.mark.parametrize("values, needle", [
    ({"teacher": {"arch": "mf", "loss": "bpr"}, "student": {"arch": "sasrec", "loss": "ce"},
      "data": {"protocol": "ratio"}}, "must both be sequential"),
    ({"teacher": {"arch": "sasrec"}, "student": {"arch": "lightgcn", "loss": "bpr"}}, "must both be sequential"),
    ({"teacher": {"arch": "mf", "loss": "bpr"}, "student": {"arch": "mf", "loss": "bpr"}},
     "use data.protocol ratio"),  # protocol left at loo
    ({"teacher": {"arch": "mf", "loss": "ssm"}, "student": {"arch": "mf", "loss": "bpr"},
      "data": {"protocol": "ratio"}}, "teacher.loss 'ssm'"),
    ({"teacher": {"arch": "mf", "loss": "bpr"}, "student": {"arch": "lightgcn", "loss": "bce"},
      "data": {"protocol": "ratio"}}, "student.loss 'bce'"),
    ({"student": {"loss": "bpr"}}, "student.loss 'bpr'"),  # bpr is for general models only
    ({"data": {"protocol": "kfold"}}, "data.protocol"),
])
def test_general_config_errors_are_one_line(values, needle):
    assert needle in error_of(values)


def test_a_family_mismatch_is_named_before_the_loss_of_the_other_family():
    # an mf preset's bpr loss kept when only the student's arch changes: the mismatch is the cause
    msg = error_of({"teacher": {"arch": "mf", "loss": "bpr"}, "student": {"arch": "sasrec", "loss": "bpr"},
                    "data": {"protocol": "ratio"}})
    assert "must both be sequential" in msg


def test_family_and_protocol_messages_name_the_fix():
    assert error_of(pair("gru4rec", "lightgcn")) == (
        "teacher gru4rec and student lightgcn must both be sequential (sasrec, gru4rec, hstu) or both "
        "general (mf, lightgcn): their states differ")
    msg = error_of({**pair("mf", "lightgcn"), "data": {"protocol": "loo"}})
    assert msg == ("general models (mf → lightgcn) use data.protocol ratio; got loo: "
                   "add --set data.protocol=ratio")



@pytest.mark.parametrize("protocol", ["loo", "ratio"])
def test_sequential_pairs_take_either_protocol(protocol):
    # ratio: the paper's protocol for its HSTU runs (80/10/10 per user, the sets as targets)
    assert from_dict({"data": {"protocol": protocol}}).data.protocol == protocol


@pytest.mark.parametrize("loss", ["bpr", "ce"])
def test_general_pairs_with_ratio_are_accepted(loss):
    for t, s in (("mf", "mf"), ("lightgcn", "mf"), ("mf", "lightgcn"), ("lightgcn", "lightgcn")):
        cfg = from_dict({"teacher": {"arch": t, "loss": loss}, "student": {"arch": s, "loss": loss},
                         "data": {"protocol": "ratio"}})
        assert isinstance(cfg, ExperimentConfig)
    assert load_config("demo-mf").data.protocol == "ratio"
    assert load_config("ml-100k-mf").teacher.arch == "mf"


def test_an_unknown_arch_lists_the_backbones():
    assert error_of({"student": {"arch": "bert"}}) == f"unknown student.arch 'bert'; choose one of: {', '.join(MODELS)}"


# ----------------------------------------------------------------------------- windows, heads, losses


def test_kd_positions_all_needs_a_teacher_window_at_least_the_students():
    values = {"teacher": {"max_len": 10}, "student": {"max_len": 20}}
    assert error_of(values) == ("kd_positions=all needs teacher.max_len (10) ≥ student.max_len (20); "
                                "raise the teacher's or use --set kd_positions=last")
    assert from_dict({**values, "kd_positions": "last"}).kd_positions == "last"
    assert from_dict({"teacher": {"max_len": 20}, "student": {"max_len": 20}}).student.max_len == 20
    # general models have no window: the rule does not apply
    cfg = from_dict({"teacher": {"arch": "mf", "loss": "bpr", "max_len": 1},
                     "student": {"arch": "mf", "loss": "bpr", "max_len": 5}, **GENERAL})
    assert cfg.kd_positions == "all"


def test_dim_must_be_divisible_by_heads():
    assert error_of({"student": {"dim": 10, "heads": 3}}) == "student.dim (10) must be divisible by student.heads (3)"
    assert error_of({"teacher": {"dim": 6, "heads": 4}}).startswith("teacher.dim (6)")
    assert from_dict({"student": {"dim": 12, "heads": 3}}).student.heads == 3


ALL_LOSSES = typing.get_args(typing.get_type_hints(ModelConfig)["loss"])


@pytest.mark.parametrize("arch", list(MODELS))
def test_each_backbone_takes_exactly_its_declared_losses(arch):
    declared = MODELS[arch].losses
    assert declared and set(declared) <= set(ALL_LOSSES)
    partner = arch  # the same family on the other side, with a loss it takes
    for loss in ALL_LOSSES:
        values = pair(partner, arch, loss_s=loss)
        if loss in declared:
            assert from_dict(values).student.loss == loss
        else:
            assert error_of(values) == (f"student.loss '{loss}' is not available for {arch}; "
                                        f"choose {', '.join(declared)}")


def test_the_documented_loss_choices():
    assert "ssm" in MODELS["hstu"].losses and "ssm" not in MODELS["sasrec"].losses
    assert "bpr" in MODELS["mf"].losses and "bpr" not in MODELS["gru4rec"].losses


def test_model_config_validation():
    with pytest.raises(ConfigError, match="ssm"):
        from_dict({"student": {"arch": "sasrec", "loss": "ssm"}})
    with pytest.raises(ConfigError, match="temperature"):
        from_dict({"teacher": {"arch": "hstu", "temperature": 0}})
    with pytest.raises(ConfigError, match="negatives"):
        from_dict({"teacher": {"arch": "hstu", "loss": "ssm", "negatives": 0}})
    cfg = from_dict({"teacher": {"arch": "hstu", "loss": "ssm"}, "student": {"arch": "gru4rec"}})
    assert cfg.teacher.negatives == 128 and cfg.student.arch == "gru4rec"


# ----------------------------------------------------------------------------- methods, seeds, eval


def test_methods_all_expands_to_every_registered_method():
    assert from_dict({"methods": ["all"]}).methods == list(METHODS)
    assert from_dict({"methods": "all"}).methods == list(METHODS)


@pytest.mark.parametrize("methods, needle", [
    ([], "'methods' is empty; name at least one"),
    (["kd", "rcekd", "kd"], "'methods' lists a method twice: ['kd', 'rcekd', 'kd']"),
    (["scratch", "nope"], f"unknown method 'nope'; choose from: {', '.join(METHODS)} (or all)"),
    (["all", "kd"], "unknown method 'all'"),
])
def test_bad_method_lists(methods, needle):
    assert needle in error_of({"methods": methods})


def test_seeds_must_be_distinct_and_present():
    assert error_of({"seeds": []}) == "'seeds' must be distinct integers such as 0,1,2; got []"
    msg = error_of({"seeds": [0, 1, 0]})
    assert msg.startswith("'seeds' ") and "[0, 1, 0]" in msg
    assert from_dict({"seeds": [2, 0, 1]}).seeds == [2, 0, 1]


def test_eval_select_must_be_measured_by_eval_ks():
    msg = error_of({"eval": {"select": "NDCG@5"}})
    assert msg == (f"eval.select 'NDCG@5' is not measured with eval.ks [10, 20]; "
                   f"choose one of: {', '.join(metric_names([10, 20]))}")
    assert "eval.select 'ndcg@10'" in error_of({"eval": {"select": "ndcg@10"}})
    assert "eval.select 'NDCG@10'" in error_of({"eval": {"ks": [5, 20]}})  # the default is no longer measured
    for select in metric_names([5, 20]):
        assert from_dict({"eval": {"ks": [5, 20], "select": select}}).eval.select == select


@pytest.mark.parametrize("ks", [[], [0, 10], [10, -5], [10, 10]])
def test_eval_ks_must_be_positive_cut_offs(ks):
    msg = error_of({"eval": {"ks": ks}})
    assert msg.startswith("'eval.ks' ") and (str(ks) in msg or str(min(ks)) in msg), msg


# ----------------------------------------------------------------------------- each method's own rules


@pytest.mark.parametrize("override, needle", [
    ({"rrd": {"K": 600}}, "rrd.K"),
    ({"dcd": {"T": 0}}, "dcd.T"),
    ({"cd": {"n": 6, "N": 10}}, "cd.n"),
    ({"unkd": {"groups": 0}}, "unkd.groups"),
    ({"hetcomp": {"every": 0}}, "hetcomp.every"),
    ({"de": {"tau_end": 2.0}}, "de.tau_end"),
    ({"de": {"lam": -1}}, "de.lam"),
    ({"rcekd": {"K": 60, "M": 50}}, "rcekd.M (50) must be ≥ rcekd.K (60)"),
    ({"rcekd": {"L": 60, "M": 50, "K": 10}}, "rcekd.L (60) must be ≤ rcekd.M (50)"),
    ({"dcd": {"K": 20, "M": 10}}, "dcd.K (20) must be ≤ dcd.M (10)"),
])
def test_impossible_settings_are_rejected(override, needle):
    assert needle in error_of(override)


def test_a_methods_rules_apply_even_when_it_does_not_run():
    # ranges and a method's own rules do not depend on the data: always checked
    assert "rrd.K" in error_of({"methods": ["scratch"], "rrd": {"K": 600}})


# ----------------------------------------------------------------------------- every declared range


def _sections() -> dict[str, object]:
    """Every dataclass section at its defaults by prefix ('' = the top level: seeds, teacher_seed)."""
    cfg = default_config()
    return {"": cfg} | {name: getattr(cfg, name) for name in SECTIONS} | dict(cfg.method_settings)


def _bounded_fields() -> list[tuple[str, str, str, float, type, bool]]:
    """(section, field, bound, bound value, number type, is a list) for every declared bound."""
    out = []
    for name, section in _sections().items():
        hints = typing.get_type_hints(type(section))
        for f in dataclasses.fields(section):
            tp = hints[f.name]
            is_list = typing.get_origin(tp) is list
            if is_list:
                tp = typing.get_args(tp)[0]
            tp = next((a for a in typing.get_args(tp) if a is not type(None)), tp)  # Optional[float] -> float
            for bound in ("ge", "gt", "le", "lt"):
                if f.metadata.get(bound) is not None:
                    out.append((name, f.name, bound, f.metadata[bound], tp, is_list))
    return out


BOUNDED = _bounded_fields()


def _key(section: str, name: str) -> str:
    return f"{section}.{name}" if section else name


def _values(section: str, name: str, value) -> dict:
    return {section: {name: value}} if section else {name: value}


def _outside(bound: str, limit: float, tp: type):
    """A value of the field's type just outside the bound."""
    if bound in ("gt", "lt"):
        return tp(limit)  # the open bound itself
    step = 1 if tp is int else 0.5
    return tp(limit - step) if bound == "ge" else tp(limit + step)


def test_the_walk_covers_every_section():
    covered = {name for name, *_ in BOUNDED}
    assert covered == {""} | set(SECTIONS) | set(default_config().method_settings)
    assert {("", "seeds"), ("eval", "ks"), ("rcekd", "gamma"), ("student", "dropout")} <= {
        (s, n) for s, n, *_ in BOUNDED}
    assert len(BOUNDED) > 60


@pytest.mark.parametrize("section, name, bound, limit, tp, is_list", BOUNDED,
                         ids=[f"{_key(s, n)}-{b}" for s, n, b, *_ in BOUNDED])
def test_a_value_outside_a_declared_range_names_the_key(section, name, bound, limit, tp, is_list):
    value = _outside(bound, limit, tp)
    msg = error_of(_values(section, name, [value] if is_list else value))
    assert msg.startswith(f"'{_key(section, name)}' must be "), msg
    assert msg.endswith(f"; got {value}"), msg


@pytest.mark.parametrize("section, name, bound, limit, tp, is_list",
                         [c for c in BOUNDED if c[2] in ("ge", "le")],
                         ids=[f"{_key(s, n)}-{b}" for s, n, b, *_ in BOUNDED if b in ("ge", "le")])
def test_the_bound_itself_of_a_closed_range_is_in_range(section, name, bound, limit, tp, is_list):
    part = copy.deepcopy(_sections()[section])
    setattr(part, name, [tp(limit)] if is_list else tp(limit))
    check_ranges(part, f"{section}." if section else "")  # no error


def test_one_sided_ranges_read_as_the_bound():
    assert error_of({"kd": {"tau": 0}}) == "'kd.tau' must be > 0; got 0.0"
    assert error_of({"kd": {"lam": -1}}) == "'kd.lam' must be ≥ 0; got -1.0"


@pytest.mark.parametrize("values, key", [
    ({"student_train": {"lr": float("inf")}}, "student_train.lr"),
    ({"rcekd": {"T": float("nan")}}, "rcekd.T"),
    ({"teacher": {"temperature": float("inf")}}, "teacher.temperature"),
])
def test_numbers_must_be_finite(values, key):
    assert error_of(values).startswith(f"'{key}' must be ")


DISTINCT = [(s, f.name) for s, section in _sections().items() for f in dataclasses.fields(section)
            if f.metadata.get("distinct")]


@pytest.mark.parametrize("section, name", DISTINCT, ids=[_key(s, n) for s, n in DISTINCT])
def test_a_distinct_list_with_a_repeat_names_the_key(section, name):
    default = getattr(_sections()[section], name)
    repeated = default[:1] * 2 + default[1:]
    msg = error_of(_values(section, name, repeated))
    assert f"'{_key(section, name)}'" in msg and str(repeated) in msg


# ----------------------------------------------------------------------------- catalogue sizes


def test_sizes_are_checked_only_for_the_methods_run():
    cfg = from_dict({"methods": ["scratch"]})
    check_sizes(cfg, 100)  # rrd.M = 500 is irrelevant when rrd does not run
    cfg = from_dict({"methods": ["rrd"], "rrd": {"L": 10}})
    with pytest.raises(ConfigError, match=r"rrd\.M") as e:
        check_sizes(cfg, 100)
    assert str(e.value) == ("'rrd.M' = 500 exceeds the 100 items of this dataset; lower it "
                            "(e.g. --set rrd.M=50)")
    with pytest.raises(ConfigError, match=r"'rrd\.(L|M)'"):
        check_sizes(from_dict({"methods": ["rrd"]}), 100)  # both exceed by default
    cfg = from_dict({"methods": ["cd"], "cd": {"N": 50}})
    check_sizes(cfg, 100)


def test_size_checks_follow_the_methods_list():
    big = {"kd": {"K": 500}, "rcekd": {"M": 500}, "cd": {"N": 3000}, "hetcomp": {"K": 300}, "unkd": {"groups": 200}}
    check_sizes(from_dict({"methods": ["scratch", "rrd"], "rrd": {"K": 10, "M": 20, "L": 20}, **big}), 100)
    for method, key in (("kd", "K"), ("rcekd", "M"), ("cd", "N"), ("hetcomp", "K"), ("unkd", "groups")):
        with pytest.raises(ConfigError) as e:
            check_sizes(from_dict({"methods": ["scratch", method], **big}), 100)
        assert str(e.value).startswith(f"'{method}.{key}' = {big[method][key]} exceeds the 100 items")


def test_method_catalogue_rules_and_eval_sizes():
    # rrd: M + L must leave room for the uninteresting items, each fitting on its own
    cfg = from_dict({"methods": ["rrd"], "rrd": {"M": 60, "L": 60, "K": 10}})
    with pytest.raises(ConfigError, match=r"rrd\.M \+ rrd\.L \(60 \+ 60\) exceeds the 100 items"):
        check_sizes(cfg, 100)
    check_sizes(from_dict({"methods": ["kd"], "rrd": {"M": 60, "L": 60, "K": 10}}), 100)  # rrd does not run
    # eval sizes are always checked
    with pytest.raises(ConfigError, match=r"'eval\.overlap_k' = 200 exceeds the 100 items"):
        check_sizes(from_dict({"methods": ["scratch"], "eval": {"overlap_k": 200}}), 100)
    with pytest.raises(ConfigError, match=r"'eval\.ks' \[10, 200\] exceeds the 100 items"):
        check_sizes(from_dict({"methods": ["scratch"], "eval": {"ks": [10, 200]}}), 100)
