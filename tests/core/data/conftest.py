"""Fixtures of the data-source tests: a private RCEKD_HOME and sources without their published
statistics (fixture files are small, so the size check would refuse them)."""

from __future__ import annotations

import dataclasses

import pytest

from rcekd_core.data import sources


@pytest.fixture
def home(tmp_path, monkeypatch):
    """Here home is the RCEKD_HOME folder itself (raw files go to home/raw/<name>/)."""
    h = tmp_path / "home"
    monkeypatch.setenv("RCEKD_HOME", str(h))
    return h


@pytest.fixture
def without_expected(monkeypatch):
    """without_expected(name): the source `name` with no published statistics to check."""

    def drop(name: str) -> None:
        monkeypatch.setitem(sources.SOURCES, name, dataclasses.replace(sources.SOURCES[name], expected=None))

    return drop
