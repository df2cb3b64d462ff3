"""This process's resident memory (Linux /proc/self): now, and its peak since a reset."""

from __future__ import annotations

from pathlib import Path


def reset_peak() -> bool:
    """Start VmHWM afresh at the current RSS (writing 5 to clear_refs); False where the kernel
    has no clear_refs (gVisor): a peak read then is the process's, since it started."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def status_mb(field: str) -> float:
    """A memory line of /proc/self/status (VmHWM: peak RSS since the last reset, VmRSS: now), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_mb() -> float:
    return status_mb("VmHWM")
