"""Fixtures of the engine tests: one torch thread, stand-ins for a frozen teacher view and a
student (fixed score tables, nothing learned), and small random sequence data.

Test modules take these as fixtures; none imports another test file.
"""

from __future__ import annotations

import pytest
import torch

from rcekd_core.data.interactions import Interactions
from rcekd_core.data.preprocess import preprocess
from rcekd_core.data.sequences import SequenceData
from rcekd_core.data.synthetic import generate
from rcekd_core.settings import DataConfig


@pytest.fixture
def stop_in_rcekds_first_epoch(monkeypatch):
    """stop_in_rcekds_first_epoch(run): a STOP for run dir `run` is requested once, as RCE-KD's
    first refresh opens an epoch (its first batch still runs, no state is saved yet)."""
    from rcekd_core.kd.rcekd import RCEKD
    from rcekd_core.runs.store import RunDir

    refresh = RCEKD.refresh

    def arm(run) -> None:
        def stop_then_refresh(self, student):
            RunDir(run).request_stop()
            monkeypatch.setattr(RCEKD, "refresh", refresh)
            return refresh(self, student)

        monkeypatch.setattr(RCEKD, "refresh", stop_then_refresh)

    return arm


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: one thread is faster than two and does not fight the other tests."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class FakeTeacherView:
    """A frozen teacher as a fixed [n_ctx, n_items + 1] score matrix (column 0 = padding)."""

    def __init__(self, scores: torch.Tensor):
        self.S = scores

    def scores(self, ids, items):
        return self.S[ids.unsqueeze(1), items]

    def score_all(self, ids):
        s = self.S[ids].clone()
        s[:, 0] = float("-inf")
        return s

    def topk(self, k):
        return self.score_all(torch.arange(self.S.size(0))).topk(k, dim=1).indices

    def scores_of_lists(self, lists):
        return self.chunk_list_scores(torch.arange(self.S.size(0)), lists)

    def chunk_list_scores(self, ids, lists):
        return [self.scores(ids, x) for x in lists]

    def list_row_bytes(self, widths):
        return 4 * sum(widths)


class FakeStudent:
    """Dot-product scorer with an item table; the loss only needs these two methods."""

    def __init__(self, table: torch.Tensor):
        self.table = table

    def item_table(self):
        return self.table

    def score_items(self, states, items):
        return torch.einsum("nd,nkd->nk", states, self.table[items])

    def score_all(self, states):
        s = states @ self.table.T
        s[:, 0] = float("-inf")
        return s


@pytest.fixture(scope="session")
def fake_teacher() -> type[FakeTeacherView]:
    """FakeTeacherView(scores [n_ctx, n_items + 1]): a teacher view with fixed scores."""
    return FakeTeacherView


@pytest.fixture(scope="session")
def fake_student() -> type[FakeStudent]:
    """FakeStudent(table [n_items + 1, d]): a dot-product student with a fixed item table."""
    return FakeStudent


def random_sequences(n_users: int = 9, n_items: int = 30, length: int = 7, seed: int = 0) -> SequenceData:
    """n_users sequences of `length` distinct random items, timestamps in order (leave-one-out)."""
    g = torch.Generator().manual_seed(seed)
    items = torch.stack([torch.randperm(n_items, generator=g)[:length] + 1 for _ in range(n_users)])
    users = torch.arange(n_users).repeat_interleave(length)
    inter = Interactions(users.numpy(), items.flatten().numpy(),
                         torch.arange(n_users * length).double().numpy(), n_users, n_items)
    return SequenceData.from_interactions(inter)


@pytest.fixture(scope="session")
def sequences():
    """sequences(n_users=9, n_items=30, length=7, seed=0) -> SequenceData of random sequences."""
    return random_sequences


@pytest.fixture(scope="session")
def demo_sequences() -> SequenceData:
    """The demo generator at 300 users x 100 items, leave-one-out (read only: never modify it)."""
    cfg = DataConfig(n_users=300, n_items=100, n_clusters=5, mean_len=20)
    return SequenceData.from_interactions(preprocess(generate(cfg)))


@pytest.fixture(scope="module")
def module_home(tmp_path_factory):
    """RCEKD_HOME in a temp folder for a whole module (processed data, teacher caches)."""
    mp = pytest.MonkeyPatch()
    path = tmp_path_factory.mktemp("rcekd_home")
    mp.setenv("RCEKD_HOME", str(path))
    yield path
    mp.undo()
