"""A method is one file: a toy distiller defined here runs through `rcekd distill` end to end.

It declares its settings (λ, a list length with a range, its own check) and its Distiller,
registers itself, and nothing else in the project is touched: presets, --set, validation,
the run directory and metrics.csv all learn about it from the registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from rcekd_core.errors import ConfigError
from rcekd_core.kd.base import Distiller, masked_softmax, soft_ce
from rcekd_core.kd.registry import METHODS, register, unregister
from rcekd_core.settings import MethodSettings, setting
from rcekd_tui.cli import app


@dataclass
class ToySettings(MethodSettings):
    """Listwise CE on the teacher's top-K, at a fixed temperature."""

    lam: float = setting(0.5, "weight λ of the KD term", ge=0)
    K: int = setting(5, "teacher list length", gt=0, items=True)
    side: Literal["teacher", "both"] = setting("teacher", "a Literal choice, to see it checked")

    def check(self, prefix: str) -> None:
        if self.K == 7:
            raise ConfigError(f"{prefix}K must not be 7 (the toy's own rule)")


class Toy(Distiller):
    name = "toy"
    Settings = ToySettings

    def __init__(self, settings: ToySettings, setup):
        super().__init__(settings, setup)
        self.items = self.teacher.topk(settings.K)
        self.p = masked_softmax(self.teacher.scores_of_lists([self.items])[0])

    def loss(self, ids, states, student):
        per = soft_ce(self.p[ids], student.score_items(states, self.items[ids]))
        return per, {"toy_extra": float(per.detach().mean())}


TINY = {
    "name": "tiny",
    "data": {"source": "demo", "n_users": 80, "n_items": 40, "n_clusters": 4, "mean_len": 10},
    "teacher": {"dim": 8, "blocks": 1, "heads": 1, "max_len": 10},
    "student": {"dim": 4, "blocks": 1, "heads": 1, "max_len": 10},
    "teacher_train": {"epochs": 2, "patience": 5},
    "student_train": {"epochs": 2, "patience": 5},
}


@pytest.fixture
def toy(tmp_path, monkeypatch):
    monkeypatch.setenv("RCEKD_HOME", str(tmp_path / "home"))
    register(Toy)
    preset = tmp_path / "tiny.yaml"
    preset.write_text(yaml.safe_dump(TINY))
    yield preset
    unregister("toy")


def test_a_registered_method_runs_end_to_end(toy, tmp_path):
    assert METHODS["toy"].settings is ToySettings
    d = tmp_path / "run"
    res = CliRunner().invoke(app, ["distill", "--preset", str(toy), "--methods", "scratch,toy",
                                   "--set", "toy.K=4", "--run-dir", str(d)])
    assert res.exit_code == 0, res.output
    results = pd.read_csv(d / "results.csv")
    toy_rows = results[results["method"] == "toy"]
    assert set(toy_rows["split"]) == {"valid", "test"} and toy_rows["NDCG@10"].notna().all()
    config = yaml.safe_load((d / "config.yaml").read_text())
    assert config["toy"] == {"lam": 0.5, "K": 4, "side": "teacher"}
    metrics = pd.read_csv(d / "metrics.csv")
    toy_epochs = metrics[metrics["method"] == "toy"]
    assert len(toy_epochs) == 2 and (toy_epochs["toy_extra"] > 0).all() and (toy_epochs["kd_loss"] > 0).all()
    assert metrics[metrics["method"] == "scratch"]["toy_extra"].isna().all()


@pytest.mark.parametrize("override, needle", [
    ("toy.K=0", "'toy.K' must be > 0"),
    ("toy.K=7", "toy.K must not be 7"),
    ("toy.K=400", "exceeds the 40 items"),
    ("toy.side=neither", "choose teacher or both"),
    ("toy.lam=-1", "'toy.lam' must be ≥ 0"),
    ("toy.nope=1", "unknown setting 'toy.nope'"),
])
def test_its_settings_are_checked_before_anything_is_written(toy, tmp_path, override, needle):
    d = tmp_path / "bad"
    res = CliRunner().invoke(app, ["distill", "--preset", str(toy), "--methods", "toy",
                                   "--set", override, "--run-dir", str(d)])
    assert res.exit_code == 2, res.output
    assert needle in res.output and "Traceback" not in res.output
    assert not d.exists()


def test_the_distiller_receives_only_its_own_section(toy):
    from rcekd_core.config import load_config

    cfg = load_config(str(toy), {"methods": ["toy"], "toy": {"K": 3}})
    assert cfg.toy == cfg.method("toy") == ToySettings(K=3)
    seen = {}

    class Spy(Toy):
        def __init__(self, settings, setup):
            seen["settings"] = settings
            super().__init__(settings, setup)

    from rcekd_core.experiment import Experiment, prepare

    METHODS["toy"] = type(METHODS["toy"])(Spy, ToySettings)
    cfg.student_train.epochs = 1
    Experiment(prepare(cfg), toy.parent / "spy").run_all()
    assert seen["settings"] is cfg.method("toy") and isinstance(seen["settings"], ToySettings)
