"""Console progress for headless runs: a rich live bar on a terminal, plain lines in a pipe."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from rcekd_core.runs.events import (
    End,
    Epoch,
    Error,
    Event,
    FitStart,
    Phase,
    Result,
    RunStart,
    StopRequested,
    parse_event,
)

KEYS = ("NDCG@10", "Recall@10")
SHORT = {"NDCG@10": "N@10", "Recall@10": "R@10"}  # the abbreviations of RecSys papers
DROP_FIRST = ("seconds", "overlap", "Recall@10")  # what a narrow line leaves out, in this order
FULL_LABELS = 120  # columns from which lines carry full labels: rcekd's longest line takes 118


def epoch_line(e: Epoch, width: int | None = None) -> str:
    """One epoch on one line, fitting `width` (None: any length). Full labels from FULL_LABELS
    columns; below, short ones for every line alike, and a line still too long leaves out its
    seconds, then the overlap, then Recall@10."""
    if width is None or width >= FULL_LABELS:
        return _join(_epoch_fields(e, short=False))
    fields = _epoch_fields(e, short=True)
    for key in DROP_FIRST:
        if len(_join(fields)) <= width:
            break
        fields = [(k, text) for k, text in fields if k != key]
    return _join(fields)


def _join(fields: list[tuple[str, str]]) -> str:
    return "  ".join(text for _, text in fields)


def _epoch_fields(e: Epoch, short: bool) -> list[tuple[str, str]]:
    """(key, text) of each value the epoch measured, in display order."""
    if e.model == "teacher":
        who = "teacher"
    else:
        who = f"{e.method}/{e.seed}" if short else f"{e.method} seed {e.seed}"
    fields = [("who", f"{who} {'ep' if short else 'epoch'} {e.epoch}"), ("loss", f"loss {_loss(e.get('loss'))}")]
    if e.get("kd_loss") is not None:
        fields.append(("kd", f"kd {_loss(e.get('kd_loss'))}"))
    if e.get("gamma") is not None:
        fields.append(("gamma", f"γ {e.get('gamma'):.3f}"))
    for k in KEYS:
        if k in e.valid:
            fields.append((k, f"{SHORT[k]} {e.valid[k]:.4f}" if short else f"val {k} {e.valid[k]:.4f}"))
    if e.get("overlap@10") is not None:
        fields.append(("overlap", f"{'ovl' if short else 'overlap'} {e.get('overlap@10'):.3f}"))
    fields.append(("seconds", _seconds(e.seconds)))
    return fields


def _loss(value: float | None) -> str:
    """Four significant digits, never an exponent: 4.097, 274.4, 0.5000, 12345."""
    if value is None or not math.isfinite(value):
        return "nan" if value is None else str(value)  # nan, inf: a diverging fit shows as such
    digits = 3 - math.floor(math.log10(abs(value))) if value else 3
    return f"{value:.{min(max(digits, 0), 4)}f}"


def _seconds(seconds: float) -> str:
    """0.25s, 12.3s, 125s: the tenths of a long epoch do not matter."""
    return f"{seconds:.2f}s" if seconds < 10 else f"{seconds:.1f}s" if seconds < 100 else f"{seconds:.0f}s"


def _fit(e: FitStart | Epoch | dict[str, Any]) -> tuple[Any, Any, Any]:
    get = e.get if isinstance(e, dict) else lambda k: getattr(e, k)
    return get("model"), get("method"), get("seed")


class ConsoleDisplay:
    """Receives the engine's event records; draws a progress bar per fit when attached to a terminal
    (with `--workers`, one bar per fit under way)."""

    def __init__(self, console: Console | None = None, live: bool | None = None):
        self.console = console or Console(stderr=False)
        self.live = self.console.is_terminal if live is None else live
        self.progress: Progress | None = None
        self.tasks: dict[tuple[Any, Any, Any], Any] = {}  # fit -> its bar

    def __call__(self, e: Event | dict[str, Any]) -> None:
        if not isinstance(e, Event):  # a plain dict goes through the schema like a line on disk
            e = parse_event(e)
        if isinstance(e, RunStart):
            d = e.dataset
            self.say(f"run {e.name} on {e.device}: {d['users']} users, {d['items']} items, "
                     f"{d['interactions']} interactions")
        elif isinstance(e, Phase):
            if e.phase == "teacher":
                self.say("teacher: " + ("loaded from cache " + str(e.key) if e.cached else "training"))
            elif e.phase == "student":
                self.say(f"student: {e.method} seed {e.seed}")
        elif isinstance(e, FitStart):
            self._start_bar(e)
        elif isinstance(e, Epoch):
            self._advance(e)
        elif isinstance(e, Result):
            self._end_bars(e.rows)
            for r in e.rows:
                if r["split"] == "test":
                    best = f"  (best epoch {r['best_epoch']})" if r.get("best_epoch") is not None else ""
                    status = "" if r.get("status", "finished") == "finished" else f"  [{r['status']}]"
                    self.say(f"  {r['model']} test NDCG@10 {_num(r.get('NDCG@10'))}  "
                             f"Recall@10 {_num(r.get('Recall@10'))}{best}{status}")
        elif isinstance(e, Error) and e.method is not None:  # one fit failed; the run goes on
            self.say(f"  error: {e.message}")
        elif isinstance(e, StopRequested):
            self.say("stop requested: finishing the current epoch")
        elif isinstance(e, End):
            self._stop_bar()

    def say(self, text: str) -> None:
        self.console.print(text, highlight=False) if self.live else print(text, flush=True)

    def _start_bar(self, e: FitStart) -> None:
        if not self.live:
            return
        if self.progress is None:
            self.progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TextColumn("{task.fields[info]}"),
                console=self.console, transient=True,
            )
            self.progress.start()
        elif _fit(e) in self.tasks:  # the same fit again (resumed): a fresh bar
            self.progress.remove_task(self.tasks.pop(_fit(e)))
        label = "teacher" if e.model == "teacher" else f"{e.method}/{e.seed}"
        self.tasks[_fit(e)] = self.progress.add_task(label, total=e.epochs, info="")

    def _advance(self, e: Epoch) -> None:
        task = self.tasks.get(_fit(e))
        if self.progress is None or task is None:
            print(epoch_line(e, self.console.width), flush=True)
            return
        info = f"val NDCG@10 {e.valid.get('NDCG@10', float('nan')):.4f}  best epoch {e.best_epoch}"
        self.progress.update(task, completed=e.epoch, info=info)
        self.progress.console.print(epoch_line(e, self.console.width), highlight=False, style="dim")

    def _end_bars(self, rows: list[dict[str, Any]]) -> None:
        """The bars of the fits these result rows end; the display itself once none is left."""
        for fit in {_fit(r) for r in rows}:
            task = self.tasks.pop(fit, None)
            if task is not None and self.progress is not None:
                self.progress.remove_task(task)
        if not self.tasks:
            self._stop_bar()

    def _stop_bar(self) -> None:
        self.tasks.clear()
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def _num(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "-"
