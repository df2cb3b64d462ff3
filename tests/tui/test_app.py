"""The app driven headlessly with Pilot: watch, runs list + export, compare, set-up validation and
start; and a first screen that imports neither torch nor pandas."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from textual.widgets import Button, DataTable, Input, Select, Static

from rcekd_tui import launch
from rcekd_tui.app import RcekdApp
from rcekd_tui.screens.compare import CompareScreen
from rcekd_tui.screens.run import RunScreen
from rcekd_tui.screens.runs import RunsScreen
from rcekd_tui.screens.setup import SetupScreen
from rcekd_tui.widgets.charts import LineChart
from rcekd_tui.widgets.results import ResultsTable
from tests.conftest import NDCG


async def wait_for(pilot, cond, timeout=30.0):
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "condition not met in time"
        await pilot.pause(0.1)


def table_text(table: DataTable) -> str:
    return "\n".join(" ".join(str(c) for c in table.get_row_at(i)) for i in range(table.row_count))


async def test_watch_finished_run_shows_final_metrics(finished_run, tmp_path):
    app = RcekdApp(watch_dir=finished_run)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, RunScreen)
        await wait_for(pilot, lambda: screen.state.status == "finished")
        await pilot.pause(0.2)
        text = table_text(screen.query_one(ResultsTable))
        assert "rcekd" in text and "scratch" in text and "teacher" in text
        assert len(screen.state.students()) == 2
        svg = Path(app.save_screenshot("watch.svg", path=str(tmp_path))).read_text()
        assert "finished" in svg and "NDCG@10" in svg
        await pilot.press("b")  # in watch mode leaving means quitting; the run is untouched
    assert not (finished_run / "STOP").exists()


async def test_watch_a_hand_written_run_shows_its_results(write_run):
    run = write_run(end="stopped", methods=("scratch", "kd", "rcekd"), seeds=(0, 1))
    app = RcekdApp(watch_dir=run.root)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.state.status == "stopped")
        await pilot.pause(0.2)
        table = screen.query_one(ResultsTable)
        rows = [table.get_row_at(i) for i in range(table.row_count)]
        assert [r[:2] for r in rows] == [["teacher", "1"], ["popularity", "1"], ["scratch", "2"], ["kd", "2"],
                                         ["rcekd", "2"]]
        # test NDCG@10 as mean ± std of 2 seeds, the best student's in bold; valid NDCG@10 their mean
        assert str(rows[-1][2]).startswith("0.1505±") and rows[-1][2].style == "bold" and rows[-1][-2] == "0.1605"
        assert isinstance(rows[2][2], str) and rows[2][2].startswith("0.1005±")  # scratch: not the best
        assert "stopped | phase stopped" in str(screen.query_one("#run-status", Static).render())
        assert not screen.check_action("stop", ())  # an ended run offers no stop key


async def test_runs_screen_lists_and_exports(finished_run, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(finished_run, root / finished_run.name)
    app = RcekdApp(runs_root=root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        table = screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 1)
        assert "finished" in table_text(table) and "tiny-run" in table_text(table)
        await pilot.press("space")
        assert screen.selected == {"tiny-run"}
        await pilot.press("e")
        await wait_for(pilot, lambda: list(root.glob("export-*.csv")))
        header = next(root.glob("export-*.csv")).read_text().splitlines()[0]
        assert header == "run,method,seed,split,status,metric,value"
        await pilot.press("enter")
        assert isinstance(app.screen, RunScreen)
        await pilot.press("b")
        assert isinstance(app.screen, RunsScreen)


async def test_compare_reads_in_a_worker_and_shows_curves_results_and_diff(write_run):
    a = write_run("a", methods=("scratch",), epochs=2)
    b = write_run("b", methods=("scratch", "rcekd"), epochs=3)
    app = RcekdApp(runs_root=a.root.parent, prewarm=False)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = CompareScreen([a.root, b.root], a.root.parent)
        await app.push_screen(screen)
        diff = screen.query_one("#compare-diff", DataTable)
        await wait_for(pilot, lambda: diff.row_count > 0)
        assert [diff.get_row_at(i) for i in range(diff.row_count)] == [
            ["methods", "['scratch']", "['scratch', 'rcekd']"], ["teacher_train.epochs", "2", "3"]]
        ndcg = screen.query_one("#cmp-ndcg", LineChart)
        assert [line[0] for line in ndcg.lines] == ["a:scratch", "b:scratch", "b:rcekd"]
        assert ndcg.reference == ("teacher", pytest.approx(NDCG["teacher"] + 0.01))  # the teacher's valid line
        assert len({ndcg.style(label).color for label, _, _ in ndcg.lines}) == 3  # scratch twice: two colours
        kd = screen.query_one("#cmp-kd", LineChart)
        assert [label for label, _, _ in kd.drawn()] == ["b:rcekd"]  # scratch has no KD loss to draw
        side = screen.query_one(ResultsTable)
        assert [side.get_row_at(i)[0] for i in range(side.row_count)] == ["teacher", "popularity", "scratch", "rcekd"]
        assert side.get_row_at(3) == ["rcekd", "-", "-", "0.1500", "0.3000"]
        await pilot.press("e")
        await wait_for(pilot, lambda: list(a.root.parent.glob("export-*.csv")))


LIGHT_START = """
import asyncio, json, sys, time
from pathlib import Path
import rcekd_tui.app as appmod

