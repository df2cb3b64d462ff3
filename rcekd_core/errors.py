"""One error family for every user-facing failure; the CLI maps it to exit code 2."""


class RcekdError(Exception):
    """A failure the user can fix; the message names the problem and the fix."""


class ConfigError(RcekdError):
    """Unknown names, bad values or impossible hyperparameters."""


class DataError(RcekdError):
    """Missing, empty or malformed data files, or nothing left after filtering."""


class Diverged(RcekdError):
    """A fit produced a non-finite loss or score: its numbers cannot be trusted."""

    def __init__(self, message: str, epoch: int = 0, best_epoch: int = 0):
        super().__init__(message)
        self.epoch = epoch
        self.best_epoch = best_epoch


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP, handled like Ctrl-C: the run ends as `stopped` and can be resumed."""

    def __init__(self, signum: int):
        super().__init__(f"signal {signum}")
        self.signum = signum


class WorkerFailed(RcekdError):
    """A worker process of a `--workers` run failed; the message is its error."""
