"""Which model states are distilled: `last` (the validation context, as the authors), `all`, `user`.

`last`: one context per user, the state after the whole training sequence.
`all`: one context per training prefix inside the student's window whose next item is a
training item; the validation context is left out so validation stays held-out.
`user` (general models): one context per user, the user's own state; its history is every
training item, its "next item" the most recent training item (HetComp's and DE's positive).
Contexts get dense ids so per-context tensors (teacher lists, student top-M) are flat arrays.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from ..data.sequences import SequenceData


def resolve_mode(kd_positions: str, general_student: bool) -> str:
    """The context mode a run distils at: general students have one state per user (`user`)."""
    return "user" if general_student else kd_positions


class KDContexts:
    def __init__(self, data: SequenceData, mode: str, max_len: int):
        self.data = data
        self.mode = mode
        self.max_len = max_len
        if mode in ("last", "user"):
            self.n = data.n_users
        else:
            self.n_pos = (data.train_lengths - 1).clamp(min=0, max=max_len - 1)
            self.start = torch.cumsum(self.n_pos, 0) - self.n_pos
            self.n = int(self.n_pos.sum())

    def select(self, users: torch.Tensor, targets: torch.Tensor,
               last: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """For a training batch: (context ids [N], mask [B, L] of the states they use; None: all [B]).

        `last` [B] bool (sliding training windows): the rows that are a user's last window, the
        only ones with contexts (their targets are `train_batch`'s); None: every row is.
        """
        if self.mode == "user":
            return (users, None) if last is None else (users[last], last)
        if self.mode == "last":
            mask = torch.zeros_like(targets, dtype=torch.bool)
            mask[:, -1] = True if last is None else last
            return (users, mask) if last is None else (users[last], mask)
        mask = targets > 0
        if last is not None:
            mask &= last.unsqueeze(1)
        first = self.max_len - 1 - self.n_pos[users]
        col = torch.arange(targets.size(1))
        ids = self.start[users].unsqueeze(1) + col - first.unsqueeze(1)
        return ids[mask], mask

    def prefix(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(user [n], end [n]) per context id: its state has seen items[:end] of the user's sequence.

        `last`: end = the training length. `all`: user u's contexts are the last n_pos[u]
        training prefixes, in id order, ending at the last training item but one (their next
        item is a training item). History masks and next items both derive from this.
        """
        if not hasattr(self, "_prefix"):
            d = self.data
            if self.mode in ("last", "user"):
                users = torch.arange(d.n_users)
                ends = d.train_lengths.clone()
            else:
                users = torch.repeat_interleave(torch.arange(d.n_users), self.n_pos)
                k = torch.arange(self.n) - self.start[users]
                ends = d.train_lengths[users] - self.n_pos[users] + k
            self._prefix = (users, ends)
        return self._prefix

    def next_items(self) -> torch.Tensor:
        """[n] the item that follows each context (the validation item for `last`; see `user` above)."""
        users, ends = self.prefix()
        if self.mode == "user":
            ends = ends - 1
        return self.data.items[self.data.offsets[users] + ends]

    def history(self, ids: torch.Tensor) -> torch.Tensor:
        """[len(ids), h] the items each context has seen (its whole prefix), left-padded with 0."""
        users, ends = self.prefix()
        ids = ids.cpu()
        u, e = users[ids], ends[ids]
        return self.data.window(u, e, int(e.max()) if len(e) else 0)

    def chunks(self, chunk: int, users: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
        """All contexts in id order as (users, ids, mask over the users' training windows), about
        `chunk` contexts (or exactly `users` users) at a time.

        One context per user (`last`, `user`): ids are the users and the mask is None.
        """
        per = users or (max(1, chunk // self.max_len) if self.mode == "all" else chunk)
        for s in range(0, self.data.n_users, per):
            users = torch.arange(s, min(s + per, self.data.n_users))
            if self.mode != "all":
                yield users, users, None
                continue
            _, targets = self.data.train_batch(users, self.max_len)
            ids, mask = self.select(users, targets)
            yield users, ids, mask


ENCODE_POSITIONS = 1 << 16  # sequence positions encoded at once: the encoder's batch, whatever the score chunk


@torch.no_grad()
def context_states(model, contexts: KDContexts, chunk: int, device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(ids, states) of `model` at every context, at most `chunk` contexts at a time, aligned to
    the student window (callers that score every item size `chunk` from their memory budget).

    A model with a longer window than the student's sees more history at the same positions.
    Users are encoded ENCODE_POSITIONS positions at a time, apart from `chunk`: a budget sized
    for a wide catalogue leaves few contexts per chunk, and encoding those alone is slow.
    """
    was = model.training
    model.eval()
    window = max(model.max_len, contexts.max_len)
    users_per = max(1, ENCODE_POSITIONS // window)
    for users, ids, mask in contexts.chunks(chunk, users_per):
        if mask is None:  # one context per user: the state that ranks its validation items
            states = model.split_states(contexts.data, "valid", users, device)
        else:
            inputs = contexts.data.window(users, contexts.data.context_end("train", users), window)
            if model.max_len < window:
                inputs = inputs[:, -model.max_len:]
            states = model.encode(inputs.to(device))[:, -contexts.max_len:][mask.to(device)]
        yield from zip(ids.split(chunk), states.split(chunk))
    model.train(was)


def mask_history_(scores: torch.Tensor, contexts: KDContexts, ids: torch.Tensor) -> torch.Tensor:
    """Set each context's own history (its prefix; "train items masked") and padding to -inf, in place."""
    hist = contexts.history(ids).to(scores.device)
    if hist.numel():
        scores.scatter_(1, hist, float("-inf"))
    scores[:, 0] = float("-inf")
    return scores
