"""The one way this project writes a file: to a temporary name beside it, then a rename.

Readers (a watching TUI, a second run, a crash afterwards) see the old file or the new one,
never half of one; a failed write leaves no `*.tmp` behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

TEMP_GLOB = ".*.tmp"  # how atomic_file names its temporary files
_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read, not changed: files get the usual 0644 (mkstemp alone gives 0600)


@contextmanager
def atomic_file(path: Path, mode: str = "wb") -> Iterator[IO]:
    """A file handle whose content replaces `path` only if the `with` block completes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        text = "b" not in mode
        with os.fdopen(fd, mode, **({"encoding": "utf-8", "newline": ""} if text else {})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())  # on disk before the rename: complete after a power loss too
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: Path, data: str | bytes) -> None:
    """Replace `path` with `data` (text is written as UTF-8)."""
    with atomic_file(path, "w" if isinstance(data, str) else "wb") as fh:
        fh.write(data)


def remove_temp_files(directory: Path) -> int:
    """Delete the temporary files a killed writer left in `directory` (not below); how many."""
    n = 0
    for p in Path(directory).glob(TEMP_GLOB):
        try:
            p.unlink()
            n += 1
        except OSError:
            pass
    return n
