"""ExperimentConfig: presets, --set overrides and validation, all in one typed tree."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

PRESET_DIR = Path(__file__).resolve().parent.parent / "presets"


@dataclass
class DataConfig:
    source: str = "demo"
    file: str | None = None  # user file (CSV/TSV); with source "file"
    sep: str | None = None  # None: tab for .tsv/.inter, comma otherwise
    user_col: str = "user"
    item_col: str = "item"
    time_col: str = "timestamp"
    header: bool = True
    kcore: int = 0  # iterative k-core on users and items; 0 keeps everything
    protocol: str = "loo"  # leave-one-out split (last test, second-to-last validation)
    # demo generator
    n_users: int = 1500
    n_items: int = 600
    n_clusters: int = 20
    mean_len: int = 30
    noise: float = 0.1


@dataclass
class ModelConfig:
    arch: str = "sasrec"
    dim: int = 64
    blocks: int = 2
    heads: int = 1
    max_len: int = 50
    dropout: float = 0.2
    loss: str = "ce"  # ce: full softmax over all items; bce: one sampled negative; ssm: hstu only
    negatives: int = 128  # hstu, loss ssm: uniform negatives per batch of the sampled softmax
    temperature: float = 0.05  # hstu: scores are cosine / temperature


@dataclass
class TrainConfig:
    epochs: int = 100
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 10
    eval_every: int = 1


@dataclass
class EvalConfig:
    ks: list[int] = field(default_factory=lambda: [10, 20])
    chunk: int = 1024  # contexts scored at once: memory O(chunk x items)
    mask_history: bool = True  # items in the context are set to -inf before ranking
    overlap_k: int = 10


@dataclass
class KDConfig:
    """Vanilla listwise CE on a fixed item list."""

    lam: float = 1.0
    K: int = 50
    tau: float = 1.0
    list: str = "teacher"  # teacher: teacher's top-K; student: student's top-K refreshed per epoch


@dataclass
class RCEKDConfig:
    """RCE-KD (Zhu & Zhang 2025); switches are the paper's ablations."""

    lam: float = 1.0
    K: int = 50
    L: int = 50
    M: int = 100
    T: float = 10.0
    beta: float = 3.0
    tau: float = 1.0
    refresh_every: int = 0  # batches between refreshes; 0: once per epoch (the authors')
    sampling: str = "teacher"  # teacher: weights from teacher items below; rank: rank only
    student_term: bool = True  # False: drop the CE on the student's top-K
    union_ce: bool = False  # True: one CE over Q^S u J instead of two terms
    gamma: float | None = None  # constant gamma instead of exp(-beta * overlap)
    all_items: bool = False  # True: plain CE over all items (ablation)


@dataclass
class RRDConfig:
    """RRD (Kang et al. 2020): relaxed Plackett–Luce on sampled teacher top-M positions."""

    lam: float = 0.01  # not given for RRD in baselines.md; DCD's 0.01
    K: int = 100  # interesting items sampled from the teacher's top-M
    L: int = 200  # uninteresting items sampled uniformly outside it
    T: float = 10.0  # position weight exp(-rank / T)
    M: int = 500  # teacher list length (history masked)


@dataclass
class DCDConfig:
    """DCD (Lee & Kim 2021), user side: under-/over-ranked teacher items by rank discrepancy."""

    lam: float = 0.01
    K: int = 100  # items sampled on each side
    T: float = 10.0  # rank-difference scale in tanh
    M: int = 500  # teacher list length (history masked)


@dataclass
class CDConfig:
    """CD (Lee et al. 2019): soft-label BCE on student-guided samples."""

    lam: float = 0.01  # not given in baselines.md
    N: int = 3000  # student top-N pool (history masked); must not exceed the catalogue
    T: float = 20.0  # position weight exp(-rank / N / T)
    n: int = 2  # items kept per context (better of each of n pairs)


@dataclass
class UnKDConfig:
    """UnKD (Chen et al. 2023): BPR pairs inside popularity groups of equal interaction mass."""

    lam: float = 0.5
    groups: int = 4
    pairs: int = 10  # pairs per group (the authors used 2–30)
    T: float = 20.0  # position weight exp(-(i + 1) / T) inside a group's teacher ranking


