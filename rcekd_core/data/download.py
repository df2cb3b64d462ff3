"""Download raw files into the cache, atomically, with a progress bar.

Writes go through the project's one atomic writer (a temporary name beside the file, renamed
into place only when complete), so an interrupted download never leaves a file that looks valid. Offline machines get an error naming the exact
path where the file can be placed by hand.
"""

from __future__ import annotations

import http.client
import shutil
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TransferSpeedColumn,
)

from ..atomic import atomic_file
from ..errors import DataError

CHUNK = 1 << 16
TIMEOUT_S = 30


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or exc
    return " ".join(str(reason).split()) or exc.__class__.__name__


def fetch(url: str, dest: Path, *, offline_hint: str = "") -> Path:
    """Return dest, downloading url into it first if it is not there yet."""
    dest = Path(dest)
    if dest.is_file():
        return dest
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp, atomic_file(dest, "wb") as out:
            total = resp.headers.get("Content-Length")
            columns = (TextColumn(f"downloading {dest.name}"), BarColumn(), DownloadColumn(),
                       TransferSpeedColumn())
            with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
                task = bar.add_task("download", total=int(total) if total else None)
                while chunk := resp.read(CHUNK):
                    out.write(chunk)
                    bar.advance(task, len(chunk))
    except (OSError, ValueError, http.client.HTTPException) as e:
        hint = f" {offline_hint.strip()}" if offline_hint.strip() else ""
        raise DataError(
            f"could not download {url} ({_reason(e)}); download it yourself and place it at "
            f"{dest}{hint}"
        ) from None
    return dest


def extract_member(zip_path: Path, member: str, dest: Path) -> Path:
    """Copy one member of a zip archive to dest (via a temp file and an atomic rename)."""
    zip_path, dest = Path(zip_path), Path(dest)
    try:
        with zipfile.ZipFile(zip_path) as zf, zf.open(member) as src, atomic_file(dest, "wb") as out:
            shutil.copyfileobj(src, out, CHUNK)
    except KeyError:
        raise DataError(
            f"{zip_path}: archive has no member {member!r}; delete the archive so it is "
            f"downloaded again, or place the extracted file at {dest}"
        ) from None
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise DataError(
            f"{zip_path}: cannot extract {member!r} ({_reason(e)}); the archive may be truncated "
            f"— delete it so it is downloaded again, or place the extracted file at {dest}"
        ) from None
    return dest
