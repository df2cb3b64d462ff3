"""`rcekd sweep confirm`: every method's best settings together in one run, on several seeds.

Each swept parameter lives in its own method's section (rrd.lam, kd.lam, ...), so the best
values of all methods combine in one config; the epoch cap and metric are the sweep's.
"""

from __future__ import annotations

from ..errors import ConfigError
from ..settings import ExperimentConfig
from .report import Best, best
from .session import Opened


def confirm_config(opened: Opened, seeds: list[int]) -> tuple[ExperimentConfig, dict[str, Best]]:
    """The confirmation run's config and each method's best trial; refused while trials are
    left or when a method has no completed trial."""
    plan, bests = opened.plan, best(opened.plan, opened.storage)
    left = {m: b.progress.left for m, b in bests.items() if b.progress.left}
    if left:
        todo = ", ".join(f"{m} {n}" for m, n in left.items())
        raise ConfigError(f"the sweep has trials left ({todo}); finish it with `rcekd sweep work "
                          f"{opened.sweep.root}` first: every method must get its whole budget")
    missing = [m for m, b in bests.items() if b.value is None]
    if missing:
        raise ConfigError(f"{', '.join(missing)} has no completed trial (every one diverged, was pruned or "
                          "invalid); start a sweep with other ranges for it")
    if not seeds:
        raise ConfigError("--seeds is empty; pass seeds such as 0,1,2")
    return plan.confirm_config({m: b.values for m, b in bests.items()}, seeds), bests
