"""Reject impossible settings before any work starts, with one line that names the fix."""

from __future__ import annotations

from .errors import ConfigError
from .settings import ExperimentConfig, ModelConfig, TrainConfig

def _positive(value: float, key: str, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        bound = "≥ 0" if allow_zero else "> 0"
        raise ConfigError(f"'{key}' must be {bound}; got {value}")


def validate(cfg: ExperimentConfig) -> None:
    """Reject impossible settings before any work starts."""
    from .kd.registry import method_names  # late: kd imports config types
    from .models.registry import is_general, model_names

    for role in ("teacher", "student"):
        arch = getattr(cfg, role).arch
        if arch not in model_names():
            raise ConfigError(f"unknown {role}.arch '{arch}'; choose one of: {', '.join(model_names())}")
    general = [is_general(cfg.teacher.arch), is_general(cfg.student.arch)]
    if general[0] != general[1]:
        raise ConfigError(f"teacher {cfg.teacher.arch} and student {cfg.student.arch} must both be sequential "
                          "(sasrec, gru4rec, hstu) or both general (mf, lightgcn): their states differ")
    for role in ("teacher", "student"):
        m: ModelConfig = getattr(cfg, role)
        for k in ("dim", "blocks", "heads", "max_len"):
            _positive(getattr(m, k), f"{role}.{k}")
        if m.dim % m.heads:
            raise ConfigError(f"{role}.dim ({m.dim}) must be divisible by {role}.heads ({m.heads})")
        if not 0 <= m.dropout < 1:
            raise ConfigError(f"'{role}.dropout' must be in [0, 1); got {m.dropout}")
        if is_general(m.arch):
            if m.loss not in ("bpr", "ce"):
                raise ConfigError(f"unknown {role}.loss '{m.loss}' for {m.arch}; choose bpr or ce")
        elif m.loss not in ("ce", "bce", "ssm"):
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
    if cfg.data.protocol not in ("loo", "ratio"):
        raise ConfigError(f"unknown data.protocol '{cfg.data.protocol}'; choose loo or ratio")
    want = "ratio" if general[0] else "loo"
    if cfg.data.protocol != want:
        kind = "general" if general[0] else "sequential"
        raise ConfigError(f"{kind} models ({cfg.teacher.arch} → {cfg.student.arch}) use data.protocol {want}; "
                          f"got {cfg.data.protocol}: add --set data.protocol={want}")
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
