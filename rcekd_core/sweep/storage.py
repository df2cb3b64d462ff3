"""Where a sweep's studies live: an RDB (SQLite by default, PostgreSQL, MySQL) with heartbeats,
or a journal file on a shared filesystem; the lock SQLite needs; the heartbeat of a running trial.

A worker killed mid-trial stops sending heartbeats (RDB storages); after the grace period
another worker marks its trial FAIL and the retry callback queues the same values again as a
new WAITING trial. SQLite's check-then-set is not atomic across processes, so claiming,
failing stale trials and telling results take a file lock there (PostgreSQL and MySQL lock
the row themselves; a journal decides ownership by the order of its log).
"""

from __future__ import annotations

import contextlib
import fcntl
import inspect
import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage

from ..errors import ConfigError
from .sweepdir import SweepDir

HEARTBEAT_ENV = "RCEKD_SWEEP_HEARTBEAT"  # seconds between heartbeats (tests shorten it)
HEARTBEAT_S = 30
GRACE_FACTOR = 4  # a trial is stale after this many missed heartbeats
MAX_RETRY = 3  # a trial whose worker dies this often is given up

optuna.logging.set_verbosity(optuna.logging.WARNING)


@contextlib.contextmanager
def experimental() -> Iterator[None]:
    """Heartbeats and their retry callback are marked experimental in Optuna: used on purpose."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def heartbeat_interval() -> int:
    raw = os.environ.get(HEARTBEAT_ENV, "")
    try:
        return max(1, int(raw)) if raw else HEARTBEAT_S
    except ValueError:
        raise ConfigError(f"{HEARTBEAT_ENV}={raw!r} must be a whole number of seconds") from None


def retry_callback():
    """Optuna ≥ 4.9 renamed RetryFailedTrialCallback (the old name warns until 6.0)."""
    cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) or optuna.storages.RetryFailedTrialCallback
    with experimental():
        return cls(max_retry=MAX_RETRY)


def storage_url(sweep: SweepDir, storage: str | None) -> str:
    return storage or sweep.default_storage()


def open_storage(url: str):
    """RDBStorage with heartbeats for a URL; JournalStorage for a file path (shared filesystems)."""
    try:
        if "://" not in url:
            from optuna.storages.journal import JournalFileBackend, JournalStorage

            Path(url).parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(url))
        beat = heartbeat_interval()
        kwargs: dict[str, Any] = {"heartbeat_interval": beat, "grace_period": GRACE_FACTOR * beat}
        stale = "heartbeat_stale_trial_callback"  # Optuna < 4.9: failed_trial_callback
        stale = stale if stale in inspect.signature(RDBStorage).parameters else "failed_trial_callback"
        kwargs[stale] = retry_callback()
        engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}  # wait for the writer
        with experimental():
            return RDBStorage(url, engine_kwargs=engine, **kwargs)
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 — a missing driver, an unreachable server, a bad file
        raise ConfigError(f"cannot open the sweep storage '{url}' ({e.__class__.__name__}: {str(e)[:200]}); "
                          "check the URL, the server and its driver") from None


@contextlib.contextmanager
def claim_lock(url: str) -> Iterator[None]:
    """Held while trials change hands; a no-op for storages that lock their own rows."""
    if not url.startswith("sqlite:///"):
        yield
        return
    db = Path(url[len("sqlite:///"):])
    with open(db.with_name(db.name + ".lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def has_heartbeat(storage) -> bool:
    return isinstance(storage, RDBStorage) and storage.get_heartbeat_interval() is not None


@contextlib.contextmanager
def heartbeat(storage, trial_id: int) -> Iterator[None]:
    """Beats for a running trial from a thread, so a long epoch does not look like a dead worker."""
    if not has_heartbeat(storage):
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(storage.get_heartbeat_interval()):
            with contextlib.suppress(Exception):  # a busy database: the next beat retries
                storage.record_heartbeat(trial_id)

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