heavy = lambda: sorted(m for m in ("torch", "pandas") if m in sys.modules)
seen = {}
appmod._prewarm_engine = lambda: seen.setdefault("at_prewarm", heavy())  # records, imports nothing

async def main(kind, path):
    app = appmod.RcekdApp(watch_dir=Path(path)) if kind == "watch" else appmod.RcekdApp(runs_root=Path(path))
    async with app.run_test(size=(100, 30)) as pilot:
        seen["first_screen"] = [type(app.screen).__name__, heavy()]
        end = time.monotonic() + 20
        while time.monotonic() < end:
            text = " ".join(str(w.render()) for w in app.screen.query("Static"))
            if kind == "watch" and app.screen.state.status == "finished" or kind == "tui" and app.screen.runs:
                break
            await pilot.pause(0.05)
        await pilot.pause(0.3)
        seen["content"] = heavy()
    print(json.dumps(seen))

asyncio.run(main(*sys.argv[1:]))
"""


def light_start(kind: str, path: Path) -> dict:
    """Run the app in a fresh interpreter (this one has torch and pandas loaded by other tests)."""
    out = subprocess.run([sys.executable, "-c", LIGHT_START, kind, str(path)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_watch_first_screen_imports_neither_torch_nor_pandas(write_run):
    seen = light_start("watch", write_run().root)
    assert seen == {"first_screen": ["RunScreen", []], "content": []}  # a whole replay, results table too


def test_tui_first_screen_imports_neither_torch_nor_pandas(write_run):
    seen = light_start("tui", write_run().root.parent)
    # the engine is prewarmed after the first frame, in a thread; nothing before it imports torch or pandas
    assert seen == {"first_screen": ["RunsScreen", []], "at_prewarm": [], "content": []}


async def open_setup(pilot, app) -> SetupScreen:
    await pilot.press("n")
    screen = app.screen
    assert isinstance(screen, SetupScreen)
    await wait_for(pilot, lambda: bool(screen.defaults))
    return screen


@pytest.fixture
def launches(monkeypatch):
    """The runs the set-up screen would start (recorded, never started)."""
    calls = []
    monkeypatch.setattr(launch, "start_run", lambda *a: calls.append(a))
    return calls


async def test_setup_invalid_shows_message_and_starts_nothing(tmp_path, launches):
    app = RcekdApp(runs_root=tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_setup(pilot, app)
        screen.query_one("#rcekd-M", Input).value = "20"  # below rcekd.K = 50
        await pilot.pause(0.2)
        message = str(screen.query_one("#setup-error", Static).render())
        assert "rcekd.M (20) must be ≥ rcekd.K (50)" in message
        assert screen.query_one("#start", Button).disabled
        await pilot.press("ctrl+s")
        await pilot.pause(0.2)
        assert launches == [] and isinstance(app.screen, SetupScreen)
        assert not (tmp_path / "runs").exists()


async def test_setup_workers_go_to_the_command_and_a_bad_count_is_refused(tmp_path, launches):
    app = RcekdApp(runs_root=tmp_path / "runs")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_setup(pilot, app)
        workers = screen.query_one("#workers", Input)
        assert workers.value == "1" and "--workers" not in str(screen.query_one("#setup-command", Static).render())
        for bad in ("0", "two", "", "²", "10000"):
            workers.value = bad
            await pilot.pause(0.1)
            assert "--workers must be a whole number from 1 to 9999" in str(screen.query_one("#setup-error", Static).render()), bad
            assert screen.query_one("#start", Button).disabled
        workers.value = "2"
        await pilot.pause(0.1)
        assert str(screen.query_one("#setup-command", Static).render()).endswith("--workers 2")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: bool(launches))
        preset, _, _, n = launches[0]
        assert preset == "demo" and n == 2


async def test_setup_start_launches_and_shows_epochs(tmp_path, monkeypatch, run_tiny):
    calls = []

    def fake_start(preset, run_dir, overrides, workers=1):
        """Instead of a process: the tiny experiment in a thread, writing the same run dir."""
        calls.append((preset, run_dir, overrides, workers))
        threading.Thread(target=run_tiny, args=(Path(run_dir),), daemon=True).start()

    monkeypatch.setattr(launch, "start_run", fake_start)
    root = tmp_path / "runs"
    app = RcekdApp(runs_root=root)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_setup(pilot, app)
        screen.query_one("#student-train-epochs", Input).value = "2"
        screen.query_one("#m-kd").value = False
        await pilot.pause(0.2)
        assert not screen.query_one("#start", Button).disabled
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen))
        preset, run_dir, overrides, workers = calls[0]
        assert preset == "demo" and run_dir.parent == root and run_dir.name.startswith("demo-") and workers == 1
        assert overrides["student_train"] == {"epochs": 2} and overrides["methods"] == "scratch,rcekd"
        assert launch.build_distill_command(preset, run_dir, overrides)[3:] == [
            "distill", "--preset", "demo", "--run-dir", str(run_dir), "--methods", "scratch,rcekd",
            "--set", "student_train.epochs=2"]
        live = app.screen
        await wait_for(pilot, lambda: live.state.status == "finished", timeout=60)
        assert (run_dir / "events.jsonl").exists()
        assert [s.epochs for s in live.state.students()] == [[1, 2], [1, 2]]


async def test_setup_general_preset_fills_backbones_and_rejects_mixed_families(tmp_path, launches):
    app = RcekdApp(runs_root=tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_setup(pilot, app)
        screen.query_one("#preset", Select).value = "demo-mf"
        await wait_for(pilot, lambda: screen.query_one("#student-arch", Input).value == "mf")
        assert screen.query_one("#data-protocol", Input).value == "ratio"
        assert not screen.query_one("#start", Button).disabled
        # MF reads only its dimension: its blocks and window are greyed out, the dim is not
        assert screen.query_one("#student-blocks", Input).disabled
        assert screen.query_one("#student-max-len", Input).disabled
        assert not screen.query_one("#student-dim", Input).disabled
        assert screen.query_one("#kd-positions", Input).disabled  # general students: KD at the user
        assert screen.query_one("#student-train-windows", Input).disabled  # and no training windows
        assert screen.query_one("#student-train-stride", Input).disabled
        screen.query_one("#student-arch", Input).value = "lightgcn"  # blocks = propagation layers
        await wait_for(pilot, lambda: not screen.query_one("#student-blocks", Input).disabled)
        assert screen.query_one("#student-max-len", Input).disabled
        screen.query_one("#student-arch", Input).value = "sasrec"
        await pilot.pause(0.2)
        assert not screen.query_one("#student-max-len", Input).disabled
        assert not screen.query_one("#kd-positions", Input).disabled
        assert not screen.query_one("#student-train-windows", Input).disabled
        assert screen.query_one("#student-train-stride", Input).disabled  # windows: last, no stride
        screen.query_one("#student-train-windows", Input).value = "sliding"
        await wait_for(pilot, lambda: not screen.query_one("#student-train-stride", Input).disabled)
        assert "must both be sequential" in str(screen.query_one("#setup-error", Static).render())
        assert screen.query_one("#start", Button).disabled
        app.save_screenshot(str(tmp_path / "setup-general.svg"))
        await pilot.press("ctrl+s")
        await pilot.pause(0.2)
        assert launches == []


# ---- a run not started yet, unreadable lines, interrupted runs and resume ------------------

def status_text(screen) -> str:
    return str(screen.query_one("#run-status", Static).render())


async def test_watch_waits_for_a_run_that_has_not_started(tmp_path):
    from tests.conftest import write_run_dir

    run_dir = tmp_path / "starting"
    run_dir.mkdir()
    app = RcekdApp(watch_dir=run_dir, prewarm=False)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        await pilot.pause(1.5)
        assert "waiting for the run to start…" in status_text(screen) and screen.state.status == "running"
        write_run_dir(run_dir, end="finished")  # the run writes its events
        await wait_for(pilot, lambda: screen.state.status == "finished")
        await pilot.pause(1.2)
        assert status_text(screen).startswith("finished | phase finished")


async def test_watch_skips_unreadable_lines_and_says_so(write_run):
    run = write_run(end="finished")
    lines = run.events.read_bytes().splitlines(keepends=True)
    garbage = [b"\x00\x01\xff\xfe\n", b"[1, 2]\n", b'{"type": "epoch", "epoch": "x"}\n', b"caf\xe9\n"]
    run.events.write_bytes(b"".join(lines[:3] + garbage + lines[3:]))
    app = RcekdApp(watch_dir=run.root, prewarm=False)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.state.status == "finished")
        assert "skipped 4 unreadable lines of events.jsonl" in screen.state.log
        log = screen.query_one("#run-log")
        assert any("skipped 4 unreadable lines" in "".join(seg.text for seg in strip) for strip in log.lines)
        assert len(screen.state.students()) == 2


class AliveProcess:
    """What start_resume returns, for a run that has not ended (no process is started)."""

    pid, returncode = 4242, None

    def poll(self):
        return None


@pytest.fixture
def resumes(monkeypatch):
    """The runs the TUI would resume (recorded, never started)."""
    calls = []

    def fake(run_dir):
        calls.append(Path(run_dir))
        return AliveProcess()

    monkeypatch.setattr(launch, "start_resume", fake)
    return calls


def killed(write_run, name="killed"):
    """A run killed in its last student fit (no `end`, no pid file, quiet for long)."""
    import os

    run = write_run(name, end=None, results=False)
    os.utime(run.events, (1, 1))
    return run


async def test_watch_an_interrupted_run_and_resume_it(write_run, resumes):
    from rcekd_core.runs.events import End, Epoch, EventWriter, FitStart, Resumed

    run = killed(write_run)
    app = RcekdApp(watch_dir=run.root, prewarm=False)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.state.status == "interrupted")
        await pilot.pause(1.2)
        assert status_text(screen).startswith("interrupted — press r to resume | phase student | rcekd seed 0 epoch 3/3")
        assert "the run's process is gone without an end event: interrupted" in screen.state.log
        await pilot.press("r")  # offered in `watch` too
        assert resumes == [run.root] and screen.resuming
        await pilot.pause(1.2)
        assert status_text(screen).startswith("resuming…")
        w = EventWriter(run.events)  # what the resumed process writes
        w.emit(Resumed(fits_done=2, continuing="rcekd seed 0 from epoch 3"))
        w.emit(FitStart(model="student", method="rcekd", seed=0, epochs=4))
        for n in (3, 4):
            w.emit(Epoch(model="student", method="rcekd", seed=0, epoch=n, seconds=0.5, values={"loss": 9.0}))
        await wait_for(pilot, lambda: screen.state.epoch == 4)
        assert not screen.resuming and screen.state.status == "running"
        s = screen.state.series[("student", "rcekd", 0)]
        assert s.epochs == [1, 2, 3, 4] and s.loss[2:] == [9.0, 9.0]  # epoch 3 once, as redone
        assert "resumed: 2 finished fits kept; continuing rcekd seed 0 from epoch 3" in screen.state.log
        w.emit(End(status="finished"))
        w.close()
        await wait_for(pilot, lambda: screen.state.status == "finished")
        await pilot.press("r")  # nothing to resume: no second launch
        assert resumes == [run.root]


async def test_a_launched_run_killed_with_sigkill_is_interrupted(write_run):
    import signal

    run = write_run("live", end=None, results=False)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        app = RcekdApp(runs_root=run.root.parent, prewarm=False)
        async with app.run_test(size=(120, 30)) as pilot:
            screen = RunScreen(run.root, process=proc)
            await app.push_screen(screen)
            await wait_for(pilot, lambda: screen.state.n_events > 0)
            await pilot.pause(1.2)
            assert screen.state.status == "running"
            proc.send_signal(signal.SIGKILL)
            await wait_for(pilot, lambda: screen.state.status == "interrupted")
            await pilot.pause(1.2)
            assert "interrupted — press r to resume" in status_text(screen)
            shown = ["".join(seg.text for seg in strip) for strip in screen.query_one("#run-log").lines]
            assert any("killed by SIGKILL" in line for line in shown)
    finally:
        proc.kill()
        proc.wait()


async def test_runs_list_resumes_only_what_can_be_resumed(write_run, resumes, monkeypatch):
    done = write_run("done", end="finished")
    stopped = write_run("stopped", end="stopped")
    dead = killed(write_run)
    app = RcekdApp(runs_root=done.root.parent, prewarm=False)
    notes = []
    async with app.run_test(size=(120, 30)) as pilot:
        monkeypatch.setattr(app, "notify", lambda message, **kw: notes.append(message))
        screen = app.screen
        table = screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 3)
        assert {r.name: r.status for r in screen.runs} == {"done": "finished", "stopped": "stopped",
                                                           "killed": "interrupted"}
        assert "interrupted" in table_text(table)

        async def resume(name):
            table.move_cursor(row=[r.name for r in screen.runs].index(name))
            await pilot.pause(0.1)
            await pilot.press("r")
            await pilot.pause(0.2)

        await resume("done")
        assert resumes == [] and isinstance(app.screen, RunsScreen)
        assert notes[-1].startswith("done: nothing to resume (it finished)")
        await resume("killed")
        assert resumes == [dead.root] and isinstance(app.screen, RunScreen) and app.screen.resuming
        live = app.screen
        await wait_for(pilot, lambda: live.state.n_events > 0)  # the killed part replays
        await pilot.pause(0.5)
        assert live.resuming  # old lines are not the resumed process writing
        await pilot.press("b")
        await resume("stopped")
        assert resumes == [dead.root, stopped.root]
        await pilot.press("b")
        await pilot.press("f5")  # refresh moved from r to f5
        await pilot.pause(0.3)
        assert isinstance(app.screen, RunsScreen)


async def test_names_from_run_files_are_never_read_as_markup(tmp_path):
    from tests.conftest import write_run_dir

    run = write_run_dir(tmp_path / "runs" / "[/x]odd[bold", methods=("scratch", "rcekd"))
    for path in (run.events, run.results, run.metrics, run.config):  # a method named like a closing tag
        path.write_text(path.read_text().replace("scratch", "[/b]scratch"))
    run.write_config({**run.read_config(), "data": {"source": "[link=", "file": None}})
    app = RcekdApp(runs_root=run.root.parent, prewarm=False)
    async with app.run_test(size=(120, 30)) as pilot:
        table = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 1)
        await pilot.pause(0.2)
        await pilot.press("enter")
        screen = app.screen
        assert isinstance(screen, RunScreen)
        await wait_for(pilot, lambda: screen.state.status == "finished")
        await pilot.pause(1.2)
        assert "[/b]scratch" in table_text(screen.query_one(ResultsTable)).replace("\\", "")


def results_table_app():
    """An app showing one ResultsTable, to test the table alone."""
    from textual.app import App

    class One(App):
        def compose(self):
            yield ResultsTable()

    return One()


async def test_the_results_tab_flags_fits_that_did_not_finish(write_run):
    run = write_run(methods=("scratch", "kd"), seeds=(0, 1))
    rows = [{**r, "status": "stopped" if r["method"] == "kd" and r["seed"] == "1" else "finished"}
            for r in run.read_result_rows()]

    app = results_table_app()
    async with app.run_test(size=(160, 20)):
        table = app.query_one(ResultsTable)
        table.show_results(rows)
        header = [str(c.label) for c in table.columns.values()]
        assert header[-1] == "not finished"
        cells = {str(table.get_row_at(i)[0]): str(table.get_row_at(i)[-1]) for i in range(table.row_count)}
        assert cells["kd"] == "stopped 1" and cells["scratch"] == ""


async def test_the_results_tab_shows_lambda_and_rcekds_significance_marks(write_run):
    run = write_run(methods=("scratch", "kd", "rcekd"), seeds=(0, 1))
    rows = run.read_result_rows()
    sig = [{"method": "rcekd", "versus": "kd", "metric": "NDCG@10", "split": "test", "p_value": "0.004"},
           {"method": "rcekd", "versus": "kd", "metric": "Recall@10", "split": "test", "p_value": "0.2"},
           {"method": "rcekd", "versus": "scratch", "metric": "NDCG@10", "split": "test", "p_value": "0.03"}]

    app = results_table_app()
    async with app.run_test(size=(160, 20)):
        table = app.query_one(ResultsTable)
        table.show_results(rows, {"kd": 0.01, "rcekd": 0.1}, sig)
        header = [str(c.label) for c in table.columns.values()]
        assert header[:3] == ["method", "λ", "seeds"]
        cells = {str(table.get_row_at(i)[0]): [str(c) for c in table.get_row_at(i)] for i in range(table.row_count)}
        assert cells["kd"][1] == "0.01" and cells["scratch"][1] == ""
        assert cells["rcekd"][3].endswith("**")  # NDCG@10: ahead of kd, the best other, p 0.004
        assert not cells["rcekd"][4].endswith("*")  # Recall@10: p 0.2
        assert not cells["kd"][3].endswith("*")  # marks are rcekd's only


async def test_compare_marks_a_method_whose_fits_did_not_all_finish(write_run):
    a = write_run("a", methods=("scratch",), epochs=2)
    b = write_run("b", methods=("scratch",), epochs=2)
    b.write_results([{**r, "status": "stopped" if r["model"] == "student" else "finished"}
                     for r in b.read_result_rows()])
    app = RcekdApp(runs_root=a.root.parent, prewarm=False)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = CompareScreen([a.root, b.root], a.root.parent)
        await app.push_screen(screen)
        side = screen.query_one(ResultsTable)
        await wait_for(pilot, lambda: side.row_count > 0)
        row = [str(c) for c in side.get_row_at([str(side.get_row_at(i)[0]) for i in range(side.row_count)]
                                               .index("scratch"))]
        assert "†" not in row[1] and row[3].endswith("† stopped 1")
