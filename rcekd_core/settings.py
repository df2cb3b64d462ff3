"""The experiment settings as one typed tree of dataclasses (what presets and --set fill in)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

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
    protocol: str = "loo"  # loo: last item test, second-to-last validation (sequential models);
    # ratio: per-user chronological 80/10/10 (general models mf, lightgcn; the paper's protocol)
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
    blocks: int = 2  # lightgcn: propagation layers
    heads: int = 1
    max_len: int = 50
    dropout: float = 0.2
    loss: str = "ce"  # ce: full softmax over all items; bce: one sampled negative; ssm: hstu only;
    # bpr: one uniform negative per positive pair (mf, lightgcn)
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
