"""HSTU's two score scales: KD methods see raw cosines by default (the authors' HSTU returns
cosines from get_ratings / forward_multi_items, and only its training loss divides by the
temperature); `kd_scores: tempered` keeps cosine / temperature. The base loss is the same
either way, and so is every ranking.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from rcekd_core.config import from_dict
from rcekd_core.data.interactions import Interactions
from rcekd_core.data.sequences import SequenceData
from rcekd_core.errors import ConfigError
from rcekd_core.kd.base import KDSetup, SharedScores
from rcekd_core.kd.contexts import KDContexts
from rcekd_core.kd.registry import METHODS, build_distiller
from rcekd_core.kd.teacher_view import TeacherView
from rcekd_core.models.hstu import HSTU
from rcekd_core.models.registry import build_model
from rcekd_core.settings import ModelConfig

N_ITEMS, MAX_LEN, TEMP = 30, 8, 0.05
CPU = torch.device("cpu")


def hstu(kd_scores: str | None = None, loss: str = "ce", seed: int = 0) -> HSTU:
    torch.manual_seed(seed)
    kw = {} if kd_scores is None else {"kd_scores": kd_scores}
    cfg = ModelConfig(arch="hstu", dim=8, blocks=1, heads=2, max_len=MAX_LEN, dropout=0.0, loss=loss,
                      negatives=7, temperature=TEMP, **kw)
    return build_model(cfg, N_ITEMS).eval()


def seqs(rows: int = 5, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    out = torch.zeros(rows, MAX_LEN, dtype=torch.long)
    for r in range(rows):
        k = 2 + r % (MAX_LEN - 1)
        out[r, MAX_LEN - k:] = torch.randint(1, N_ITEMS + 1, (k,), generator=g)
    return out


def cosines(model: HSTU, h: torch.Tensor) -> torch.Tensor:
    return F.normalize(h, dim=-1) @ F.normalize(model.items.weight, dim=-1).T


def test_default_is_the_authors_cosine():
    assert ModelConfig().kd_scores == "cosine"
    assert "kd_scores" in HSTU.settings
    assert from_dict({"student": {"arch": "hstu", "kd_scores": "tempered"}}).student.kd_scores == "tempered"
    with pytest.raises(ConfigError, match="kd_scores"):
        from_dict({"student": {"arch": "hstu", "kd_scores": "raw"}})


def test_scores_are_raw_cosines_by_default_and_tempered_on_request():
    cos_model, temp_model = hstu(), hstu("tempered")
    x = seqs()
    items = torch.tensor([[3, 5, 1], [30, 1, 2], [7, 7, 9], [4, 8, 15], [16, 23, 29]])
    with torch.no_grad():
        h = cos_model.encode_last(x)
        torch.testing.assert_close(temp_model.encode_last(x), h)
        cos = cosines(cos_model, h)
        s_cos, s_temp = cos_model.score_all(h), temp_model.score_all(h)
        torch.testing.assert_close(s_cos[:, 1:], cos[:, 1:])
        assert s_cos[:, 1:].abs().max() <= 1 + 1e-6
        torch.testing.assert_close(s_temp[:, 1:], cos[:, 1:] / TEMP)
        assert torch.isneginf(s_cos[:, 0]).all() and torch.isneginf(s_temp[:, 0]).all()
        torch.testing.assert_close(cos_model.score_items(h, items), cos.gather(1, items))
        torch.testing.assert_close(temp_model.score_items(h, items), cos.gather(1, items) / TEMP)
        # the same ranking either way
        assert torch.equal(s_cos.topk(10, dim=1).indices, s_temp.topk(10, dim=1).indices)


@pytest.mark.parametrize("loss", ["ce", "bce", "ssm"])
def test_base_loss_is_cosine_over_temperature_either_way(loss):
    x = seqs(rows=6, seed=1)
    targets = torch.roll(x, -1, dims=1)
    targets[:, -1] = torch.randint(1, N_ITEMS + 1, (x.size(0),), generator=torch.Generator().manual_seed(3))
    targets[x == 0] = 0
    out = {}
    for mode in ("cosine", "tempered"):
        model = hstu(mode, loss=loss).train()
        states = model.encode(x)
        torch.manual_seed(5)  # the same negatives (bce, ssm)
        value = model.base_loss(states, targets)
        value.backward()
        out[mode] = (value.item(), model.items.weight.grad.clone())
    assert out["cosine"][0] == pytest.approx(out["tempered"][0], rel=1e-5)
    torch.testing.assert_close(out["cosine"][1], out["tempered"][1], rtol=1e-4, atol=1e-6)
    # and by hand: the full-softmax CE on cosine / temperature
    if loss == "ce":
        model = hstu(loss="ce")
        with torch.no_grad():
            h = model.encode(x)[targets > 0]
            logits = cosines(model, h)[:, 1:] / TEMP
            want = F.cross_entropy(logits, targets[targets > 0] - 1).item()
        assert out["cosine"][0] == pytest.approx(want, rel=1e-5)


def test_shared_scores_base_loss_uses_the_temperature():
    """The loop's shared path: base CE from score_all's (cosine) scores, KD on those same scores."""
    x = seqs(rows=4, seed=2)
    y = torch.randint(1, N_ITEMS + 1, (4,), generator=torch.Generator().manual_seed(0))
    for mode in ("cosine", "tempered"):
        model = hstu(mode)
        with torch.no_grad():
            h = model.encode_last(x)
            scores = model.score_all(h)
            torch.testing.assert_close(model.ce_from_scores(scores, y), model.pair_loss(h, y))
            shared = SharedScores(model, h, scores)
            torch.testing.assert_close(shared.score_items(h, torch.tensor([[1, 2]] * 4)),
                                       model.score_items(h, torch.tensor([[1, 2]] * 4)))


def data() -> SequenceData:
    rng = np.random.default_rng(0)
    users, items = [], []
    for u in range(6):
        n = int(rng.integers(5, 10))
        users += [u] * n
        items += list(rng.choice(np.arange(1, N_ITEMS + 1), size=n, replace=False))
    inter = Interactions(np.array(users, dtype=np.int64), np.array(items, dtype=np.int64),
                         np.arange(len(users), dtype=np.float64), 6, N_ITEMS)
    return SequenceData.from_interactions(inter)


@pytest.mark.parametrize("mode", ["cosine", "tempered"])
@pytest.mark.parametrize("method,values", [("kd", {"K": 5, "list": "teacher"}), ("rrd", {"K": 3, "L": 4, "M": 8}),
                                           ("rcekd", {"K": 3, "L": 3, "M": 6})])
def test_distillers_see_the_chosen_scale(mode, method, values):
    """Teacher view and student scores both come at the model's KD scale: the vanilla `kd` loss
    (softmax CE over the teacher's top-K) against a reference on cos (or cos / temperature)."""
    d_ = data()
    contexts = KDContexts(d_, "last", MAX_LEN)
    teacher, student = hstu(mode, seed=1), hstu(mode, seed=2)
    view = TeacherView(teacher, contexts, 4, CPU)
    scale = 1.0 if mode == "cosine" else 1 / TEMP
    # the teacher view's table and states: cosines (times the scale)
    torch.testing.assert_close(view.table, F.normalize(teacher.items.weight, dim=-1).detach() * scale)
    setup = KDSetup(teacher=view, contexts=contexts, device=CPU, seed=0, chunk=4, epochs=3, student_dim=8)
    d = build_distiller(method, METHODS[method].settings(**values), setup)
    d.timed_refresh(student)
    ids = torch.arange(contexts.n)
    states = student.split_states(d_, "valid", torch.arange(d_.n_users), CPU).detach()
    per, _ = d.loss(ids, states, student)
    assert torch.isfinite(per).all()
    if method != "kd":
        return
    t_cos = cosines(teacher, view.states).detach() * scale
    s_cos = cosines(student, states).detach() * scale
    for n in range(contexts.n):
        row = t_cos[n].tolist()
        top = sorted(range(1, N_ITEMS + 1), key=lambda i: -row[i])[:5]
        pt = [math.exp(row[i]) for i in top]
        zs = math.log(sum(math.exp(s_cos[n, i].item()) for i in top))
        want = -sum(p / sum(pt) * (s_cos[n, i].item() - zs) for p, i in zip(pt, top))
        assert per[n].item() == pytest.approx(want, rel=1e-4, abs=1e-5)


def test_other_backbones_ignore_kd_scores():
    for arch in ("sasrec", "gru4rec"):
        torch.manual_seed(0)
        a = build_model(ModelConfig(arch=arch, dim=8, max_len=MAX_LEN), N_ITEMS)
        torch.manual_seed(0)
        b = build_model(ModelConfig(arch=arch, dim=8, max_len=MAX_LEN, kd_scores="tempered"), N_ITEMS)
        torch.testing.assert_close(a.item_table(), b.item_table())
