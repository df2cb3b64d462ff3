"""Messages workers post to screens; dataclasses so they read as plain records."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual.message import Message

from rcekd_core.runs.events import Event


@dataclass
class EventsBatch(Message):
    """All events one poll found (bursts coalesce into one message; none are dropped).

    `skipped`: unreadable lines of the events file so far (the tailer's count); `offset`: how far
    into the file the tailer had read once these were found.
    """

    run_dir: Path
    events: list[Event]
    skipped: int = 0
    offset: int = 0


@dataclass
class EngineReady(Message):
    """The engine is imported (torch is slow to load): methods, presets and preset defaults."""

    methods: list[str]
    presets: list[str]
    sources: dict[str, str]
    defaults: dict[str, str]
    arch_settings: dict[str, tuple[str, ...]] = field(default_factory=dict)  # sizes each backbone reads
    general: frozenset[str] = frozenset()  # user–item backbones (KD context: the user)
    error: str = ""
    preset: dict[str, Any] = field(default_factory=dict)  # the preset's settings, read once


@dataclass
class DatasetStats(Message):
    """Headline statistics of a data source, loaded off the UI thread."""

    source: str
    stats: dict[str, Any] = field(default_factory=dict)
    note: str = ""


@dataclass
class RunsListed(Message):
    """A fresh scan of the runs root."""

    runs: list[Any]


@dataclass
class CompareLoaded(Message):
    """What the compare screen shows, read off the UI thread: curves, per-run means, config diff."""

    lines: dict[str, Any]  # chart id -> its Curves (screens/compare.py)
    per_run: dict[str, dict[str, dict[str, float | None]]]
    diff: dict[str, list[Any]]
    refs: dict[str, float | None] = field(default_factory=dict)  # chart id -> the teacher's value
    unfinished: dict[str, dict[str, str]] = field(default_factory=dict)  # run -> method -> "stopped 1"
