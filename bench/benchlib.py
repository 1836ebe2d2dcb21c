"""What every benchmark script reports about the machine and how it waits for an idle one.

Only the standard library: the scripts import this before they move bench/ to the end of sys.path.
"""

from __future__ import annotations

import os
import platform
import sqlite3
import time
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    """The machine a result belongs to."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kb = int(
        next(
            line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
        ).split()[1]
    )
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        "load_1m_at_start": os.getloadavg()[0],
    }


def cpu_busy(window_s: float = 5.0) -> float:
    """Share of all CPUs busy (not idle or waiting for I/O) over `window_s`, from /proc/stat."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields) - idle, sum(fields)

    busy0, total0 = sample()
    time.sleep(window_s)
    busy1, total1 = sample()
    return (busy1 - busy0) / max(total1 - total0, 1)


def wait_idle(limit_s: float, threshold: float = 0.15) -> dict[str, Any]:
    """Wait (up to `limit_s`) until the machine is idle: other work would skew the numbers."""
    started = time.monotonic()
    busy = cpu_busy()
    while busy >= threshold and time.monotonic() - started < limit_s:
        print(f"waiting for an idle machine: {busy:.0%} of the CPUs busy", flush=True)
        busy = cpu_busy(10.0)
    return {"waited_s": round(time.monotonic() - started), "cpu_busy_at_start": round(busy, 3)}
