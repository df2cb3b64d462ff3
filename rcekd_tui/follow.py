"""RunState folds a run's event records into per-method series; `follow` tails them. No UI here."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from rcekd_core.runs.events import (
    End,
    Epoch,
    Error,
    Event,
    EventTailer,
    FitStart,
    Phase,
    Result,
    RunStart,
    StopRequested,
)
from rcekd_core.runs.store import EVENTS, RESULT_KEYS

FAST, SLOW = 0.3, 2.0  # poll seconds: while events flow / once finished or quiet
QUIET_AFTER = 10.0  # seconds without events before polling slows down
RESUMED = "resumed"  # the record a resumed run writes before its remaining events (runs/events.py)


class Malformed(ValueError):
    """A record of a known type whose fields have the wrong types (a foreign or corrupt line)."""


def _num(value: Any) -> float | None:
    """A finite number, else None (a missing value, NaN, or something that is not a number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        x = float(value)
    except OverflowError:
        return None
    return x if math.isfinite(x) else None


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise Malformed(what)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise Malformed(what)


def _dict(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Malformed(what)
    return value


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Malformed(what)
    return value


@dataclass
class Series:
    """One trained model's curves; one point per epoch number.

    An epoch the series already holds (a resumed run redoes the epoch it was killed in)
    replaces that point, and drops the points after it: they belonged to the killed part.
    """

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

    COLUMNS = ("epochs", "loss", "base_loss", "kd_loss", "ndcg", "recall", "overlap", "seconds")

    def add(self, ev: Epoch) -> None:
        """Raises Malformed (and changes nothing) when the record's fields are not what an epoch has."""
        valid = _dict(ev.valid, "valid")
        values = _dict(ev.values, "values")
        n = _int(ev.epoch, "epoch")
        point = (n, _num(values.get("loss")), _num(values.get("base_loss")), _num(values.get("kd_loss")),
                 _num(valid.get("NDCG@10")), _num(valid.get("Recall@10")), _num(ev.overlap),
                 _num(ev.seconds) or 0.0)
        if self.epochs and n <= self.epochs[-1]:
            keep = next(i for i, e in enumerate(self.epochs) if e >= n)
            for name in self.COLUMNS:
                del getattr(self, name)[keep:]
        for name, value in zip(self.COLUMNS, point):
            getattr(self, name).append(value)


@dataclass
class RunState:
    """Everything the live screen shows, rebuilt from event records alone (so watch == live).

    Records come from `parse_event`, so a run written by an older version replays too. A
    record whose fields have the wrong types is skipped and counted like an unreadable line;
    the log says how many lines were skipped.
    """

    name: str = ""
    device: str = ""
    dataset: dict[str, Any] = field(default_factory=dict)
    methods: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    phase: str = "waiting"
    current: tuple[str, str, int] | None = None  # (model, method, seed) of the latest epoch
    epoch: int = 0
    epochs_planned: int = 0
    # every fit started and without results yet, with its planned epochs (`--workers`: several)
    in_flight: dict[tuple[str, str, int], int] = field(default_factory=dict)
    status: str = "running"  # running | finished | failed | stopped | interrupted
    stop_requested: bool = False
    error: str = ""
    series: dict[tuple[str, str, int], Series] = field(default_factory=dict)
    results: list[dict[str, Any]] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    n_events: int = 0
    started: float | None = None
    last_t: float | None = None
    fits_done: int = 0
    resumes: int = 0
    skipped_lines: int = 0  # lines of the events file the tailer could not read
    malformed: int = 0  # records of a known type with fields of the wrong types
    _told: int = 0  # skipped lines already reported in the log

    @property
    def skipped(self) -> int:
        return self.skipped_lines + self.malformed

    def apply(self, events: list[Event], skipped_lines: int | None = None) -> list[str]:
        """Fold a batch of events; returns the log lines it produced.

        `skipped_lines`: the tailer's count of unreadable lines so far (reported in the log).
        """
        before = len(self.log)
        for ev in events:
            try:
                self._one(ev)
            except (Malformed, TypeError, ValueError, AttributeError, KeyError):
                self.malformed += 1
        if skipped_lines is not None:
            self.skipped_lines = max(self.skipped_lines, skipped_lines)
        new = self.skipped - self._told
        if new > 0:
            self._told = self.skipped
            self._say(f"skipped {new} unreadable line{'s' if new != 1 else ''} of {EVENTS}")
        return self.log[before:]

    def _one(self, ev: Event) -> None:
        """One record; every field is checked before anything changes (see Malformed)."""
        t = _num(ev.t)
        if isinstance(ev, RunStart):
            dataset, methods, seeds = _dict(ev.dataset, "dataset"), _list(ev.methods, "methods"), _list(ev.seeds, "seeds")
            self.name, self.device = str(ev.name), str(ev.device)
            self.dataset, self.methods, self.seeds = dataset, [str(m) for m in methods], seeds
            d = self.dataset
            self._say(f"run {self.name} on {self.device}: {d.get('users', '?')} users, "
                      f"{d.get('items', '?')} items, methods {', '.join(self.methods)}")
        elif isinstance(ev, Phase):
            self.phase = str(ev.phase)
            extra = " ".join(f"{k}={getattr(ev, k)}" for k in ("method", "seed", "cached", "contexts")
                             if getattr(ev, k) is not None)
            self._say(f"phase {self.phase} {extra}".rstrip())
        elif isinstance(ev, FitStart):
            current = (str(ev.model), str(ev.method), _int(ev.seed, "seed"))
            planned = _int(ev.epochs, "epochs")
            self.current, self.epoch, self.epochs_planned = current, 0, planned
            self.in_flight[current] = planned
        elif isinstance(ev, Epoch):
            key = (str(ev.model), str(ev.method), _int(ev.seed, "seed"))
            series = self.series.get(key) or Series(*key)
            series.add(ev)
            self.series[key] = series
            self.current, self.epoch = key, series.epochs[-1]
            self.epochs_planned = self.in_flight.get(key, self.epochs_planned)
        elif isinstance(ev, Result):
            rows = _list(ev.rows, "rows")
            if not all(isinstance(r, dict) for r in rows):
                raise Malformed("rows")
            new = [self._result(r) for r in rows]
            for r in rows:
                self.in_flight.pop((str(r.get("model")), str(r.get("method")), r.get("seed")), None)
            if not rows or any(new):  # a resumed run re-reporting a kept fit is not one more fit
                self.fits_done += 1
            for r in rows:
                if r.get("split") == "test":
                    seed = "" if r.get("seed") in ("", None) else f" seed {r.get('seed')}"
                    self._say(f"result {r.get('method')}{seed}: test "
                              f"NDCG@10 {_f(r.get('NDCG@10'))} Recall@10 {_f(r.get('Recall@10'))}")
        elif isinstance(ev, StopRequested):
            self.stop_requested = True
            self._say("stop requested: finishing the current epoch")
        elif isinstance(ev, Error):
            self.error = str(ev.message)
            self._say(f"ERROR {ev.kind}: {self.error}")
        elif isinstance(ev, End):
            if not isinstance(ev.status, str) or not ev.status:
                raise Malformed("status")
            self.status = ev.status
            self.phase = self.status
            self.in_flight.clear()
            self._say(f"end: {self.status}")
        elif getattr(ev, "type", "") == RESUMED:
            self._resumed(ev)
        else:
            return  # a record type this screen does not show
        if not isinstance(ev, End) and self.status == "interrupted":
            self.status = "running"  # it was only quiet (or someone resumed it elsewhere)
        self.n_events += 1
        if t is not None:
            self.started = self.started if self.started is not None else t
            self.last_t = t

    def _result(self, row: dict[str, Any]) -> bool:
        """A row for a (model, method, seed, split) already held replaces it (a resumed run); True if new."""
        key = _row_key(row)
        for i, r in enumerate(self.results):
            if _row_key(r) == key:
                self.results[i] = row
                return False
        self.results.append(row)
        return True

    def _resumed(self, ev: Event) -> None:
        """The run continues after a kill or a stop: finished fits kept, one fit continues."""
        fits = getattr(ev, "fits_done", None)
        continuing = str(getattr(ev, "continuing", "") or "")
        self.status, self.phase = "running", "resumed"
        self.in_flight.clear()
        self.stop_requested, self.error = False, ""
        self.resumes += 1
        kept = f"{fits} finished fits kept" if isinstance(fits, int) and not isinstance(fits, bool) else "resumed"
        self._say(f"resumed: {kept}" + (f"; continuing {continuing}" if continuing else ""))

    def mark_interrupted(self) -> list[str]:
        """The run's process is gone without an `end` event (killed, machine down)."""
        if self.status != "running":
            return []
        self.status = "interrupted"
        self._say("the run's process is gone without an end event: interrupted")
        return self.log[-1:]

    def _say(self, line: str) -> None:
        self.log.append(line)

    @property
    def teacher_ndcg(self) -> float | None:
        """The teacher's validation NDCG@10: the students' reference line."""
        for r in self.results:
            if r.get("model") == "teacher" and r.get("split") == "valid":
                return _num(r.get("NDCG@10"))
        return None

    def students(self) -> list[Series]:
        return [s for k, s in self.series.items() if k[0] == "student"]

    def label(self, s: Series) -> str:
        return s.method if len(self.seeds) <= 1 else f"{s.method}/s{s.seed}"

    def fits_in_flight(self) -> dict[tuple[str, str, int], int]:
        """The fits under way and their planned epochs (the current one, for older event files)."""
        return self.in_flight or ({self.current: self.epochs_planned} if self.current else {})

    def _epoch_of(self, key: tuple[str, str, int]) -> int:
        s = self.series.get(key)
        return s.epochs[-1] if s and s.epochs else 0

    def eta_seconds(self) -> float | None:
        """Upper bound (early stopping may end sooner): the fits under way and the remaining fits'
        epochs, shared among the fits that run at once."""
        if self.status != "running" or self.current is None:
            return None
        s = self.series.get(self.current)
        if not s or not s.seconds:
            return None
        per_epoch = sum(s.seconds) / len(s.seconds)
        running = self.fits_in_flight()
        left = sum(max(planned - self._epoch_of(k), 0) for k, planned in running.items()) * per_epoch
        if self.current[0] == "student":
            total_fits = len(self.methods) * max(len(self.seeds), 1)
            # fits_done counts the teacher
            fits_left = max(total_fits - (self.fits_done - 1) - len(running), 0)
            left += fits_left * self.epochs_planned * per_epoch
        return left / max(len(running), 1)

    def status_line(self, status: str | None = None) -> str:
        """`status` replaces the leading status word (the screen adds what a key would do)."""
        cur = ""
        if self.current and self.status in ("running", "interrupted"):
            if len(self.in_flight) > 1:  # `--workers`: every fit under way
                fits = [(key, self._epoch_of(key), planned) for key, planned in self.in_flight.items()]
            else:
                fits = [(self.current, self.epoch, self.epochs_planned)]
            cur = " | " + ", ".join(f"{_who(key)} epoch {epoch}/{planned or '?'}" for key, epoch, planned in fits)
        eta = self.eta_seconds()
        # the teacher's estimate cannot know the students' epoch time yet
        what = "teacher ETA" if self.current and self.current[0] == "teacher" else "ETA"
        eta_s = f" | {what} ≤ {_dur(eta)}" if eta is not None else ""
        stop = " | stopping…" if self.stop_requested and self.status == "running" else ""
        return f"{status or self.status} | phase {self.phase}{cur}{eta_s} | device {self.device or '?'}{stop}"


def _who(key: tuple[str, str, int]) -> str:
    model, method, seed = key
    return "teacher" if model == "teacher" else f"{method} seed {seed}"


def _row_key(row: dict[str, Any]) -> tuple[str, ...]:
    return tuple("" if row.get(k) is None else str(row.get(k)) for k in RESULT_KEYS)


def _f(v: Any) -> str:
    v = _num(v)
    return "-" if v is None else f"{v:.4f}"


def _dur(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def follow(events_path: Path, should_stop: Callable[[], bool],
           sleep: Callable[[float], None] = time.sleep, tailer: EventTailer | None = None) -> Iterator[list[Event]]:
    """Yield one batch of records per poll that found any (bursts coalesce; nothing is dropped).

    A poll that found only unreadable lines yields an empty batch, so the caller can say so
    (`tailer.skipped` counts them; pass your own tailer to read it). The file may not exist yet:
    polling waits for the run's first event.
    """
    tailer = tailer if tailer is not None else EventTailer(Path(events_path))
    quiet_since = time.monotonic()
    ended = False
    while not should_stop():
        skipped = tailer.skipped
        try:
            batch = tailer.poll()
        except OSError:  # unreadable for now (permissions, a network file system): try again
            batch = []
        except RecursionError:  # a line nested too deep for json (runs/events.py should skip it)
            tailer.skipped += 1
            batch = []
        if batch or tailer.skipped != skipped:
            quiet_since = time.monotonic()
            for e in batch:  # after an `end`, a `resumed` means the run goes on
                ended = True if isinstance(e, End) else False if getattr(e, "type", "") == RESUMED else ended
            yield batch
        idle = ended or time.monotonic() - quiet_since > QUIET_AFTER
        sleep(SLOW if idle else FAST)
