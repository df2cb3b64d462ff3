"""events.jsonl: the typed records a run emits, the writer, and a tolerant tailer.

Every line is one JSON object `{"type": ..., "v": SCHEMA_VERSION, "t": wall time, ...fields}`.
The engine emits records; the TUI, `rcekd watch` and the console display parse them back
through `parse_event`, so nobody matches event dicts by string. Lines of an older version
parse with defaults for the fields they lack; unknown types and unreadable lines are
skipped and counted, never fatal (a watcher must survive a torn or foreign line).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

SCHEMA_VERSION = 1


@dataclass
class Event:
    """Base of every record; `t` is set by the writer when it is emitted."""

    type: ClassVar[str] = ""
    t: float | None = None
    v: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is not None or f.name == "t":
                out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "Event":
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in raw.items() if k in names}
        kwargs.setdefault("v", 0)  # lines written before the schema had a version
        return cls(**kwargs)


@dataclass
class RunStart(Event):
    type: ClassVar[str] = "run_start"
    name: str = ""
    device: str = ""
    dataset: dict[str, Any] = field(default_factory=dict)
    methods: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    teacher_cached: bool = False


@dataclass
class Phase(Event):
    """teacher (cached or trained), teacher_view (contexts computed once), student (method, seed)."""

    type: ClassVar[str] = "phase"
    phase: str = ""
    method: str | None = None
    seed: int | None = None
    cached: bool | None = None
    key: str | None = None
    contexts: int | None = None
    seconds: float | None = None


@dataclass
class FitStart(Event):
    type: ClassVar[str] = "fit_start"
    model: str = ""
    method: str = ""
    seed: int = 0
    epochs: int = 0
    batches: int = 0


@dataclass
class Epoch(Event):
    """One trained epoch: labels, losses and extras in `values`, validation metrics in `valid`.

    On disk the values sit at the top level of the line (as before the schema existed), so
    a method's own extras (γ, HetComp's stage, DE's τ) need no schema change.
    """

    type: ClassVar[str] = "epoch"
    model: str = ""
    method: str = ""
    seed: int = 0
    epoch: int = 0
    seconds: float = 0.0
    best_epoch: int = 0
    valid: dict[str, float] = field(default_factory=dict)
    values: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update(out.pop("values"))
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "Epoch":
        names = {f.name for f in dataclasses.fields(cls)} | {"type"}
        values = {k: v for k, v in raw.items() if k not in names and isinstance(v, (int, float))}
        ev = super().from_dict({k: v for k, v in raw.items() if k != "values"})
        ev.values = values
        return ev

    def get(self, key: str) -> float | None:
        return self.values.get(key)

    @property
    def overlap(self) -> float | None:
        """Teacher–student top-k overlap on validation, whatever k the run used."""
        return next((v for k, v in self.values.items() if k.startswith("overlap@")), None)

    def row(self) -> dict[str, Any]:
        """The metrics.csv row: labels, timings and losses, then `valid_<metric>` columns."""
        head = {"model": self.model, "method": self.method, "seed": self.seed, "epoch": self.epoch,
                "seconds": self.seconds}
        return {**head, **self.values, "best_epoch": self.best_epoch,
                **{f"valid_{k}": v for k, v in self.valid.items()}}


@dataclass
class Result(Event):
    """Final rows (one per split) of a trained or reference model, as results.csv holds them."""

    type: ClassVar[str] = "result"
    rows: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class RunWarning(Event):
    """Something the researcher should know that does not stop the run."""

    type: ClassVar[str] = "warning"
    method: str = ""
    message: str = ""


@dataclass
class Resumed(Event):
    """`rcekd distill --resume` picked the run up: what was kept and what continues."""

    type: ClassVar[str] = "resumed"
    fits_done: int = 0
    continuing: str = ""


@dataclass
class StopRequested(Event):
    type: ClassVar[str] = "stop_requested"


@dataclass
class Error(Event):
    """A failure: of the whole run, or (method, seed, epoch set) of one fit, e.g. a divergence."""

    type: ClassVar[str] = "error"
    message: str = ""
    kind: str = ""
    traceback: str = ""
    method: str | None = None
    seed: int | None = None
    epoch: int | None = None


@dataclass
class End(Event):
    type: ClassVar[str] = "end"
    status: str = "finished"  # finished | stopped | failed
    diverged: int = 0  # fits that diverged (their rows say status=diverged)


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls for cls in (RunStart, Phase, FitStart, Epoch, Result, RunWarning, Resumed, StopRequested, Error, End)
}


def parse_event(raw: Any) -> Event | None:
    """A record from one decoded line; None for anything that is not a known event."""
    if not isinstance(raw, dict):
        return None
    cls = EVENT_TYPES.get(raw.get("type"))
    if cls is None:
        return None
    try:
        return cls.from_dict(raw)
    except TypeError:
        return None


class EventWriter:
    """Appends records; each is on disk (flushed) when emit returns."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        torn = _ends_torn(self.path)
        self._fh = self.path.open("a", encoding="utf-8")
        if torn:  # a killed writer's half line: end it, so the next record stands on its own line
            self._fh.write("\n")

    def emit(self, event: Event) -> None:
        event.t = round(time.time(), 3)
        self._fh.write(json.dumps(event.to_dict(), default=_plain) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def _ends_torn(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            if fh.tell() == 0:
                return False
            fh.seek(-1, 2)
            return fh.read(1) != b"\n"
    except OSError:
        return False


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


class EventTailer:
    """Reads the records added since the last poll; a torn last line waits for its newline.

    `skipped` counts lines that were not a known event (corrupt, foreign or newer types).
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.offset = 0
        self.skipped = 0

    def poll(self) -> list[Event]:
        try:
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except OSError:  # not there yet, a folder, not readable: nothing to read now
            return []
        end = chunk.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        events = []
        for line in chunk[: end + 1].splitlines():
            if not line.strip():
                continue
            try:
                ev = parse_event(json.loads(line))
            except (ValueError, RecursionError):  # not JSON, not UTF-8, nested too deep
                ev = None
            if ev is None:
                self.skipped += 1
            else:
                events.append(ev)
        return events


def read_events(path: Path) -> list[Event]:
    return EventTailer(path).poll()
