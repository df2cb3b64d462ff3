"""Chunk sizes from a byte budget: how many rows a full-catalogue pass holds at once.

A pass over every context (evaluation, the teacher's lists, a refresh, popularity) holds,
per context, rows as wide as the catalogue: the scores, and the masks or positions it derives
from them. With a fixed number of contexts per chunk its memory grows with the catalogue
(943 users x 100k items at once is 380 MB of scores alone); `rows_within` sizes each chunk
from the run's budget (eval.memory_mb) instead, so a pass never holds more than the budget,
except by its minimum of one row.
"""

from __future__ import annotations

MB = 1 << 20
DEFAULT_BUDGET = 256 * MB  # eval.memory_mb's default, in bytes (for callers without a run)

# bytes of one entry of a per-row temporary
FLOAT = 4  # a float32 score (a model's scores, a teacher's, random keys)
BOOL = 1  # a bool mask entry (>= a target, seen before)
INDEX = 8  # an int64 item id or position (searchsorted output)
HISTORY = 4 * INDEX  # one slot of a history row: its item id and the three int64 rows `window` builds it from


def rows_within(budget: int, row_bytes: int, cap: int | None = None) -> int:
    """Rows a pass may hold at once: budget // row_bytes, at most `cap`, at least 1.

    `row_bytes` is what the pass holds for one row (context or user) at its peak, counted by
    the pass itself: the score row over every item (FLOAT or the model's dtype per item,
    n_items + 1 of them) plus every per-row temporary it makes while that row is alive (a bool
    mask: BOOL per item; searchsorted positions: INDEX per item; a history row: HISTORY per
    slot). Not counted: what the pass keeps as its result (top lists, ranks), and the model's
    own forward pass that produces the states (it scales with the window, not the catalogue).
    `cap` (eval.chunk) bounds the rows whatever the budget, so small catalogues chunk as
    before the budget existed.
    """
    rows = max(1, int(budget) // max(1, int(row_bytes)))
    return rows if cap is None else max(1, min(rows, int(cap)))
