"""A :class:`Dataset` as ``consumption`` rows, the other way round from loading (``wattshare import``)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from energy_env.data.dataset import Dataset
from energy_env.data.resample import LOCAL_TZ, local_to_utc


def dataset_to_rows(ds: Dataset, tz: str = LOCAL_TZ) -> tuple[pd.DataFrame, Counter]:
    """A :class:`Dataset` as ``consumption`` rows: one per household and slot, time in UTC.

    Naive local slots become UTC by :func:`~energy_env.data.resample.local_to_utc`: the two
    spring-forward slots, which no clock shows, are skipped (counted in the returned Counter); the
    fall-back slots are written once, at their first (daylight time) occurrence.

    Returns:
        ``(rows, skipped)``: columns ``household_id``, ``interval_start_utc``, ``load_kwh``,
        ``pv_kwh``, ``temperature_c`` (None where the data set has no temperature).
    """
    utc, nonexistent, _ = local_to_utc(ds.timestamps, tz)
    keep = ~nonexistent
    t_keep = int(keep.sum())
    n = ds.num_households
    rows = pd.DataFrame(
        {
            "household_id": np.repeat(np.asarray(ds.household_ids, dtype=object), t_keep),
            "interval_start_utc": np.tile(utc[keep], n),
            "load_kwh": ds.load_kwh[keep].T.reshape(-1),
            "pv_kwh": ds.pv_kwh[keep].T.reshape(-1),
            "temperature_c": np.tile(ds.temperature_c[keep], n) if ds.temperature_c is not None else None,
        }
    )
    skipped: Counter = Counter()
    if nonexistent.any():
        skipped["slot does not exist in local time (DST spring forward)"] = int(nonexistent.sum()) * n
    return rows, skipped
