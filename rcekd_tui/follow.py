"""RunState folds events.jsonl into per-method series; `follow` tails it. No UI here."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from rcekd_core.runs.events import EventTailer

FAST, SLOW = 0.3, 2.0  # poll seconds: while events flow / once finished or quiet
QUIET_AFTER = 10.0  # seconds without events before polling slows down


@dataclass
class Series:
    """One trained model's curves; every epoch event adds one point."""

    model: str
    method: str
    seed: int
    epochs: list[int] = field(default_factory=list)
    loss: list[float | None] = field(default_factory=list)
    base_loss: list[float | None] = field(default_factory=list)
    kd_loss: list[float | None] = field(default_factory=list)
    ndcg: list[float | None] = field(default_factory=list)
    recall: list[float | None] = field(default_factory=list)
    overlap: list[float | None] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def add(self, ev: dict[str, Any]) -> None:
        valid = ev.get("valid") or {}
        self.epochs.append(int(ev.get("epoch", len(self.epochs) + 1)))
        self.loss.append(ev.get("loss"))
        self.base_loss.append(ev.get("base_loss"))
        self.kd_loss.append(ev.get("kd_loss"))
        self.ndcg.append(valid.get("NDCG@10"))
        self.recall.append(valid.get("Recall@10"))
        self.overlap.append(next((v for k, v in ev.items() if k.startswith("overlap@")), None))
        self.seconds.append(float(ev.get("seconds") or 0.0))


@dataclass
class RunState:
    """Everything the live screen shows, rebuilt from events alone (so watch == live)."""

    name: str = ""
    device: str = ""
    dataset: dict[str, Any] = field(default_factory=dict)
    methods: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    phase: str = "waiting"
    current: tuple[str, str, int] | None = None  # (model, method, seed) being trained
    epoch: int = 0
    epochs_planned: int = 0
    status: str = "running"  # running | finished | failed | stopped
    stop_requested: bool = False
    error: str = ""
    series: dict[tuple[str, str, int], Series] = field(default_factory=dict)
    results: list[dict[str, Any]] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    n_events: int = 0
    started: float | None = None
    last_t: float | None = None
    fits_done: int = 0

    def apply(self, events: list[dict[str, Any]]) -> list[str]:
        """Fold a batch of events; returns the log lines it produced."""
        before = len(self.log)
        for ev in events:
            self._one(ev)
        return self.log[before:]

    def _one(self, ev: dict[str, Any]) -> None:
        self.n_events += 1
        kind = ev.get("type")
        t = ev.get("t")
        if t is not None:
            self.started = self.started if self.started is not None else t
            self.last_t = t
        if kind == "run_start":
            self.name = ev.get("name", "")
            self.device = ev.get("device", "")
            self.dataset = ev.get("dataset") or {}
            self.methods = list(ev.get("methods") or [])
            self.seeds = list(ev.get("seeds") or [])
            d = self.dataset
            self._say(f"run {self.name} on {self.device}: {d.get('users', '?')} users, "
                      f"{d.get('items', '?')} items, methods {', '.join(self.methods)}")
        elif kind == "phase":
            self.phase = ev.get("phase", "")
            extra = " ".join(f"{k}={ev[k]}" for k in ("method", "seed", "cached", "contexts") if k in ev)
            self._say(f"phase {self.phase} {extra}".rstrip())
        elif kind == "fit_start":
            self.current = (ev.get("model", ""), ev.get("method", ""), int(ev.get("seed", 0)))
            self.epoch, self.epochs_planned = 0, int(ev.get("epochs", 0))
        elif kind == "epoch":
            key = (ev.get("model", ""), ev.get("method", ""), int(ev.get("seed", 0)))
            self.series.setdefault(key, Series(*key)).add(ev)
            self.current, self.epoch = key, int(ev.get("epoch", 0))
        elif kind == "result":
            rows = ev.get("rows") or []
            self.results.extend(rows)
            self.fits_done += 1
            for r in rows:
                if r.get("split") == "test":
                    seed = "" if r.get("seed") in ("", None) else f" seed {r.get('seed')}"
                    self._say(f"result {r.get('method')}{seed}: test "
                              f"NDCG@10 {_f(r.get('NDCG@10'))} Recall@10 {_f(r.get('Recall@10'))}")
        elif kind == "stop_requested":
            self.stop_requested = True
            self._say("stop requested: finishing the current epoch")
        elif kind == "error":
            self.error = ev.get("message", "")
            self._say(f"ERROR {ev.get('kind', '')}: {self.error}")
        elif kind == "end":
            self.status = ev.get("status", "finished")
            self.phase = self.status
            self._say(f"end: {self.status}")

    def _say(self, line: str) -> None:
        self.log.append(line)

    @property
    def teacher_ndcg(self) -> float | None:
        """The teacher's validation NDCG@10: the students' reference line."""
        for r in self.results:
            if r.get("model") == "teacher" and r.get("split") == "valid":
                return r.get("NDCG@10")
        return None

    def students(self) -> list[Series]:
        return [s for k, s in self.series.items() if k[0] == "student"]

    def label(self, s: Series) -> str:
        return s.method if len(self.seeds) <= 1 else f"{s.method}/s{s.seed}"

    def eta_seconds(self) -> float | None:
        """Upper bound (early stopping may end sooner): this fit's and the remaining fits' epochs."""
        if self.status != "running" or self.current is None:
            return None
        s = self.series.get(self.current)
        if not s or not s.seconds:
            return None
        per_epoch = sum(s.seconds) / len(s.seconds)
        left = max(self.epochs_planned - self.epoch, 0) * per_epoch
        if self.current[0] == "student":
            total_fits = len(self.methods) * max(len(self.seeds), 1)
            fits_left = max(total_fits - (self.fits_done - 1) - 1, 0)  # fits_done counts the teacher
            left += fits_left * self.epochs_planned * per_epoch
        return left

    def status_line(self) -> str:
        cur = ""
        if self.current and self.status == "running":
            model, method, seed = self.current
            who = "teacher" if model == "teacher" else f"{method} seed {seed}"
            cur = f" | {who} epoch {self.epoch}/{self.epochs_planned or '?'}"
        eta = self.eta_seconds()
        # the teacher's estimate cannot know the students' epoch time yet
        what = "teacher ETA" if self.current and self.current[0] == "teacher" else "ETA"
        eta_s = f" | {what} ≤ {_dur(eta)}" if eta is not None else ""
        stop = " | stopping…" if self.stop_requested and self.status == "running" else ""
        return f"{self.status} | phase {self.phase}{cur}{eta_s} | device {self.device or '?'}{stop}"


def _f(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, (int, float)) else "-"


def _dur(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def follow(events_path: Path, should_stop: Callable[[], bool],
           sleep: Callable[[float], None] = time.sleep) -> Iterator[list[dict[str, Any]]]:
    """Yield one batch per poll that found events (bursts coalesce; nothing is dropped)."""
    tailer = EventTailer(Path(events_path))
    quiet_since = time.monotonic()
    ended = False
    while not should_stop():
        batch = tailer.poll()
        if batch:
            quiet_since = time.monotonic()
            ended = ended or any(e.get("type") == "end" for e in batch)
            yield batch
        idle = ended or time.monotonic() - quiet_since > QUIET_AFTER
        sleep(SLOW if idle else FAST)
