"""The experiment settings as one typed tree of dataclasses (what presets and --set fill in).

Plain types only: engine modules import them from here, never the loader (config.py), so
there is no import cycle. Each KD method declares its own section (a MethodSettings subclass)
in its own file; ExperimentConfig holds one instance per registered method.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import ConfigError
from .memory import MB

SEED_MAX = 2**31 - 1  # the largest seed every generator here accepts
BIG = 10**7  # upper bound of counts (users, items, epochs, ...): beyond it a typo, not an experiment


def setting(default: Any, doc: str, *, ge: float | None = None, gt: float | None = None,
            le: float | None = None, lt: float | None = None, items: bool = False,
            distinct: bool = False, **kw: Any) -> Any:
    """A dataclass field with its one-line doc and its range.

    ge/gt/le/lt: bounds checked by `check_ranges` (for a list: on every element); numbers
    must also be finite. items=True: an item count, so it must also fit the catalogue
    (checked once the data is loaded, for the methods that run). distinct: a list without repeats.
    """
    meta = {"doc": doc, "ge": ge, "gt": gt, "le": le, "lt": lt, "items": items, "distinct": distinct}
    if isinstance(default, (list, dict)):
        value = default
        return field(default_factory=lambda: type(value)(value), metadata=meta, **kw)
    return field(default=default, metadata=meta, **kw)


def doc_of(section: Any, name: str) -> str:
    """The one-line doc of a setting ('' when it has none)."""
    for f in dataclasses.fields(section):
        if f.name == name:
            return f.metadata.get("doc", "")
    return ""


def check_ranges(section: Any, prefix: str) -> None:
    """Every declared bound of a section, with the valid range in the message."""
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        key = f"{prefix}{f.name}"
        if isinstance(value, list):
            if f.metadata.get("distinct") and len(set(value)) != len(value):
                raise ConfigError(f"'{key}' lists a value twice: {value}; give each once")
            for v in value:
                _check_number(v, f.metadata, key)
        else:
            _check_number(value, f.metadata, key)


def _check_number(value: Any, meta: Any, key: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    lo, lo_open = (meta.get("gt"), True) if meta.get("gt") is not None else (meta.get("ge"), False)
    hi, hi_open = (meta.get("lt"), True) if meta.get("lt") is not None else (meta.get("le"), False)
    ok = math.isfinite(value)
    ok = ok and (lo is None or (value > lo if lo_open else value >= lo))
    ok = ok and (hi is None or (value < hi if hi_open else value <= hi))
    if not ok:
        raise ConfigError(f"'{key}' must be {_describe(lo, lo_open, hi, hi_open)}; got {value}")


def _describe(lo: float | None, lo_open: bool, hi: float | None, hi_open: bool) -> str:
    """The valid range in words: '> 0', '≥ 0', 'in [0, 1)', or 'a finite number'."""
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{_num(lo)}, {_num(hi)}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '≥'} {_num(lo)}"
    if hi is not None:
        return f"{'<' if hi_open else '≤'} {_num(hi)}"
    return "a finite number"


def item_counts(section: Any) -> list[str]:
    """Names of the settings that count items (they must not exceed the catalogue)."""
    return [f.name for f in dataclasses.fields(section) if f.metadata.get("items")]


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


@dataclass
class MethodSettings:
    """A KD method's section: λ plus the method's own fields (declared in its kd/ file)."""

    lam: float = setting(1.0, "weight λ of the KD term next to the base loss", ge=0)

    def check(self, prefix: str) -> None:
        """The method's own rules beyond single-field ranges (e.g. K ≤ M); raise ConfigError."""

    def check_catalogue(self, prefix: str, n_items: int) -> None:
        """Rules that need the catalogue size beyond single item counts (e.g. M + L ≤ items)."""


@dataclass
class DataConfig:
    source: str = setting("demo", "a named source (`rcekd data list`), or 'file'")
    file: str | None = setting(None, "user file (CSV/TSV); with source 'file'")
    sep: str | None = setting(None, "column separator; None: tab for .tsv/.inter, comma otherwise")
    user_col: str = setting("user", "user column of a data file")
    item_col: str = setting("item", "item column of a data file")
    time_col: str = setting("timestamp", "timestamp column of a data file")
    header: bool = setting(True, "the data file has a header row")
    kcore: int = setting(0, "iterative k-core on users and items; 0 keeps everything", ge=0, le=BIG)
    protocol: Literal["loo", "ratio"] = setting(
        "loo", "loo: last item test, second-to-last validation (sequential models); "
        "ratio: per-user chronological 80/10/10 (general models mf, lightgcn)")
    n_users: int = setting(1500, "demo generator: users", gt=0, le=BIG)
    n_items: int = setting(600, "demo generator: items", gt=0, le=BIG)
    n_clusters: int = setting(20, "demo generator: interest clusters", gt=0, le=BIG)
    mean_len: int = setting(30, "demo generator: mean sequence length", gt=0, le=10_000)
    noise: float = setting(0.1, "demo generator: share of random items", ge=0, le=1)


