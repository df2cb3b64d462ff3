"""One error family for every user-facing failure; the CLI maps it to exit code 2."""


class RcekdError(Exception):
    """A failure the user can fix; the message names the problem and the fix."""


class ConfigError(RcekdError):
    """Unknown names, bad values or impossible hyperparameters."""


class DataError(RcekdError):
    """Missing, empty or malformed data files, or nothing left after filtering."""
