"""The in-memory data set every simulation runs on: load and PV of N homes on a 30-minute grid.

Arrays are laid out ``(T, N)`` (interval, household) so that one step reads one contiguous row,
and a batch of scenarios gathers rows with one fancy index. Everything here is read-only after
construction and is shared, not copied, by every env built on it.

A data set also says where it came from: :attr:`Dataset.source` (a description without
credentials), :meth:`Dataset.fingerprint` (a hash of its ids, clock and values),
:attr:`Dataset.load_report` (what the loader did to the rows) and :meth:`Dataset.locate` (the file
line or table rows behind one household and interval, for error messages).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, Sequence

import numpy as np
import pandas as pd

from energy_env.config import INTERVALS_PER_DAY
from energy_env.data.redact import redact

if TYPE_CHECKING:  # report.py imports this module (through resample.py): no runtime import
    from energy_env.data.report import LoadReport

FINGERPRINT_VERSION = b"wattshare-dataset-v1"

TEST_DAYS_PER_MONTH = 7  # the last 7 days of every month are test days


class DataError(ValueError):
    """Bad input data; the message names the file (or source), column and row.

    The message is passed through :func:`energy_env.data.redact.redact`, so that a credential in a
    URL, a DSN or a server's reply never reaches a terminal or a log through an error.
    """

    def __init__(self, message: object = "", *args: object) -> None:
        super().__init__(redact(message), *args)


class Locator(Protocol):
    """Names where the value of one household at one naive local slot came from.

    Returns e.g. ``"file /data/homes.csv lines 1234-1235"``; called on error paths only, so it may
    re-read its file (it keeps nothing per cell in memory). Implementations: ``files.FileLocator``,
    ``rows.TableLocator``, ``citylearn.CityLearnLocator``.
    """

    def __call__(self, household_id: str, timestamp: pd.Timestamp) -> str: ...


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
        source: where the data came from, without credentials, e.g. ``"file /data/homes.csv"`` or
            ``"postgres user@host:5432/db table public.consumption"``; "" = :attr:`name`.
        locator: names the file line / table rows behind a (household, slot); see :meth:`locate`.
        load_report: what the loader did to the rows (external sources; None for synthetic and
            CityLearn data). It describes the whole load, also after :meth:`select`.
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
    source: str = ""
    locator: Locator | None = field(default=None, compare=False, repr=False)
    load_report: "LoadReport | None" = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.source:
            object.__setattr__(self, "source", self.name)  # frozen: the one place a field is set late
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
            source=self.source,
            locator=self.locator,  # keyed by household id, so valid for any selection
            load_report=self.load_report,
        )

    def fingerprint(self) -> str:
        """sha256 hex of the ids, timestamps, load and PV (see :func:`dataset_fingerprint`); computed once."""
        cached = self.__dict__.get("_fingerprint")
        if cached is None:  # the arrays are read-only, so the hash cannot go stale
            cached = dataset_fingerprint(self.household_ids, self.timestamps, self.load_kwh, self.pv_kwh)
            object.__setattr__(self, "_fingerprint", cached)
        return cached

    def locate(self, household_index: int, interval_index: int) -> str:
        """Where the load and PV of one household in one interval came from, for an error message.

        E.g. ``"file /data/homes.csv lines 1234-1235 (household h7, 2025-07-01 18:00 local)"``,
        ``"postgres u@db:5432/x table public.consumption: the row of household 'h7' with
        interval_start_utc = 2025-07-02T01:00Z (household h7, 2025-07-01 18:00 local)"``, or for
        data without a locator (synthetic) ``"synthetic(n=10, ...) (household household_3, ...)"``.
        Indices as into ``load_kwh[interval_index, household_index]``.
        """
        household = self.household_ids[household_index]
        timestamp = self.timestamps[interval_index]
        when = f"household {household}, {timestamp:%Y-%m-%d %H:%M} local"
        if self.locator is None:
            return redact(f"{self.source} ({when})")
        try:
            where = self.locator(household, timestamp)
        except Exception as err:  # noqa: BLE001 - an error path: never hide the caller's error behind this one
            where = f"{self.source} (its rows could not be re-read: {type(err).__name__}: {err})"
        return redact(f"{where} ({when})")

    def provenance(self) -> dict[str, Any]:
        """JSON-ready: which homes, which source, which hash (and the load report, where there is one)."""
        return {
            "source": self.source,
            "name": self.name,
            "household_ids": list(self.household_ids),
            "first_interval": str(self.timestamps[0]),
            "last_interval": str(self.timestamps[-1]),
            "num_intervals": self.num_intervals,
            "fingerprint_sha256": self.fingerprint(),
            "load_report": self.load_report.to_dict() if self.load_report is not None else None,
        }


def dataset_fingerprint(
    household_ids: Sequence[str], timestamps: pd.DatetimeIndex, load_kwh: np.ndarray, pv_kwh: np.ndarray
) -> str:
    """sha256 hex of a data set's content: shape and ids (JSON), then the raw bytes of the timestamps
    (int64 ns) and of ``load_kwh`` and ``pv_kwh`` ((T, N) float64, C order), all little-endian.

    Equal for equal data on any machine; any changed value, id, order or timestamp changes it.
    Hashes the arrays in place (no copy when they are float64 and contiguous, as data sets are).
    """
    digest = hashlib.sha256(FINGERPRINT_VERSION)
    digest.update(json.dumps({"shape": list(load_kwh.shape), "ids": list(household_ids)}).encode())
    digest.update(np.ascontiguousarray(pd.DatetimeIndex(timestamps).as_unit("ns").asi8, dtype="<i8"))
    for arr in (load_kwh, pv_kwh):
        digest.update(np.ascontiguousarray(arr, dtype="<f8"))
    return digest.hexdigest()


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
