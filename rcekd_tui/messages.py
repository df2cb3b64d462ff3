"""Messages workers post to screens; dataclasses so they read as plain records."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual.message import Message


@dataclass
class EventsBatch(Message):
    """All events one poll found (bursts coalesce into one message; none are dropped)."""

    run_dir: Path
    events: list[dict[str, Any]]


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
