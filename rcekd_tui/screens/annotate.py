"""Tags and a note for one run, kept in its notes.yaml (the runs list shows and filters them)."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from rcekd_core.runs.store import RunDir


def parse_tags(text: str) -> list[str]:
    """'baseline, lam sweep,,x' → ['baseline', 'lam sweep', 'x'] (order kept, duplicates once)."""
    return list(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))


class AnnotateScreen(ModalScreen[bool]):
    """Dismissed with True when the notes were written."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, path: Path):
        super().__init__()
        self.run = RunDir(path)

    def compose(self) -> ComposeResult:
        tags, note = self.run.read_notes()
        with Vertical(id="annotate-box"):
            yield Label(f"[b]{escape(self.run.root.name)}[/b] · enter saves, escape cancels")
            yield Label("tags (comma-separated)")
            yield Input(", ".join(tags), id="annotate-tags")
            yield Label("note")
            yield Input(note, id="annotate-note")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "annotate-tags":
            self.query_one("#annotate-note", Input).focus()
            return
        tags = parse_tags(self.query_one("#annotate-tags", Input).value)
        note = self.query_one("#annotate-note", Input).value.strip()
        try:
            self.run.write_notes(tags, note)
        except OSError as e:
            self.notify(f"cannot write {self.run.notes}: {e.strerror or e}", severity="error", markup=False)
            return
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)
