"""Starting a sweep (studies and plan, or nothing at all) and opening an existing one."""

from __future__ import annotations

from dataclasses import dataclass

from .plan import SweepPlan
from .storage import open_storage, storage_url
from .study import create_studies
from .sweepdir import SweepDir


@dataclass
class Opened:
    sweep: SweepDir
    plan: SweepPlan
    storage: object
    url: str


def create_sweep(sweep: SweepDir, plan: SweepPlan) -> Opened:
    """The studies with their WAITING trials, then sweep.yaml (written last, atomically: a
    folder without it is no sweep). A failure on the way removes what this start wrote."""
    sweep.check_new()
    existed = sweep.root.exists()
    sweep.create()
    try:
        url = storage_url(sweep, plan.storage)
        storage = open_storage(url)
        create_studies(plan, storage)
        sweep.write_plan(plan.to_dict())
    except BaseException:
        sweep.discard(remove_root=not existed)
        raise
    return Opened(sweep, plan, storage, url)


def open_sweep(sweep: SweepDir, storage: str | None = None) -> Opened:
    """An existing sweep, against its own storage or `storage` (the same studies seen from
    another machine, e.g. a cluster node with another path to them)."""
    from .plan import check_storage

    plan = SweepPlan.from_dict(sweep.read_plan())
    check_storage(storage)
    url = storage_url(sweep, storage or plan.storage)
    return Opened(sweep, plan, open_storage(url), url)
