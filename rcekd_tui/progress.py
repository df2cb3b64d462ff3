"""Console progress for headless runs: a rich live bar on a terminal, plain lines in a pipe."""

from __future__ import annotations

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


def epoch_line(e: Epoch) -> str:
    who = "teacher" if e.model == "teacher" else f"{e.method} seed {e.seed}"
    loss = e.get("loss")
    parts = [f"{who} epoch {e.epoch}", f"loss {float('nan') if loss is None else loss:.4f}"]
    if e.get("kd_loss") is not None:
        parts.append(f"kd {e.get('kd_loss'):.4f}")
    if e.get("gamma") is not None:
        parts.append(f"γ {e.get('gamma'):.3f}")
    for k in KEYS:
        if k in e.valid:
            parts.append(f"val {k} {e.valid[k]:.4f}")
    if e.get("overlap@10") is not None:
        parts.append(f"overlap {e.get('overlap@10'):.3f}")
    parts.append(f"{e.seconds:.2f}s")
    return "  ".join(parts)


class ConsoleDisplay:
    """Receives the engine's event records; draws a progress bar per fit when attached to a terminal."""

    def __init__(self, console: Console | None = None, live: bool | None = None):
        self.console = console or Console(stderr=False)
        self.live = self.console.is_terminal if live is None else live
        self.progress: Progress | None = None
        self.task = None

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
            self._stop_bar()
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
        self._stop_bar()
        if not self.live:
            return
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("{task.fields[info]}"),
            console=self.console, transient=True,
        )
        label = "teacher" if e.model == "teacher" else f"{e.method}/{e.seed}"
        self.task = self.progress.add_task(label, total=e.epochs, info="")
        self.progress.start()

    def _advance(self, e: Epoch) -> None:
        if self.progress is None:
            print(epoch_line(e), flush=True)
            return
        info = f"val NDCG@10 {e.valid.get('NDCG@10', float('nan')):.4f}  best epoch {e.best_epoch}"
        self.progress.update(self.task, completed=e.epoch, info=info)
        self.progress.console.print(epoch_line(e), highlight=False, style="dim")

    def _stop_bar(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def _num(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "-"
