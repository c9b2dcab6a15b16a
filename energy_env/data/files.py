"""CSV and Parquet files in the ``consumption`` and ``pricing`` layouts (see ``tables.py``).

A file holds one table. The format follows the extension: ``.csv`` (``.csv.gz`` too) or ``.parquet``
/ ``.pq``. CSV cells are read as text and checked row by row, so one bad cell rejects one row (with
its file line in the report) rather than the whole file. Household and date filters are applied
while reading, as a database would apply them on the server: rows they leave out are not counted
as read.

Timestamps: ``interval_start_utc`` / ``INTERVALSTARTTIME_GMT`` values may carry any UTC offset
(``2024-10-01T07:00:00Z``, ``...-07:00``); values without one are read as UTC, as the column name
says. ``interval_start_local`` (the ``shared/data/caiso`` layout) is Pacific prevailing time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from energy_env.data.dataset import DataError
from energy_env.data.sources import RawRows, TimeWindow, _parse_times, clean_id, clean_ids
from energy_env.data.tables import CONSUMPTION, Layout, detect_pricing_layout, match_columns

CSV_SUFFIXES = (".csv", ".csv.gz", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")


def read_table_file(path: str | Path) -> pd.DataFrame:
    """The whole file as a DataFrame (CSV cells as text), or a :class:`DataError` naming the file."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(f"{file}: file not found")
    name = file.name.lower()
    try:
        if name.endswith(PARQUET_SUFFIXES):
            return pd.read_parquet(file)
        if name.endswith(CSV_SUFFIXES):
            return pd.read_csv(file, dtype=str, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DataError(f"{file}: file is empty (expected a header and data rows)") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as err:
        raise DataError(f"{file}: not a readable {'Parquet' if name.endswith(PARQUET_SUFFIXES) else 'CSV'} file: {err}") from None
    raise DataError(f"{file}: unknown file type; expected {', '.join(CSV_SUFFIXES + PARQUET_SUFFIXES)}")


class FileSource:
    """A CSV or Parquet file as a :class:`~energy_env.data.sources.Source` (the table name is ignored)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self._frame: pd.DataFrame | None = None

    def describe(self) -> str:
        return f"file {self.path}"

    def _read(self) -> pd.DataFrame:
        if self._frame is None:
            df = read_table_file(self.path)
            df.columns = [str(c).strip() for c in df.columns]
            self._frame = df
        return self._frame

    def _columns(self, layout: Layout) -> dict[str, str]:
        """role -> actual column name (presence only: values are checked row by row)."""
        df = self._read()
        matched = match_columns(layout, {c: "" for c in df.columns}, self.describe(), check_types=False)
        return {role: name for role, (name, _) in matched.items()}

    def _select(self, layout: Layout, keep: np.ndarray, tz: str) -> RawRows:
        df = self._read()
        cols = self._columns(layout)
        picked = df.loc[keep, list(cols.values())].rename(columns={v: k for k, v in cols.items()})
        lines = np.flatnonzero(keep) + 2  # header is line 1
        is_csv = not self.path.name.lower().endswith(PARQUET_SUFFIXES)
        ref = (lambda i: f"file line {lines[i]}") if is_csv else (lambda i: f"row {lines[i] - 1}")
        zone = "local" if layout.time_column.kind == "local_time" else "utc"
        return RawRows(picked.reset_index(drop=True), self.describe(), zone, ref, layout)

    def _in_window(self, layout: Layout, window: TimeWindow) -> np.ndarray:
        """Rows inside the window; rows whose time does not parse stay in, to be rejected with a reason."""
        df = self._read()
        if window.start_date is None and window.end_date is None:
            return np.ones(len(df), dtype=bool)
        ts_name = self._columns(layout)["ts"]
        zone = "local" if layout.time_column.kind == "local_time" else "utc"
        utc, *_ = _parse_times(df[ts_name], zone, window.tz)
        start, end = window.utc_bounds()
        keep = utc.isna().to_numpy()
        inside = np.ones(len(df), dtype=bool)
        if start is not None:
            inside &= (utc >= start).to_numpy()
        if end is not None:
            inside &= (utc < end).to_numpy()
        return keep | inside

    def list_households(self, table: str, window: TimeWindow) -> list[str]:
        df = self._read()
        key = self._columns(CONSUMPTION)["key"]
        ids = clean_ids(df.loc[self._in_window(CONSUMPTION, window), key].dropna())
        return sorted(set(ids) - {""})

    def read_consumption(self, table: str, households: Sequence[str], window: TimeWindow) -> RawRows:
        df = self._read()
        key = self._columns(CONSUMPTION)["key"]
        wanted = [clean_id(h) for h in households]
        keep = self._in_window(CONSUMPTION, window).copy() & (df[key].notna() & clean_ids(df[key]).isin(wanted)).to_numpy()
        return self._select(CONSUMPTION, keep, window.tz)

    def read_pricing(self, table: str, node: str, market: str | None, window: TimeWindow) -> RawRows:
        df = self._read()
        layout = detect_pricing_layout(list(df.columns), self.describe())
        cols = self._columns(layout)
        node = clean_id(node)
        market = None if market is None else clean_id(market)
        nodes = clean_ids(df[cols["key"]])
        if node not in set(nodes):
            raise DataError(f"{self.describe()}: no rows for node {node!r}; nodes in the file: {sorted(set(nodes.dropna()))[:20]}")
        keep = (nodes == node).to_numpy().copy()
        if "market" in cols:
            markets = clean_ids(df[cols["market"]])
            have = sorted(set(markets[keep]))
            if market is None and len(have) > 1:
                raise DataError(f"{self.describe()}: node {node!r} has markets {have}; choose one (market: DAM or RTM)")
            if market is not None:
                if market not in have:
                    raise DataError(f"{self.describe()}: node {node!r} has no rows for market {market!r}; it has {have}")
                keep &= (markets == market).to_numpy()
        keep &= self._in_window(layout, window)
        return self._select(layout, keep, window.tz)