@dataclass
class HetCompConfig:
    """HetComp (Kang et al. 2023): easy-to-hard lists from the teacher's training trajectory."""

    lam: float = 0.005
    alpha: float = 1.05  # switch threshold alpha * 0.995^(epoch // p)
    p: int = 10  # epochs between switch checks
    K: int = 50  # list length (history masked), also the NDCG cut-off of the switch test
    every: int = 2  # teacher training saves its weights every this many epochs
    checkpoints: int = 3  # trajectory checkpoints used (evenly spaced before the best epoch) + final


@dataclass
class DEConfig:
    """DE (Kang et al. 2020): experts map student states/items to the teacher's space."""

    lam: float = 0.05
    experts: int = 30
    tau_start: float = 1.0  # Gumbel-softmax temperature, annealed exponentially ...
    tau_end: float = 1e-10  # ... to this over student_train.epochs


@dataclass
class ExperimentConfig:
    name: str = "demo"
    data: DataConfig = field(default_factory=DataConfig)
    teacher: ModelConfig = field(default_factory=lambda: ModelConfig(dim=128, blocks=2))
    student: ModelConfig = field(default_factory=lambda: ModelConfig(dim=16, blocks=1))
    teacher_train: TrainConfig = field(default_factory=TrainConfig)
    student_train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    methods: list[str] = field(default_factory=lambda: ["scratch", "kd", "rcekd"])
    seeds: list[int] = field(default_factory=lambda: [0])
    teacher_seed: int = 0
    kd_positions: str = "all"  # last: the validation context only (authors); all: every training prefix
    kd: KDConfig = field(default_factory=KDConfig)
    rcekd: RCEKDConfig = field(default_factory=RCEKDConfig)
    rrd: RRDConfig = field(default_factory=RRDConfig)
    dcd: DCDConfig = field(default_factory=DCDConfig)
    cd: CDConfig = field(default_factory=CDConfig)
    unkd: UnKDConfig = field(default_factory=UnKDConfig)
    hetcomp: HetCompConfig = field(default_factory=HetCompConfig)
    de: DEConfig = field(default_factory=DEConfig)
    device: str = "auto"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert a YAML/CLI value to the annotated type, or raise naming the key."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"'{key}' must be a mapping of settings; got {value!r}")
        return _build(tp, value, key + ".")
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)][0]
        return _coerce(value, inner, key)
    if origin is list:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"'{key}' must be a list (e.g. a,b,c); got {value!r}")
        return [_coerce(v.strip() if isinstance(v, str) else v, args[0], key) for v in value]
    try:
        if tp is bool:
            if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
                return value.lower() in ("true", "yes", "1")
            if isinstance(value, bool):
                return value
            raise ValueError
        if tp is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if tp is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if tp is str:
            if isinstance(value, (dict, list)):
                raise ValueError
            return str(value)
    except (TypeError, ValueError):
        pass
    else:
        return value
    name = getattr(tp, "__name__", str(tp))
    raise ConfigError(f"'{key}' must be {name}; got {value!r} (fix the preset or the --set value)")


