"""The console display of headless runs takes the engine's event records."""

from __future__ import annotations

import io

from rich.console import Console

from rcekd_core.runs.events import (
    End,
    Epoch,
    FitStart,
    Phase,
    Result,
    RunStart,
    StopRequested,
)
from rcekd_tui.progress import ConsoleDisplay, epoch_line


def kd_epoch(**values) -> Epoch:
    return Epoch(model="student", method="rcekd", seed=1, epoch=3, seconds=0.25, best_epoch=2,
                 valid={"NDCG@10": 0.125, "Recall@10": 0.25}, values=values)


def test_epoch_line_shows_what_was_measured():
    line = epoch_line(kd_epoch(loss=1.5, kd_loss=0.5, gamma=0.25, **{"overlap@10": 0.125}))
    assert line == ("rcekd seed 1 epoch 3  loss 1.500  kd 0.5000  γ 0.250  val NDCG@10 0.1250  "
                    "val Recall@10 0.2500  overlap 0.125  0.25s")
    teacher = Epoch(model="teacher", method="teacher", epoch=1, seconds=1.0, values={"loss": 2.0})
    assert epoch_line(teacher) == "teacher epoch 1  loss 2.000  1.00s"


def test_a_narrow_line_shortens_its_labels_then_leaves_out_the_least_needed():
    e = kd_epoch(loss=274.4259, kd_loss=270.3312, gamma=0.942, **{"overlap@10": 0.138})
    assert epoch_line(e, 120) == epoch_line(e) == (  # every label in full: a wide terminal
        "rcekd seed 1 epoch 3  loss 274.4  kd 270.3  γ 0.942  val NDCG@10 0.1250  val Recall@10 0.2500  "
        "overlap 0.138  0.25s")
    assert epoch_line(e, 100) == "rcekd/1 ep 3  loss 274.4  kd 270.3  γ 0.942  N@10 0.1250  R@10 0.2500  ovl 0.138  0.25s"
    assert epoch_line(e, 80) == "rcekd/1 ep 3  loss 274.4  kd 270.3  γ 0.942  N@10 0.1250  R@10 0.2500  ovl 0.138"
    assert epoch_line(e, 60) == "rcekd/1 ep 3  loss 274.4  kd 270.3  γ 0.942  N@10 0.1250"
    scratch = Epoch(model="student", method="scratch", seed=12, epoch=100, seconds=123.4,
                    valid={"NDCG@10": 0.1, "Recall@10": 0.2}, values={"loss": 4.0946, "overlap@10": 0.1})
    assert epoch_line(scratch, 80) == "scratch/12 ep 100  loss 4.095  N@10 0.1000  R@10 0.2000  ovl 0.100  123s"


def test_plain_lines_in_a_pipe(capsys):
    display = ConsoleDisplay(Console(file=io.StringIO()), live=False)
    rows = [{"model": "student", "method": "rcekd", "seed": 1, "split": s, "NDCG@10": 0.125, "Recall@10": 0.25,
             "best_epoch": 2} for s in ("valid", "test")]
    for ev in [RunStart(name="demo", device="cpu", dataset={"users": 3, "items": 4, "interactions": 9}),
               Phase(phase="teacher", cached=True, key="abc"), Phase(phase="student", method="rcekd", seed=1),
               FitStart(model="student", method="rcekd", seed=1, epochs=5), kd_epoch(loss=1.0),
               StopRequested(), Result(rows=rows), End()]:
        display(ev)
    assert capsys.readouterr().out.splitlines() == [
        "run demo on cpu: 3 users, 4 items, 9 interactions",
        "teacher: loaded from cache abc",
        "student: rcekd seed 1",
        "rcekd/1 ep 3  loss 1.000  N@10 0.1250  R@10 0.2500  0.25s",  # 80 columns: short labels
        "stop requested: finishing the current epoch",
        "  student test NDCG@10 0.1250  Recall@10 0.2500  (best epoch 2)",
    ]


def test_a_live_terminal_gets_a_bar_per_fit():
    out = io.StringIO()
    display = ConsoleDisplay(Console(file=out, force_terminal=True, width=100), live=True)
    display(FitStart(model="teacher", method="teacher", epochs=2))
    assert display.progress is not None
    display(Epoch(model="teacher", method="teacher", epoch=1, seconds=0.5, best_epoch=1,
                  valid={"NDCG@10": 0.5}, values={"loss": 2.0}))
    display(End(status="finished"))
    assert display.progress is None and "teacher ep 1  loss 2.000" in out.getvalue()  # 100 columns: short labels


def test_fits_side_by_side_get_a_bar_each():
    """`--workers`: epochs of two fits interleave; each advances its own bar."""
    display = ConsoleDisplay(Console(file=io.StringIO(), force_terminal=True, width=100), live=True)
    for seed in (0, 1):
        display(FitStart(model="student", method="kd", seed=seed, epochs=5))
    display(Epoch(model="student", method="kd", seed=1, epoch=2, seconds=0.5, valid={"NDCG@10": 0.5}))
    display(Epoch(model="student", method="kd", seed=0, epoch=1, seconds=0.5, valid={"NDCG@10": 0.5}))
    bars = {t.description: t.completed for t in display.progress.tasks}
    assert bars == {"kd/0": 1, "kd/1": 2}
    display(Result(rows=[{"model": "student", "method": "kd", "seed": 1, "split": "test"}]))
    assert [t.description for t in display.progress.tasks] == ["kd/0"]
    display(Result(rows=[{"model": "student", "method": "kd", "seed": 0, "split": "test"}]))
    assert display.progress is None
