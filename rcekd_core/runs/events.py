"""events.jsonl: append-only, one JSON object per line, flushed per line; and a tolerant tailer."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


class EventWriter:
    """Appends events; each carries `type` and wall time `t`, and is on disk when emit returns."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("a", encoding="utf-8")

    def emit(self, event: dict[str, Any]) -> None:
        record = {"t": round(time.time(), 3), **event}
        self._fh.write(json.dumps(record, default=_plain) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


class EventTailer:
    """Reads the events added since the last poll; a torn last line waits for its newline."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.offset = 0

    def poll(self) -> list[dict[str, Any]]:
        try:
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except FileNotFoundError:
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
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a corrupted line must not stop a watcher
        return events


def read_events(path: Path) -> list[dict[str, Any]]:
    return EventTailer(path).poll()
