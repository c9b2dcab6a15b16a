"""Fail fast, with an estimate, before building a community that cannot fit in memory.

Building a community holds the data set, its prices, forecasts, baseline and market arrays,
and the temporaries of precomputing them, all ``(T, N)``. Its peak grows linearly with
household-intervals; :data:`PEAK_BYTES_PER_HOUSEHOLD_INTERVAL` is the measured slope (the
measurement and its command are in docs/scaling.md, "Memory").
"""

from __future__ import annotations

import os

from energy_env.config import ConfigError

PEAK_BYTES_PER_HOUSEHOLD_INTERVAL = 184  # the measured slope rounded up, plus the household table (8 B; docs/scaling.md)


def estimate_build_bytes(num_intervals: int, num_households: int) -> int:
    """Estimated peak bytes of building a community of ``num_households`` over ``num_intervals``."""
    return int(num_intervals) * int(num_households) * PEAK_BYTES_PER_HOUSEHOLD_INTERVAL


def available_bytes() -> int | None:
    """Memory the OS can give this process now (Linux ``MemAvailable``), or None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _gb(n: float) -> str:
    return f"{n / 1e9:,.1f} GB"


def check_memory(num_intervals: int, num_households: int, key: str = "num_households", available: int | None = None) -> int:
    """Raise :class:`ConfigError` naming ``key`` when the estimate exceeds the available memory.

    Returns the estimate in bytes. ``available`` defaults to :func:`available_bytes`; where it is
    unknown, nothing is checked.
    """
    need = estimate_build_bytes(num_intervals, num_households)
    have = available_bytes() if available is None else available
    if have is not None and need > have:
        raise ConfigError(
            f"{key}: {num_households:,} homes x {num_intervals:,} intervals need about {_gb(need)} to build "
            f"(estimate: {PEAK_BYTES_PER_HOUSEHOLD_INTERVAL} bytes per household-interval), but only {_gb(have)} "
            "is available; use fewer homes or fewer days (data.start_date / data.end_date)"
        )
    return need