@dataclass
class ModelConfig:
    arch: str = setting("sasrec", "backbone: sasrec, gru4rec, hstu (sequential); mf, lightgcn (general)")
    dim: int = setting(64, "embedding size", gt=0, le=16_384)
    blocks: int = setting(2, "transformer/GRU layers; lightgcn: propagation layers", gt=0, le=256)
    heads: int = setting(1, "attention heads (dim must be divisible by heads)", gt=0, le=256)
    max_len: int = setting(50, "window of history items the model sees", gt=0, le=100_000)
    dropout: float = setting(0.2, "dropout rate", ge=0, lt=1)
    loss: Literal["ce", "bce", "ssm", "bpr"] = setting(
        "ce", "ce: full softmax; bce: one sampled negative; ssm: sampled softmax (hstu); bpr: mf, lightgcn")
    negatives: int = setting(128, "hstu, loss ssm: uniform negatives per batch of the sampled softmax", gt=0, le=BIG)
    temperature: float = setting(0.05, "hstu: the base loss scores items by cosine / temperature", gt=0)
    kd_scores: Literal["cosine", "tempered"] = setting(
        "cosine", "hstu: scores KD methods see: cosine in [-1, 1] (the authors'), or tempered (cosine / temperature)")


@dataclass
class TrainConfig:
    epochs: int = setting(100, "maximum epochs", ge=0, le=BIG)
    batch_size: int = setting(128, "sequences (users, or windows under sliding) per batch", gt=0, le=BIG)
    lr: float = setting(1e-3, "Adam learning rate", gt=0)
    weight_decay: float = setting(0.0, "Adam weight decay", ge=0)
    patience: int = setting(10, "epochs without a better validation score before stopping", gt=0, le=BIG)
    eval_every: int = setting(1, "epochs between validations", gt=0, le=BIG)
    windows: Literal["last", "sliding"] = setting(
        "last", "sequential models: last: the last max_len training items of each user (default); sliding: "
                "also windows ending max_len, max_len + stride, ... items before it, so every training "
                "target trains once per epoch (KD stays on each user's last window); general models ignore it")
    stride: int = setting(0, "items between window ends under sliding; 0: max_len (disjoint windows); below "
                             "max_len: overlapping windows, more context per target; above: targets skipped",
                          ge=0, le=BIG)


@dataclass
class EvalConfig:
    ks: list[int] = setting([10, 20], "metric cut-offs", gt=0, le=BIG, distinct=True)
    chunk: int = setting(1024, "contexts scored at once, at most (eval.memory_mb may allow fewer)", gt=0, le=BIG)
    memory_mb: int = setting(256, "memory budget of every full-catalogue pass (evaluation, teacher view, refresh, "
                                  "popularity), MB", gt=0, le=BIG)
    mask_history: bool = setting(True, "items in the context are set to -inf before ranking")
    overlap_k: int = setting(10, "teacher–student top-k overlap cut-off", gt=0, items=True)
    select: str = setting("NDCG@10", "validation metric for early stopping and the best epoch")
    report_diverged: bool = setting(False, "summary and significance include diverged fits (at their best "
                                           "epoch before diverging); off: they are only in results.csv")

    @property
    def memory_bytes(self) -> int:
        """memory_mb in bytes: the budget every full-catalogue pass gets (rcekd_core.memory)."""
        return int(self.memory_mb * MB)


@dataclass
class ExperimentConfig:
    name: str = setting("demo", "the run's name: the default run directory is runs/<name>-<time>")
    data: DataConfig = field(default_factory=DataConfig)
    teacher: ModelConfig = field(default_factory=lambda: ModelConfig(dim=128, blocks=2))
    student: ModelConfig = field(default_factory=lambda: ModelConfig(dim=16, blocks=1))
    teacher_train: TrainConfig = field(default_factory=TrainConfig)
    student_train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    methods: list[str] = field(default_factory=lambda: ["scratch", "kd", "rcekd"])
    seeds: list[int] = setting([0], "student seeds: every method is trained once per seed", ge=0, le=SEED_MAX,
                               distinct=True)
    teacher_seed: int = setting(0, "the teacher's seed", ge=0, le=SEED_MAX)
    kd_positions: Literal["last", "all"] = setting(
        "all", "last: the validation context only (authors); all: every training prefix")
    device: Literal["auto", "cpu", "cuda"] = setting("auto", "auto: CUDA when present, else CPU")
    # one section per registered KD method, by name; config loading fills it from the registry
    # (config.default_config() is the tree at its defaults with every section)
    method_settings: dict[str, MethodSettings] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        # cfg.rcekd, cfg.kd, ...: a method's section reads like any other section
        sections = self.__dict__.get("method_settings")
        if sections is not None and name in sections:
            return sections[name]
        raise AttributeError(f"ExperimentConfig has no '{name}' (method sections come from config loading: "
                             "use rcekd_core.config.default_config() or load_config())")

    def method(self, name: str) -> MethodSettings:
        return self.method_settings[name]

    def to_dict(self) -> dict[str, Any]:
        """The tree as presets spell it: method sections at the top level, by name."""
        out = {f.name: dataclasses.asdict(getattr(self, f.name)) if dataclasses.is_dataclass(getattr(self, f.name))
               else _copy(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "method_settings"}
        out.update({name: dataclasses.asdict(s) for name, s in self.method_settings.items()})
        return out


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value