def _build(cls: type, values: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for k in values:
        if k not in names:
            raise ConfigError(
                f"unknown setting '{prefix}{k}'; known here: {', '.join(sorted(names))}"
            )
    base = cls()
    for k, v in values.items():
        if dataclasses.is_dataclass(hints[k]) and isinstance(v, dict):
            merged = dataclasses.asdict(getattr(base, k))
            merged.update(v)
            v = merged
        setattr(base, k, _coerce(v, hints[k], prefix + k))
    return base


def _deep_set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for p in parts[:-1]:
        child = node.get(p)
        if not isinstance(child, dict):
            child = {}
            node[p] = child
        node = child
    node[parts[-1]] = value


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Turn ['a.b=3', 'methods=kd,rcekd'] into a nested dict (values parsed as YAML)."""
    tree: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value; got '{item}' (e.g. --set rcekd.K=100)")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"--set expects key=value; got '{item}'")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        _deep_set(tree, key, value)
    return tree


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def preset_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("RCEKD_PRESETS"):
        dirs.append(Path(os.environ["RCEKD_PRESETS"]))
    dirs.append(PRESET_DIR)
    return dirs


def list_presets() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in preset_dirs():
        if d.is_dir():
            for p in sorted(d.glob("*.yaml")):
                found.setdefault(p.stem, p)
    return found


def preset_path(name: str) -> Path:
    if name.endswith((".yaml", ".yml")):
        p = Path(name)
        if not p.is_file():
            raise ConfigError(f"preset file '{name}' does not exist; pass an existing YAML file")
        return p
    presets = list_presets()
    if name not in presets:
        raise ConfigError(
            f"unknown preset '{name}'; choose one of: {', '.join(presets) or '(none found)'}"
            " (see `rcekd presets list`) or pass a path to a YAML file"
        )
    return presets[name]


def load_preset_dict(name: str) -> dict[str, Any]:
    path = preset_path(name)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"preset '{path}' is not valid YAML ({e.__class__.__name__}); fix the file")
    if not isinstance(raw, dict):
        raise ConfigError(f"preset '{path}' must be a mapping of settings")
    raw.setdefault("name", path.stem)
    return raw


def from_dict(values: dict[str, Any]) -> ExperimentConfig:
    cfg = _build(ExperimentConfig, values)
    validate(cfg)
    return cfg


def load_config(preset: str, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    return from_dict(merge(load_preset_dict(preset), overrides or {}))


def _positive(value: float, key: str, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        bound = "≥ 0" if allow_zero else "> 0"
        raise ConfigError(f"'{key}' must be {bound}; got {value}")


def validate(cfg: ExperimentConfig) -> None:
    """Reject impossible settings before any work starts."""
    from .kd.registry import method_names  # late: kd imports config types
    from .models.registry import model_names

    for role in ("teacher", "student"):
        m: ModelConfig = getattr(cfg, role)
        if m.arch not in model_names():
            raise ConfigError(f"unknown {role}.arch '{m.arch}'; choose one of: {', '.join(model_names())}")
        for k in ("dim", "blocks", "heads", "max_len"):
            _positive(getattr(m, k), f"{role}.{k}")
        if m.dim % m.heads:
            raise ConfigError(f"{role}.dim ({m.dim}) must be divisible by {role}.heads ({m.heads})")
        if not 0 <= m.dropout < 1:
            raise ConfigError(f"'{role}.dropout' must be in [0, 1); got {m.dropout}")
        if m.loss not in ("ce", "bce", "ssm"):
            raise ConfigError(f"unknown {role}.loss '{m.loss}'; choose ce, bce or ssm (hstu only)")
        if m.loss == "ssm" and m.arch != "hstu":
            raise ConfigError(f"{role}.loss ssm (sampled softmax) is for arch hstu; use ce or bce")
        _positive(m.negatives, f"{role}.negatives")
        _positive(m.temperature, f"{role}.temperature")
    for role in ("teacher_train", "student_train"):
        t: TrainConfig = getattr(cfg, role)
        _positive(t.epochs, f"{role}.epochs", allow_zero=True)
        for k in ("batch_size", "lr", "patience", "eval_every"):
            _positive(getattr(t, k), f"{role}.{k}")
        _positive(t.weight_decay, f"{role}.weight_decay", allow_zero=True)
    if not cfg.eval.ks or any(k <= 0 for k in cfg.eval.ks):
        raise ConfigError(f"'eval.ks' must be positive cut-offs such as 10,20; got {cfg.eval.ks}")
    _positive(cfg.eval.chunk, "eval.chunk")
    _positive(cfg.eval.overlap_k, "eval.overlap_k")
    if not cfg.methods:
        raise ConfigError("'methods' is empty; name at least one, e.g. --methods scratch,rcekd")
    known = method_names()
    if cfg.methods == ["all"]:
        cfg.methods = list(known)
    for name in cfg.methods:
        if name not in known:
            raise ConfigError(f"unknown method '{name}'; choose from: {', '.join(known)} (or all)")
    if len(set(cfg.methods)) != len(cfg.methods):
        raise ConfigError(f"'methods' lists a method twice: {cfg.methods}")
    if not cfg.seeds or len(set(cfg.seeds)) != len(cfg.seeds):
        raise ConfigError(f"'seeds' must be distinct integers such as 0,1,2; got {cfg.seeds}")
    if cfg.kd_positions not in ("last", "all"):
        raise ConfigError(f"unknown kd_positions '{cfg.kd_positions}'; choose last or all")
    if cfg.device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"unknown device '{cfg.device}'; choose auto, cpu or cuda")
    if cfg.data.protocol != "loo":
        raise ConfigError(f"unknown data.protocol '{cfg.data.protocol}'; choose loo")
    if cfg.data.kcore < 0:
        raise ConfigError(f"'data.kcore' must be ≥ 0; got {cfg.data.kcore}")
    kd = cfg.kd
    _positive(kd.K, "kd.K")
    _positive(kd.tau, "kd.tau")
    _positive(kd.lam, "kd.lam", allow_zero=True)
    if kd.list not in ("teacher", "student"):
        raise ConfigError(f"unknown kd.list '{kd.list}'; choose teacher or student")
    r = cfg.rcekd
    for k in ("K", "L", "M", "T", "tau"):
        _positive(getattr(r, k), f"rcekd.{k}")
    _positive(r.beta, "rcekd.beta", allow_zero=True)
    _positive(r.lam, "rcekd.lam", allow_zero=True)
    _positive(r.refresh_every, "rcekd.refresh_every", allow_zero=True)
    if r.M < r.K:
        raise ConfigError(f"rcekd.M ({r.M}) must be ≥ rcekd.K ({r.K}): the student pool holds its top-K")
    if r.L > r.M:
        raise ConfigError(f"rcekd.L ({r.L}) must be ≤ rcekd.M ({r.M}): samples come from the top-M")
    if r.sampling not in ("teacher", "rank"):
        raise ConfigError(f"unknown rcekd.sampling '{r.sampling}'; choose teacher or rank")
    if r.gamma is not None and not 0 <= r.gamma <= 1:
        raise ConfigError(f"'rcekd.gamma' must be in [0, 1] or null; got {r.gamma}")
    _validate_baselines(cfg)


def _validate_baselines(cfg: ExperimentConfig) -> None:
    """The ranking/embedding KD baselines: positive sizes, consistent list lengths."""
    for sec, keys in (("rrd", ("K", "L", "T", "M")), ("dcd", ("K", "T", "M")), ("cd", ("N", "T", "n")),
                      ("unkd", ("groups", "pairs", "T")), ("hetcomp", ("alpha", "p", "K", "every")),
                      ("de", ("experts", "tau_start", "tau_end"))):
        for k in keys:
            _positive(getattr(getattr(cfg, sec), k), f"{sec}.{k}")
        _positive(getattr(cfg, sec).lam, f"{sec}.lam", allow_zero=True)
    _positive(cfg.hetcomp.checkpoints, "hetcomp.checkpoints", allow_zero=True)
    if cfg.rrd.K > cfg.rrd.M:
        raise ConfigError(f"rrd.K ({cfg.rrd.K}) must be ≤ rrd.M ({cfg.rrd.M}): interesting items come from the top-M")
    if cfg.dcd.K > cfg.dcd.M:
        raise ConfigError(f"dcd.K ({cfg.dcd.K}) must be ≤ dcd.M ({cfg.dcd.M}): samples come from the top-M")
    if 2 * cfg.cd.n > cfg.cd.N:
        raise ConfigError(f"cd.n ({cfg.cd.n}) must be ≤ cd.N / 2 ({cfg.cd.N // 2}): n pairs are drawn from the top-N")
    if cfg.de.tau_end > cfg.de.tau_start:
        raise ConfigError(f"de.tau_end ({cfg.de.tau_end}) must be ≤ de.tau_start ({cfg.de.tau_start}): τ is annealed down")


def check_sizes(cfg: ExperimentConfig, n_items: int) -> None:
    """Checks that need the dataset: list sizes cannot exceed the catalogue."""
    for key, k in (("kd.K", cfg.kd.K), ("rcekd.M", cfg.rcekd.M), ("eval.overlap_k", cfg.eval.overlap_k)):
        if k > n_items:
            raise ConfigError(f"'{key}' = {k} exceeds the {n_items} items of this dataset; lower it")
    sized = {"rrd": ("M", "L"), "dcd": ("M",), "cd": ("N",), "hetcomp": ("K",), "unkd": ("groups",)}
    for method, keys in sized.items():
        if method in cfg.methods:
            for k in keys:
                v = getattr(getattr(cfg, method), k)
                if v > n_items:
                    raise ConfigError(f"'{method}.{k}' = {v} exceeds the {n_items} items of this dataset; "
                                      f"lower it (e.g. --set {method}.{k}={n_items // 2})")
    if "rrd" in cfg.methods and cfg.rrd.M + cfg.rrd.L > n_items:
        raise ConfigError(f"rrd.M + rrd.L ({cfg.rrd.M} + {cfg.rrd.L}) exceeds the {n_items} items of this "
                          "dataset: uninteresting items come from outside the top-M; lower them")
    if max(cfg.eval.ks) > n_items:
        raise ConfigError(f"'eval.ks' {cfg.eval.ks} exceeds the {n_items} items of this dataset")


def stable_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]
