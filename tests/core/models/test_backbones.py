"""Sequential backbones: HSTU attention against a loop, causality, left-padding invariance, and
each backbone learning the demo data better than popularity."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from rcekd_core.eval.popularity import evaluate_popularity
from rcekd_core.models.registry import build_model
from rcekd_core.settings import EvalConfig, ModelConfig, TrainConfig
from rcekd_core.train.loop import FitJob, FitLabel, fit

ARCHS = ["sasrec", "gru4rec", "hstu"]


def tiny(arch: str, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = ModelConfig(arch=arch, dim=8, blocks=2, heads=2, max_len=12, dropout=0.0, **kw)
    return build_model(cfg, n_items=30).eval()


def left_padded(lengths: list[int], n: int, gen: torch.Generator) -> torch.Tensor:
    seqs = torch.zeros(len(lengths), n, dtype=torch.long)
    for row, k in enumerate(lengths):
        seqs[row, n - k:] = torch.randint(1, 31, (k,), generator=gen)
    return seqs


def test_hstu_attention_matches_loop():
    torch.manual_seed(1)
    cfg = ModelConfig(arch="hstu", dim=8, blocks=1, heads=2, max_len=6, dropout=0.0)
    model = build_model(cfg, n_items=20).eval()
    block = model.blocks[0]
    torch.nn.init.normal_(block.rel)  # a non-zero relative bias
    seqs = torch.tensor([[0, 0, 3, 7, 1, 9], [4, 2, 8, 8, 5, 6]])
    with torch.no_grad():
        got = model.encode(seqs)
        b_n, n = seqs.shape
        d, h = cfg.dim, cfg.heads
        dh = d // h
        real = (seqs > 0).float().unsqueeze(-1)
        x = (model.items(seqs) * d**0.5 + model.positions(torch.arange(n))) * real
        u, v, q, k = F.silu(block.uvqk(block.ln_in(x))).split(d, dim=-1)
        y = torch.zeros(b_n, n, d)
        for b in range(b_n):
            for i in range(n):
                for j in range(i + 1):
                    if seqs[b, j] == 0:
                        continue
                    for hd in range(h):
                        s = slice(hd * dh, (hd + 1) * dh)
                        a = F.silu(torch.dot(q[b, i, s], k[b, j, s]) + block.rel[hd, i - j]) / cfg.max_len
                        y[b, i, s] += a * v[b, j, s]
        out = x + block.out(block.ln_att(y) * u)
        want = F.normalize(out, dim=-1) * real
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_causal(arch):
    model = tiny(arch)
    gen = torch.Generator().manual_seed(0)
    seqs = left_padded([12, 9, 5], 12, gen)
    t = 9  # change the item at position t: states before it must not move
    changed = seqs.clone()
    changed[:, t] = changed[:, t] % 30 + 1
    with torch.no_grad():
        a, b = model.encode(seqs), model.encode(changed)
    torch.testing.assert_close(a[:, :t], b[:, :t], atol=1e-6, rtol=0)
    assert (a[:, t] - b[:, t]).abs().amax(-1).min() > 1e-4


@pytest.mark.parametrize("arch", ARCHS)
def test_last_state_ignores_left_padding(arch):
    model = tiny(arch)
    gen = torch.Generator().manual_seed(0)
    real = torch.randint(1, 31, (5,), generator=gen)
    # the same 5 items in rows with 7, 3, 0 padding slots, and mixed with other rows in a batch
    batch = left_padded([12, 5, 9, 2], 12, gen)
    batch[1, 7:] = real
    with torch.no_grad():
        alone = [model.encode(torch.cat([torch.zeros(p, dtype=torch.long), real])[None])[0, -1]
                 for p in (7, 3, 0)]
        in_batch = model.encode(batch)[1, -1]
    for s in alone[1:] + [in_batch]:
        torch.testing.assert_close(s, alone[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("blocks", [1, 3])
def test_the_last_state_alone_equals_the_last_of_all_states(arch, blocks):
    """encode_last (evaluation, `last` KD contexts) may skip positions, never change the state:
    full, short, one-item and empty windows, in a window shorter than max_len too."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch=arch, dim=8, blocks=blocks, heads=2, max_len=12, dropout=0.3), n_items=30)
    model.eval()
    for n in (12, 7):
        seqs = left_padded([n, 4, 1, 0], n, torch.Generator().manual_seed(n))
        with torch.no_grad():
            torch.testing.assert_close(model.encode_last(seqs), model.encode(seqs)[:, -1], atol=1e-6, rtol=1e-5)


def test_padding_states_are_zero():
    for arch in ARCHS:
        seqs = left_padded([4, 0], 8, torch.Generator().manual_seed(0))
        with torch.no_grad():
            states = tiny(arch).encode(seqs)
        assert states[0, :4].abs().max() == 0 and states[1].abs().max() == 0


def test_hstu_scores_are_cosine_over_temperature():
    model = tiny("hstu", temperature=0.1, kd_scores="tempered")  # cosine (default): test_hstu_kd_scale.py
    seqs = left_padded([6, 3], 12, torch.Generator().manual_seed(0))
    with torch.no_grad():
        h = model.encode_last(seqs)
        scores = model.score_all(h)
        cos = F.normalize(h, dim=-1) @ F.normalize(model.items.weight[1:], dim=-1).T
        torch.testing.assert_close(scores[:, 1:], cos / 0.1)
        assert torch.isneginf(scores[:, 0]).all()
        items = torch.tensor([[3, 5], [30, 1]])
        torch.testing.assert_close(model.score_items(h, items), scores.gather(1, items))


@pytest.mark.parametrize("arch,loss", [("sasrec", "ce"), ("gru4rec", "ce"), ("hstu", "ssm"), ("hstu", "ce")])
def test_backbone_beats_popularity(demo_sequences, arch, loss):
    demo = demo_sequences
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch=arch, dim=32, blocks=1, max_len=20, dropout=0.1, loss=loss),
                        demo.n_items)
    tcfg = TrainConfig(epochs=8, batch_size=32, lr=0.01, patience=8)
    res = fit(FitJob(model, demo, tcfg, EvalConfig(ks=[10]), FitLabel("teacher", "scratch", 0),
                     torch.device("cpu")), sink=lambda e: None)
    pop = evaluate_popularity(demo, "valid", [10])["NDCG@10"]
    assert res.best_valid["NDCG@10"] > 1.1 * pop, (res.best_valid, pop)
