"""The peak memory of the current process, for benchmarks and tests."""

from __future__ import annotations

from pathlib import Path


def _status_mb(field: str) -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def peak_rss_mb() -> float:
    """Peak resident memory of this process image, in MB (``VmHWM``).

    Not ``getrusage().ru_maxrss``: Linux keeps that figure across ``exec``, so a small child
    started by a big parent reports the parent's peak. NaN where ``/proc`` is unavailable."""
    return _status_mb("VmHWM")

