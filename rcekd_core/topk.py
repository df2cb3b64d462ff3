"""Top-k of score rows, faster than torch.topk on CPU and on very wide rows; the same lists.

On CPU, torch.topk over int32 keys that order like the float32 scores (the sign-magnitude bits
flipped into two's complement) takes about half the time of the float topk and picks the same
indices, ties included (-0.0 is first made +0.0, so it ties with +0.0 as floats do).
Very wide rows are pruned by blocks first: a row's k largest values all lie in the k blocks with the largest maxima: a block whose
maximum ranks below k has at least k larger values elsewhere (one in each block above it).
So one blockwise max over the row, a top-k of the block maxima and a top-k of the k·b
candidates replace a top-k over every column — at 1M items about 3× faster than torch.topk.
Values are exactly torch.topk's; among tied values the chosen indices may then differ. Rows
narrower than WIDE (every catalogue below 32k items) are not pruned, so their lists are
exactly torch.topk's.
"""

from __future__ import annotations

import torch

BLOCK = 32  # columns per block: the max pass stays memory-bound, k·BLOCK candidates stay few
WIDE = 1 << 15  # rows narrower than this use torch.topk unchanged


SELECT_BYTES = 4  # per entry of a row: the int32 temporary `select` makes while keying it


def ordered_keys_(scores: torch.Tensor) -> torch.Tensor:
    """float32 `scores` turned in place into int32 keys of the same order (returned as a view):
    -0.0 ties with +0.0, -inf is lowest, +inf highest. The map is its own inverse."""
    bits = scores.add_(0.0).view(torch.int32)  # + 0.0 turns -0.0 into +0.0
    return bits.bitwise_xor_((bits >> 31).bitwise_and_(0x7FFFFFFF))


def select(scores: torch.Tensor, k: int, inplace: bool = False) -> torch.return_types.topk:
    """torch.topk(scores, k, dim=1) — the same indices, ties included — through ordered int32
    keys on CPU (about 2x faster there). `inplace`: scores are overwritten by their keys."""
    if scores.dtype != torch.float32 or scores.device.type != "cpu":
        return scores.topk(k, dim=1)
    keys = ordered_keys_(scores if inplace else scores.clone())
    top = keys.topk(k, dim=1)
    values = top.values.clone()  # keys back to floats: the map is an involution
    values.bitwise_xor_((values >> 31).bitwise_and_(0x7FFFFFFF))
    return torch.return_types.topk((values.view(torch.float32), top.indices))


def top_k(scores: torch.Tensor, k: int, inplace: bool = False) -> torch.return_types.topk:
    """(values, indices) of the k largest entries of each row of [N, n], in descending order.

    `inplace`: the caller is done with `scores`, which may be overwritten (no copy is made)."""
    n = scores.size(1)
    blocks = n // BLOCK
    if n < WIDE or blocks < 4 * k:
        return select(scores, k, inplace)
    rows = scores.size(0)
    maxima = scores[:, : blocks * BLOCK].view(rows, blocks, BLOCK).amax(2)
    best = maxima.topk(k, dim=1, sorted=False).indices
    offsets = torch.arange(BLOCK, device=scores.device)
    cand = (best.unsqueeze(2) * BLOCK + offsets).view(rows, -1)
    if n > blocks * BLOCK:  # the short last block is always a candidate
        cand = torch.cat([cand, torch.arange(blocks * BLOCK, n, device=scores.device).expand(rows, -1)], 1)
    top = select(scores.gather(1, cand), k)
    return torch.return_types.topk((top.values, cand.gather(1, top.indices)))
