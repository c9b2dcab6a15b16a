"""The in-memory data set every simulation runs on: load and PV of N homes on a 30-minute grid.

Arrays are laid out ``(T, N)`` (interval, household) so that one step reads one contiguous row,
and a batch of scenarios gathers rows with one fancy index. Everything here is read-only after
construction and is shared, not copied, by every env built on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from energy_env.config import INTERVALS_PER_DAY
from energy_env.data.redact import redact

TEST_DAYS_PER_MONTH = 7  # the last 7 days of every month are test days


class DataError(ValueError):
    """Bad input data; the message names the file (or source), column and row.

    The message is passed through :func:`energy_env.data.redact.redact`, so that a credential in a
    URL, a DSN or a server's reply never reaches a terminal or a log through an error.
    """

    def __init__(self, message: object = "", *args: object) -> None:
        super().__init__(redact(message), *args)


@dataclass(frozen=True)
class Dataset:
    """Load and PV of a community on a 30-minute grid.

    Attributes:
        name: Human-readable source, e.g. ``"synthetic(seed=0)"`` or a folder path.
        timestamps: ``(T,)`` interval starts, naive local prevailing (clock) time, 30 minutes apart,
            starting at midnight; ``T`` is a multiple of 48.
        load_kwh: ``(T, N)`` household consumption, kWh per interval (excluding battery and PV).
        pv_kwh: ``(T, N)`` AC PV generation, kWh per interval.
        household_ids: ``N`` names, e.g. ``("Building_1", ...)``.
        pv_capacity_kw: ``(N,)`` installed PV, kW (0 = no PV).
        temperature_c: ``(T,)`` outdoor temperature, or None.
        irradiance_w_per_m2: ``(T,)`` global horizontal irradiance, or None.
        flags: household id -> reason, for homes the loader found suspicious, whether or not they are
            in this data set (faulty homes are left out unless asked for).
    """

    name: str
    timestamps: pd.DatetimeIndex
    load_kwh: np.ndarray
    pv_kwh: np.ndarray
    household_ids: tuple[str, ...]
    pv_capacity_kw: np.ndarray
    temperature_c: np.ndarray | None = None
    irradiance_w_per_m2: np.ndarray | None = None
    flags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_dataset(self)
        for arr in (self.load_kwh, self.pv_kwh, self.pv_capacity_kw, self.temperature_c, self.irradiance_w_per_m2):
            if arr is not None:
                arr.setflags(write=False)

    @property
    def num_intervals(self) -> int:
        return self.load_kwh.shape[0]

    @property
    def num_households(self) -> int:
        return self.load_kwh.shape[1]

    @property
    def num_days(self) -> int:
        return self.num_intervals // INTERVALS_PER_DAY

    @property
    def dates(self) -> pd.DatetimeIndex:
        """``(num_days,)`` the calendar date of each day."""
        return self.timestamps[::INTERVALS_PER_DAY].normalize()

    def test_day_mask(self) -> np.ndarray:
        """``(num_days,)`` True for test days: the last 7 calendar days of every month."""
        dates = self.dates
        return (dates.days_in_month - dates.day) < TEST_DAYS_PER_MONTH

    def split_days(self, split: str) -> np.ndarray:
        """Day indices of ``split``: ``"train"``, ``"test"`` or ``"all"``."""
        mask = self.test_day_mask()
        if split == "train":
            return np.flatnonzero(~mask)
        if split == "test":
            return np.flatnonzero(mask)
        if split == "all":
            return np.arange(self.num_days)
        raise ValueError(f"unknown split {split!r}; expected 'train', 'test' or 'all'")

    def select(self, households: list[int] | np.ndarray) -> "Dataset":
        """A data set of the given household columns (shares timestamps and weather)."""
        idx = np.asarray(households, dtype=int)
        return Dataset(
            name=self.name,
            timestamps=self.timestamps,
            load_kwh=np.ascontiguousarray(self.load_kwh[:, idx]),
            pv_kwh=np.ascontiguousarray(self.pv_kwh[:, idx]),
            household_ids=tuple(self.household_ids[i] for i in idx),
            pv_capacity_kw=self.pv_capacity_kw[idx].copy(),
            temperature_c=self.temperature_c,
            irradiance_w_per_m2=self.irradiance_w_per_m2,
            flags=dict(self.flags),  # flags describe the source, kept homes or not
        )


def validate_dataset(ds: Dataset) -> None:
    """Raise :class:`DataError` naming the source, column and row of the first problem found."""
    src = ds.name
    if ds.load_kwh.ndim != 2 or ds.pv_kwh.ndim != 2:
        raise DataError(f"{src}: load_kwh and pv_kwh must be 2-D (interval, household)")
    if ds.load_kwh.shape != ds.pv_kwh.shape:
        raise DataError(f"{src}: load_kwh {ds.load_kwh.shape} and pv_kwh {ds.pv_kwh.shape} differ in shape")
    t, n = ds.load_kwh.shape
    if t == 0 or n == 0:
        raise DataError(f"{src}: empty data set ({t} intervals, {n} households)")
    if t % INTERVALS_PER_DAY:
        raise DataError(f"{src}: {t} intervals is not a whole number of days of {INTERVALS_PER_DAY}")
    if len(ds.timestamps) != t:
        raise DataError(f"{src}: {len(ds.timestamps)} timestamps for {t} intervals")
    if len(ds.household_ids) != n or len(ds.pv_capacity_kw) != n:
        raise DataError(f"{src}: {n} households but {len(ds.household_ids)} ids / {len(ds.pv_capacity_kw)} PV sizes")
    steps_s = np.diff(ds.timestamps.values).astype("timedelta64[s]").astype(np.int64)
    if len(steps_s) and not np.all(steps_s == 30 * 60):
        row = int(np.flatnonzero(steps_s != 30 * 60)[0]) + 1
        raise DataError(f"{src}: timestamps are not 30 minutes apart at row {row} ({ds.timestamps[row]})")
    if ds.timestamps[0] != ds.timestamps[0].normalize():
        raise DataError(f"{src}: the first interval must start at midnight, got {ds.timestamps[0]}")
    for col, arr in (("load_kwh", ds.load_kwh), ("pv_kwh", ds.pv_kwh)):
        bad = ~np.isfinite(arr)
        if bad.any():
            r, h = np.argwhere(bad)[0]
            raise DataError(f"{src}: column {col} of {ds.household_ids[h]} is not finite at row {r} ({arr[r, h]})")
        neg = arr < 0
        if neg.any():
            r, h = np.argwhere(neg)[0]
            raise DataError(f"{src}: column {col} of {ds.household_ids[h]} is negative at row {r} ({arr[r, h]})")
    for col, arr in (("temperature_c", ds.temperature_c), ("irradiance_w_per_m2", ds.irradiance_w_per_m2)):
        if arr is None:
            continue
        if arr.shape != (t,):
            raise DataError(f"{src}: {col} has shape {arr.shape}, expected ({t},)")
        bad = ~np.isfinite(arr)
        if bad.any():
            raise DataError(f"{src}: column {col} is not finite at row {int(np.flatnonzero(bad)[0])}")
