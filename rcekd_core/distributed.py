"""The process group a run lives in: one process (the default), or N data-parallel ones under torchrun.

`torchrun --nproc_per_node G [--nnodes N ...] -m rcekd_tui distill ...` starts G processes per
node with WORLD_SIZE, RANK and LOCAL_RANK set; `setup()` joins them (gloo on the CPU, nccl on
CUDA with each process on GPU LOCAL_RANK). Every rank runs the whole run with the same seeds,
so it draws the same user permutation, the same KD samples, the same decisions. What is split:

- training: each global batch's rows (users, or windows) are cut into `world` contiguous
  shares (`Group.shard`); each rank's loss is weighted by its share of the batch's positions
  and contexts (`share_weights`, `Group.weigh`), so the SUM all-reduce of the gradients in
  `opt.step()` (`AllReduceOptimizer`) is one process's gradient of the whole batch: every
  rank then takes the same Adam step and keeps the same weights;
- a refresh's student scores over the catalogue at every context (`student_top`,
  `student_top_masked`): chunk i of the contexts is scored by rank i mod world and every rank
  gathers all chunks back in order (`shard_contexts`);
- evaluation: the same, over chunks of users (`shard_chunks` in `evaluate`), so every rank
  computes the same metrics from the same ranks.

Rank 0 alone writes (run directory, events, cache); the others run with a null sink.
With world = 1 (no torchrun) every helper returns its input untouched: nothing changes.
"""

from __future__ import annotations

import atexit
import contextlib
import os
from collections.abc import Iterable, Iterator
from typing import Any

import torch

from .errors import Diverged

ENV = ("WORLD_SIZE", "RANK", "LOCAL_RANK")


