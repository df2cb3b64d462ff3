"""Console progress for headless runs: a rich live bar on a terminal, plain lines in a pipe."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

KEYS = ("NDCG@10", "Recall@10")


def epoch_line(e: dict[str, Any]) -> str:
    who = "teacher" if e["model"] == "teacher" else f"{e['method']} seed {e['seed']}"
    parts = [f"{who} epoch {e['epoch']}", f"loss {e.get('loss', float('nan')):.4f}"]
    if "kd_loss" in e:
        parts.append(f"kd {e['kd_loss']:.4f}")
    if "gamma" in e:
        parts.append(f"γ {e['gamma']:.3f}")
    for k in KEYS:
        if k in e.get("valid", {}):
            parts.append(f"val {k} {e['valid'][k]:.4f}")
    if "overlap@10" in e:
        parts.append(f"overlap {e['overlap@10']:.3f}")
    parts.append(f"{e['seconds']:.2f}s")
    return "  ".join(parts)


class ConsoleDisplay:
    """Receives engine events; draws a progress bar per fit when attached to a terminal."""

    def __init__(self, console: Console | None = None, live: bool | None = None):
        self.console = console or Console(stderr=False)
        self.live = self.console.is_terminal if live is None else live
        self.progress: Progress | None = None
        self.task = None

    def __call__(self, e: dict[str, Any]) -> None:
        kind = e.get("type")
        if kind == "run_start":
            d = e["dataset"]
            self.say(f"run {e['name']} on {e['device']}: {d['users']} users, {d['items']} items, "
                     f"{d['interactions']} interactions")
        elif kind == "phase":
            if e["phase"] == "teacher":
                self.say("teacher: " + ("loaded from cache " + e["key"] if e["cached"] else "training"))
            elif e["phase"] == "student":
                self.say(f"student: {e['method']} seed {e['seed']}")
        elif kind == "fit_start":
            self._start_bar(e)
        elif kind == "epoch":
            self._advance(e)
        elif kind == "result":
            self._stop_bar()
            for r in e["rows"]:
                if r["split"] == "test":
                    best = f"  (best epoch {r['best_epoch']})" if r.get("best_epoch") is not None else ""
                    self.say(f"  {r['model']} test NDCG@10 {r['NDCG@10']:.4f}  Recall@10 {r['Recall@10']:.4f}{best}")
        elif kind == "stop_requested":
            self.say("stop requested: finishing the current epoch")
        elif kind == "end":
            self._stop_bar()

    def say(self, text: str) -> None:
        self.console.print(text, highlight=False) if self.live else print(text, flush=True)

    def _start_bar(self, e: dict[str, Any]) -> None:
        self._stop_bar()
        if not self.live:
            return
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("{task.fields[info]}"),
            console=self.console, transient=True,
        )
        label = "teacher" if e["model"] == "teacher" else f"{e['method']}/{e['seed']}"
        self.task = self.progress.add_task(label, total=e["epochs"], info="")
        self.progress.start()

    def _advance(self, e: dict[str, Any]) -> None:
        if self.progress is None:
            print(epoch_line(e), flush=True)
            return
        v = e.get("valid", {})
        info = f"val NDCG@10 {v.get('NDCG@10', float('nan')):.4f}  best epoch {e['best_epoch']}"
        self.progress.update(self.task, completed=e["epoch"], info=info)
        self.progress.console.print(epoch_line(e), highlight=False, style="dim")

    def _stop_bar(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

