"""The runs list as an experiment table: columns, sort, `/` filter, tags and notes, and the
cursor on the run just left."""

from __future__ import annotations

import json

from rcekd_core.runs.store import RunDir
from rcekd_tui.runinfo import list_runs, summarize
from rcekd_tui.screens.annotate import parse_tags
from tests.conftest import write_run_dir


def add_lam(run: RunDir, **lams) -> None:
    run.write_config({**run.read_config(), **{m: {"lam": v} for m, v in lams.items()}})


def test_a_run_summary_has_start_duration_preset_seeds_settings_and_notes(tmp_path):
    run = write_run_dir(tmp_path / "r", methods=("scratch", "kd"), seeds=(0, 1))
    add_lam(run, kd=0.01)
    run.write_notes(["baseline", "λ sweep"], "first try")
    s = summarize(run.root)
    events = [json.loads(x) for x in run.events.read_text().splitlines()]
    assert s.started == events[0]["t"] and s.seconds == events[-1]["t"] - events[0]["t"]
    assert (s.preset, s.seeds, s.settings, s.tags, s.note) == ("demo", [0, 1], "kd λ0.01", ["baseline", "λ sweep"],
                                                               "first try")
    assert "λ sweep" in s.text() and "first try" in s.text()


def test_a_finished_run_with_a_diverged_fit_says_diverged(tmp_path):
    run = write_run_dir(tmp_path / "r")
    with run.events.open("a") as fh:
        fh.write(json.dumps({"type": "end", "t": 2e9, "status": "finished", "diverged": 1}) + "\n")
    assert summarize(run.root).status == "diverged"


def test_notes_that_cannot_be_read_are_empty_and_tags_parse_once_each(tmp_path):
    run = write_run_dir(tmp_path / "r")
    run.notes.write_text("[not, a, mapping")
    assert run.read_notes() == ([], "")
    assert parse_tags(" a, b ,, a,c d ") == ["a", "b", "c d"]


async def wait_rows(pilot, table, n):
    for _ in range(100):
        await pilot.pause(0.05)
        if table.row_count == n:
            return
    raise AssertionError(f"{table.row_count} rows, expected {n}")


async def test_sort_filter_annotate_and_the_cursor_back_on_the_run_just_left(tmp_path):
    from textual.widgets import DataTable, Input

    from rcekd_tui.app import RcekdApp
    from rcekd_tui.screens.annotate import AnnotateScreen
    from rcekd_tui.screens.run import RunScreen
    from rcekd_tui.screens.runs import RunsScreen

    root = tmp_path / "runs"
    for name, methods in (("alpha", ("scratch",)), ("beta", ("scratch", "kd")), ("gamma", ("scratch", "rcekd"))):
        write_run_dir(root / name, methods=methods)
    app = RcekdApp(runs_root=root, prewarm=False)
    async with app.run_test(size=(160, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        table = screen.query_one(DataTable)
        await wait_rows(pilot, table, 3)
        screen.sort_on("run")
        assert [r.name for r in screen.runs] == ["alpha", "beta", "gamma"]
        screen.sort_on("run")  # the same column again: reversed
        assert [r.name for r in screen.runs] == ["gamma", "beta", "alpha"]
        screen.sort_on("best")  # best test NDCG@10 first: rcekd's run
        assert screen.runs[0].name == "gamma"

        table.move_cursor(row=[r.name for r in screen.runs].index("beta"))
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, AnnotateScreen)
        app.screen.query_one("#annotate-tags", Input).value = "kd-only, keep"
        await pilot.press("enter", "enter")  # tags → note → saved
        await pilot.pause(0.3)
        assert RunDir(root / "beta").read_notes() == (["kd-only", "keep"], "")
        await wait_rows(pilot, table, 3)

        await pilot.press("slash")
        await pilot.press(*"kd-on")
        await pilot.pause()
        assert [r.name for r in screen.runs] == ["beta"]  # matched by its tag
        await pilot.press("escape")
        await pilot.pause()
        assert len(screen.runs) == 3 and screen.filter_text == ""

        table.move_cursor(row=[r.name for r in screen.runs].index("alpha"))
        write_run_dir(root / "delta")  # a run launched from the set-up form: its screen opens
        await app.push_screen(RunScreen(root / "delta"))
        await pilot.pause()
        await pilot.press("b")
        for _ in range(60):
            await pilot.pause(0.05)
            if screen.current() and screen.current().name == "delta":
                break
        assert screen.current().name == "delta"  # not alpha, where the cursor was before


def test_list_runs_keeps_a_runs_notes(tmp_path):
    root = tmp_path / "runs"
    write_run_dir(root / "a").write_notes(["x"], "y")
    (run,) = list_runs(root)
    assert (run.tags, run.note) == (["x"], "y")