def launched() -> tuple[int, int, int]:
    """(rank, world, local rank) that torchrun gave this process; (0, 1, 0) without it."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return 0, 1, 0
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def share_weights(counts: list[tuple[int, int, int]], rank: int) -> tuple[float, float]:
    """Weights of rank `rank`'s (base, KD) loss terms so that their sum over ranks is the whole batch's.

    counts[r] = (P_r, C_r, U_r): rank r's base-loss positions, KD contexts and KD users
    (the loop's multiplier of the KD mean). The loop's base loss is a mean over positions and
    its KD term a mean over contexts times the users: over the global batch
      base = sum_r P_r base_r / P,   kd = U sum_r C_r mean_r / C = sum_r (C_r U / (C U_r)) kd_r,
    so rank r weighs base_r by P_r / P and kd_r by C_r U / (C U_r) (0 where its count is 0).
    """
    p, c, u = counts[rank]
    total_p = sum(x[0] for x in counts)
    total_c = sum(x[1] for x in counts)
    total_u = sum(x[2] for x in counts)
    w_base = p / total_p if p else 0.0
    w_kd = c * total_u / (total_c * u) if c and u else 0.0
    return w_base, w_kd


class Group:
    """rank / world of this process; collectives are no-ops (or the identity) when world = 1."""

    def __init__(self, rank: int = 0, world: int = 1, local_rank: int = 0,
                 device: torch.device | None = None):
        self.rank, self.world, self.local_rank = rank, world, local_rank
        self.device = device or torch.device("cpu")  # where collectives run: cpu (gloo) or cuda (nccl)
        self._dummy = False  # this rank's share of the current batch is a stand-in (weight 0)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def __repr__(self) -> str:
        return f"Group(rank={self.rank}, world={self.world}, device={self.device})"

    # ---- training ----------------------------------------------------------------------

    def shard(self, rows: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous share of a global batch's rows (the same split on every rank).

        A batch with fewer rows than ranks leaves some ranks without one: they take the first
        row as a stand-in whose loss `weigh` gives weight 0 (no empty tensors reach a model).
        """
        if self.world == 1:
            return rows
        mine = torch.tensor_split(rows, self.world)[self.rank]
        self._dummy = mine.numel() == 0
        return rows[:1] if self._dummy else mine

    def weigh(self, parts: dict[str, float], base: torch.Tensor, n_pos: int,
              kd: torch.Tensor | None = None, n_ctx: int = 0, n_kd: int = 0, lam: float = 0.0) -> torch.Tensor:
        """This rank's loss to backward, and `parts` rewritten with the whole batch's values.

        base: this rank's mean base loss over its n_pos positions; kd: its λ · KD term (mean
        over n_ctx contexts times n_kd users), None where it has no KD context. `parts`
        (base_loss, kd_loss, loss, the method's extras) become what one process would log for
        the global batch: the same on every rank, so a non-finite loss stops every rank.
        """
        if self._dummy:
            n_pos, n_ctx, n_kd = 0, 0, 0
        if kd is None:
            n_ctx = n_kd = 0
        extras = {k: v for k, v in parts.items() if k not in ("base_loss", "kd_loss", "loss")}
        mine = (n_pos, n_ctx, n_kd, parts["base_loss"] if n_pos else 0.0,
                parts.get("kd_loss", 0.0) / n_kd if n_ctx and n_kd else 0.0, extras if n_ctx else {})
        every = self.all_gather_object(mine)
        w_base, w_kd = share_weights([e[:3] for e in every], self.rank)
        total_p, total_c, total_u = (sum(e[i] for e in every) for i in range(3))
        # a rank without positions (a stand-in row) still runs backward: a zero of the graph
        loss = base * w_base if n_pos else torch.nan_to_num(base) * 0.0
        if kd is not None:
            loss = loss + (kd * w_kd if n_ctx else torch.nan_to_num(kd) * 0.0)
        for k in list(parts):
            del parts[k]
        parts["base_loss"] = sum(e[0] * e[3] for e in every) / total_p if total_p else float("nan")
        if total_c:
            parts["kd_loss"] = total_u * sum(e[1] * e[4] for e in every) / total_c
            for k in sorted({k for e in every for k in e[5]}):
                have = [(e[1], e[5][k]) for e in every if k in e[5]]
                parts[k] = sum(c * v for c, v in have) / sum(c for c, _ in have)
        parts["loss"] = parts["base_loss"] + lam * parts.get("kd_loss", 0.0)
        return loss

    def wrap_optimizer(self, opt: torch.optim.Optimizer, params: list[torch.nn.Parameter]):
        """`opt` whose step() first sums the gradients over the ranks; `opt` itself when world = 1.

        Rank 0's parameters are broadcast first, so every rank starts from the same weights.
        """
        if self.world == 1:
            return opt
        self.broadcast_tensors([p.data for p in params])
        return AllReduceOptimizer(opt, params, self)

    def all_reduce_grads(self, params: list[torch.nn.Parameter]) -> None:
        """Sum every parameter's gradient over the ranks (one flat buffer per dtype).

        A parameter without a gradient on some ranks (outside their graph this batch) gets a
        zero one there; one without a gradient on every rank keeps none, as Adam skips it.
        """
        import torch.distributed as dist

        has = torch.tensor([p.grad is not None for p in params], dtype=torch.int32, device=self.device)
        dist.all_reduce(has)
        grads: dict[torch.dtype, list[torch.Tensor]] = {}
        for p, h in zip(params, has.tolist()):
            if not h:
                continue
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            grads.setdefault(p.grad.dtype, []).append(p.grad)
        for same in grads.values():
            flat = torch.cat([g.reshape(-1) for g in same]).to(self.device)
            dist.all_reduce(flat)
            offset = 0
            for g in same:
                g.copy_(flat[offset : offset + g.numel()].view_as(g))
                offset += g.numel()

    # ---- chunked passes ----------------------------------------------------------------

    @contextlib.contextmanager
    def failing_together(self) -> Iterator[None]:
        """Around this rank's share of a split pass, before its gather: a failure on any rank is
        raised on every rank (`raise_together`), so none waits at the gather until the
        collective's timeout. World 1: exceptions pass as they are."""
        if self.world == 1:
            yield
            return
        error = None
        try:
            yield
        except Exception as e:  # re-raised on every rank below
            error = e
        raise_together(self, error)

    def take(self, chunks: Iterable[Any], taken: list[int]) -> Iterator[Any]:
        """Every world-th chunk, starting at this rank's; their indexes are appended to `taken`."""
        for i, chunk in enumerate(chunks):
            if i % self.world == self.rank:
                taken.append(i)
                yield chunk

    def gather_chunks(self, taken: list[int], parts: list[torch.Tensor]) -> list[torch.Tensor]:
        """Every rank's chunks (tensors of one dtype, any shapes), in chunk order, on every rank."""
        if len(parts) != len(taken):
            raise RuntimeError(f"rank {self.rank} took {len(taken)} chunks but returned {len(parts)} results")
        meta = self.all_gather_object((list(taken), [tuple(p.shape) for p in parts],
                                       parts[0].dtype if parts else None,
                                       parts[0].device.type if parts else None))
        dtype = next((m[2] for m in meta if m[2] is not None), None)
        if dtype is None:  # no rank had a chunk
            return []
        where = parts[0].device if parts else (self.device if any(m[3] == "cuda" for m in meta) else torch.device("cpu"))
        wire = torch.uint8 if dtype == torch.bool else dtype
        local = (torch.cat([p.reshape(-1) for p in parts]) if parts else torch.zeros(0, dtype=dtype))
        flats = self.all_gather_varsize(local.to(self.device, wire))
        found: list[tuple[int, torch.Tensor]] = []
        for (idx, shapes, _, _), flat in zip(meta, flats):
            offset = 0
            for i, shape in zip(idx, shapes):
                n = 1
                for s in shape:
                    n *= s
                found.append((i, flat[offset : offset + n].view(shape).to(where, dtype)))
                offset += n
        return [t for _, t in sorted(found, key=lambda x: x[0])]

    # ---- collectives -------------------------------------------------------------------

    def all_gather_object(self, obj: Any) -> list[Any]:
        if self.world == 1:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def all_gather_varsize(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """1-D tensors of any lengths, one per rank, on every rank (padded to the longest on the wire)."""
        import torch.distributed as dist

        n = torch.tensor([flat.numel()], dtype=torch.long, device=self.device)
        sizes = [torch.zeros_like(n) for _ in range(self.world)]
        dist.all_gather(sizes, n)
        sizes_ = [int(s) for s in sizes]
        longest = max(sizes_)
        padded = torch.zeros(longest, dtype=flat.dtype, device=self.device)
        padded[: flat.numel()] = flat
        out = [torch.zeros_like(padded) for _ in range(self.world)]
        dist.all_gather(out, padded)
        return [o[:s] for o, s in zip(out, sizes_)]

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's `obj` on every rank."""
        if self.world == 1:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def broadcast_tensors(self, tensors: list[torch.Tensor]) -> None:
        """Rank 0's values into these tensors, in place, on every rank."""
        if self.world == 1:
            return
        import torch.distributed as dist

        for t in tensors:
            wire = t.detach().to(self.device)
            dist.broadcast(wire, src=0)
            if wire.data_ptr() != t.data_ptr():
                t.data.copy_(wire)

    def main_flag(self, flag: bool) -> bool:
        """Rank 0's answer (a STOP file it read, ...) on every rank."""
        if self.world == 1:
            return flag
        import torch.distributed as dist

        t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=self.device)
        dist.broadcast(t, src=0)
        return bool(t.item())

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()


class AllReduceOptimizer:
    """An optimizer whose step() sums the gradients over the ranks first; everything else is `opt`'s."""

    def __init__(self, opt: torch.optim.Optimizer, params: list[torch.nn.Parameter], group: Group):
        self.opt, self.params, self.group = opt, list(params), group

    def step(self, *args, **kwargs):
        self.group.all_reduce_grads(self.params)
        return self.opt.step(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self.opt, name)


class ChunkShard:
    """This rank's share of a chunked pass, and every rank's results gathered back in order.

    `take(chunks)` yields every world-th chunk; `gather(results)` (one result per chunk taken)
    returns all chunks' results in chunk order, the same list on every rank. World 1: the
    identity, so a one-process pass is unchanged.
    """

    def __init__(self, group: Group):
        self.group = group
        self.taken: list[int] = []

    def take(self, chunks: Iterable[Any]) -> Iterable[Any]:
        return chunks if self.group.world == 1 else self.group.take(chunks, self.taken)

    def gather(self, results: list[torch.Tensor]) -> list[torch.Tensor]:
        return results if self.group.world == 1 else self.group.gather_chunks(self.taken, results)



def raise_together(group: Group, error: Exception | None) -> None:
    """Raise on every rank if a pass failed on any (`error`: this rank's exception, or None;
    every rank calls it once). The failing rank raises its own exception; the others raise
    Diverged (a diverged model, which fit() handles) or RuntimeError, naming that rank."""
    failures = [error] if group.world == 1 else group.all_gather_object(
        None if error is None else (isinstance(error, Diverged), f"{type(error).__name__}: {error}", str(error)))
    if error is not None:
        raise error
    failed = [(rank, f) for rank, f in enumerate(failures) if f is not None]
    if failed:
        rank, (diverged, described, message) = failed[0]
        raise Diverged(f"rank {rank}: {message}") if diverged else RuntimeError(f"rank {rank} failed: {described}")


class ContextShard:
    """This rank's share of a pass over every KD context, and the whole [n, ...] result back.

    The pass iterates `context_states` over `contexts` (a ShardedContexts: every world-th of
    the KD contexts' chunks, whose ids it records) and appends one result per piece it yields,
    in order; `gather(results)` puts every rank's rows at their context ids and returns them
    as one tensor in a list, ready for the pass's own torch.cat. World 1: the identity.
    """

    def __init__(self, group: Group, contexts):
        self.group, self.n = group, contexts.n
        self.taken: list[int] = []
        self.ids: list[torch.Tensor] = []
        self.contexts = contexts if group.world == 1 else ShardedContexts(contexts, self)

    def take(self, chunks: Iterable[Any]) -> Iterator[Any]:
        for chunk in self.group.take(chunks, self.taken):
            self.ids.append(chunk[1])  # KDContexts.chunks yields (users, ids, mask)
            yield chunk

    def gather(self, results: list[torch.Tensor]) -> list[torch.Tensor]:
        if self.group.world == 1:
            return results
        rows = torch.cat(results) if results else None
        ids = torch.cat(self.ids) if self.ids else torch.zeros(0, dtype=torch.long)
        if (0 if rows is None else rows.size(0)) != ids.numel():
            raise RuntimeError(f"rank {self.group.rank}: {ids.numel()} contexts taken, "
                               f"{0 if rows is None else rows.size(0)} result rows")
        mine = [0] if rows is not None and rows.size(0) else []
        every_rows = self.group.gather_chunks(mine, [rows] if mine else [])
        every_ids = self.group.gather_chunks(mine, [ids] if mine else [])
        if not every_rows:
            return results
        rows_all, ids_all = torch.cat(every_rows), torch.cat(every_ids)
        if ids_all.numel() != self.n:
            raise RuntimeError(f"the ranks' shares hold {ids_all.numel()} of {self.n} contexts")
        full = torch.empty((self.n, *rows_all.shape[1:]), dtype=rows_all.dtype, device=rows_all.device)
        full[ids_all.to(rows_all.device)] = rows_all
        return [full]


BALANCE = 8  # encoder chunks per rank at least: round robin then leaves ranks within ~1/8 of each other


class ShardedContexts:
    """A KDContexts whose chunks() yields this rank's chunks only (the rest is the wrapped one's).

    Encoder chunks of `users` users are capped at 1 / (BALANCE x world) of the users: whole
    64k-position chunks would leave one rank most of the contexts of a small dataset.
    """

    def __init__(self, contexts, shard: ContextShard):
        self._contexts, self._shard = contexts, shard

    def chunks(self, chunk: int, users: int | None = None):
        if users is not None:
            share = -(-self._contexts.data.n_users // (BALANCE * self._shard.group.world))
            users = max(1, min(users, share))
        return self._shard.take(self._contexts.chunks(chunk, users))

    def __getattr__(self, name: str):
        return getattr(self._contexts, name)


def shard_chunks() -> ChunkShard:
    """For a chunked pass over users (evaluation): this rank's chunks, then all gathered back."""
    return ChunkShard(current())


def shard_contexts(contexts) -> ContextShard:
    """For a pass over every KD context: `shard.contexts` to iterate (this rank's share), then
    `shard.gather(results)` before the pass concatenates them. World 1: contexts, identity."""
    return ContextShard(current(), contexts)


# ---- the process's group --------------------------------------------------------------

_ALONE = Group()
_current = _ALONE


def current() -> Group:
    """The group this process runs in (world 1 until `setup` joins torchrun's)."""
    return _current


@contextlib.contextmanager
def alone() -> Iterator[Group]:
    """Run the enclosed code as one process (no collectives), e.g. an unsharded reference pass."""
    global _current
    saved, _current = _current, _ALONE
    try:
        yield _ALONE
    finally:
        _current = saved


def setup(device: torch.device) -> Group:
    """Join torchrun's process group when this process was launched by it (else world 1, no-op).

    gloo for a CPU run; nccl for CUDA, with this process on GPU LOCAL_RANK (`device` "cuda"
    then means that GPU). Joined once per process; later calls return the same group.
    """
    global _current
    rank, world, local_rank = launched()
    if world == 1 or _current.world > 1:
        return _current
    import torch.distributed as dist

    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo", init_method="env://", rank=rank, world_size=world)
        atexit.register(_teardown)
    _current = Group(rank, world, local_rank, torch.device("cuda", local_rank) if cuda else torch.device("cpu"))
    return _current


def _teardown() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        with contextlib.suppress(Exception):
            dist.destroy_process_group()
