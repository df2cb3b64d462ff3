"""The set-up form validates from the preset read once, never from disk per keystroke."""

from __future__ import annotations

import time

import pytest
from textual.widgets import Input, Select, Static

import rcekd_core.config as config
from rcekd_core.config import load_config
from rcekd_core.errors import ConfigError
from rcekd_tui import form
from rcekd_tui.app import RcekdApp
from rcekd_tui.screens.setup import SetupScreen


@pytest.fixture
def preset_reads(monkeypatch):
    """Every read of a preset file, by name (wherever it is called from)."""
    reads: list[str] = []
    original = config.load_preset_dict

    def counted(name):
        reads.append(name)
        return original(name)

    monkeypatch.setattr(config, "load_preset_dict", counted)
    monkeypatch.setattr(form, "load_preset_dict", counted)
    return reads


def test_check_gives_the_clis_config_and_message_without_reading(preset_reads):
    base = form.load_preset("demo")
    assert preset_reads == ["demo"]
    cfg, error = form.check(base, {"student": {"dim": 16}})
    assert error == "" and cfg == load_config("demo", {"student": {"dim": 16}})
    with pytest.raises(ConfigError) as e:
        load_config("demo", {"rcekd": {"M": 20}})
    assert form.check(base, {"rcekd": {"M": 20}}) == (None, str(e.value))
    assert base == config.load_preset_dict("demo")  # validating did not change the loaded preset
    preset_reads.clear()
    for m in range(20, 80, 10):
        form.check(base, {"rcekd": {"M": m}})
    assert preset_reads == []


def test_preset_values_are_the_resolved_preset(preset_reads):
    values = form.preset_values(form.load_preset("demo"))
    cfg = load_config("demo")
    assert values["rcekd.K"] == str(cfg.rcekd.K) and values["methods"] == ",".join(cfg.methods)
    assert values["seeds"] == ",".join(map(str, cfg.seeds)) and values["data.source"] == "demo"


async def wait_for(pilot, cond, timeout=30.0):
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "condition not met in time"
        await pilot.pause(0.1)


async def test_typing_in_the_form_reads_the_preset_once_per_selection(tmp_path, preset_reads):
    app = RcekdApp(runs_root=tmp_path / "runs", prewarm=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("n")
        screen = app.screen
        assert isinstance(screen, SetupScreen)
        await wait_for(pilot, lambda: bool(screen.defaults))
        assert preset_reads == ["demo"]
        error = screen.query_one("#setup-error", Static)
        for key, value in [("rcekd-K", "20"), ("rcekd-L", "20"), ("rcekd-M", "10"),
                           ("kd-lam", "0.5"), ("student-dim", "16")]:
            box = screen.query_one(f"#{key}", Input)
            box.focus()
            box.value = ""
            await pilot.press(*value)  # keystroke by keystroke: each one validates
        await pilot.pause(0.2)
        assert "rcekd.M (10) must be ≥ rcekd.K (20)" in str(error.render())
        assert preset_reads == ["demo"]
        screen.query_one("#rcekd-M", Input).value = "40"
        await pilot.pause(0.2)
        assert "valid" in str(error.render()) and screen.overrides["student"] == {"dim": 16}
        screen.query_one("#preset", Select).value = "demo-mf"  # another preset: read once more
        await wait_for(pilot, lambda: screen.query_one("#student-arch", Input).value == "mf")
        assert preset_reads == ["demo", "demo-mf"]


async def test_the_form_checks_the_data_file_and_list_sizes_as_the_run_would(tmp_path):
    app = RcekdApp(runs_root=tmp_path / "runs", prewarm=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("n")
        screen = app.screen
        await wait_for(pilot, lambda: bool(screen.defaults) and screen.n_items is not None)
        error = screen.query_one("#setup-error", Static)
        assert "valid" in str(error.render())
        arch = screen.query_one("#student-arch", Input)
        assert arch.value == "sasrec" and arch.cursor_position == 0  # its start shows in a narrow field
        screen.query_one("#rcekd-M", Input).value = str(screen.n_items + 1)
        await wait_for(pilot, lambda: f"exceeds the {screen.n_items} items" in str(error.render()))
        assert screen.query_one("#start").disabled
        screen.query_one("#rcekd-M", Input).value = "100"
        missing = tmp_path / "nope.csv"
        screen.query_one("#data-file", Input).value = str(missing)
        await wait_for(pilot, lambda: "file not found" in str(error.render()))
        assert screen.query_one("#start").disabled
