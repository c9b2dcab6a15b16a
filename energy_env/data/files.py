"""CSV and Parquet files in the ``consumption`` and ``pricing`` layouts (see ``tables.py``).

A file holds one table. The format follows the extension: ``.csv`` (``.csv.gz`` too) or ``.parquet``
/ ``.pq``. CSV cells are read as text and checked row by row, so one bad cell rejects one row (with
its file line in the report) rather than the whole file. Household and date filters are applied
while reading, as a database would apply them on the server: rows they leave out are not counted
as read.

Timestamps: ``interval_start_utc`` / ``INTERVALSTARTTIME_GMT`` values may carry any UTC offset
(``2024-10-01T07:00:00Z``, ``...-07:00``); values without one are read as UTC, as the column name
says. ``interval_start_local`` (the ``shared/data/caiso`` layout) is Pacific prevailing time.

Homes are listed in file order: the order in which each id first appears. A data set loaded from a
file names the lines behind any (household, slot) through :class:`FileLocator`, which re-reads
the file when asked (an error path) rather than keeping line numbers per cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from energy_env.data.dataset import DataError
from energy_env.data.resample import LOCAL_TZ
from energy_env.data.rows import RawRows, TimeWindow, clean_id, clean_ids, parse_times, slot_row_starts
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


def _zone(layout: Layout) -> str:
    return "local" if layout.time_column.kind == "local_time" else "utc"


def _is_csv(path: Path) -> bool:
    return not path.name.lower().endswith(PARQUET_SUFFIXES)


class FileSource:
    """A CSV or Parquet file as a :class:`~energy_env.data.rows.Source` (the table name is ignored).

    The path is made absolute (not resolved: a link keeps its name), so that messages and
    ``Dataset.source`` say which file wherever the command ran.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser().absolute()
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
        ref = (lambda i: f"file line {lines[i]}") if _is_csv(self.path) else (lambda i: f"row {lines[i] - 1}")
        stat = self.path.stat()
        locator = (
            (lambda minutes: FileLocator(str(self.path), minutes, tz, (stat.st_size, stat.st_mtime_ns)))
            if layout is CONSUMPTION else None
        )
        return RawRows(picked.reset_index(drop=True), self.describe(), _zone(layout), ref, layout, locator=locator)

    def _in_window(self, layout: Layout, window: TimeWindow) -> np.ndarray:
        """Rows inside the window; rows whose time does not parse stay in, to be rejected with a reason."""
        df = self._read()
        if window.start_date is None and window.end_date is None:
            return np.ones(len(df), dtype=bool)
        ts_name = self._columns(layout)["ts"]
        utc, *_ = parse_times(df[ts_name], _zone(layout), window.tz)
        start, end = window.utc_bounds()
        keep = utc.isna().to_numpy()
        inside = np.ones(len(df), dtype=bool)
        if start is not None:
            inside &= (utc >= start).to_numpy()
        if end is not None:
            inside &= (utc < end).to_numpy()
        return keep | inside

    def list_households(self, table: str, window: TimeWindow) -> list[str]:
        """Ids with rows in ``window``, in file order: the order of each id's first line (any date)."""
        df = self._read()
        key = self._columns(CONSUMPTION)["key"]
        present = df[key].notna().to_numpy()
        ids = clean_ids(df.loc[present, key])
        in_window = set(ids[self._in_window(CONSUMPTION, window)[present]]) - {""}
        # first appearance in the whole file, so the order does not depend on the dates asked for
        return [h for h in pd.unique(ids) if h in in_window]

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


def _numbers_text(numbers: np.ndarray) -> str:
    """``12``, ``12-13`` or ``12-13, 40``: sorted numbers as runs."""
    runs: list[list[int]] = []
    for n in sorted(int(x) for x in numbers):
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs)


@dataclass(frozen=True)
class FileLocator:
    """A :class:`~energy_env.data.dataset.Locator` for a data set loaded from a consumption file.

    Called with a household id and a naive local slot, it re-reads the file and names the lines
    (CSV; header = line 1) or rows (Parquet, 1-based) of that household whose interval overlaps the
    slot, e.g. ``"file /data/homes.csv lines 1234-1235"``: two lines for 15-minute data or for the
    repeated fall-back hour, one for 30- or 60-minute data, none for a slot the gap rule filled.

    Attributes:
        path: the file (absolute).
        minutes: household -> the interval length its rows were read at (absent: 30).
        tz: the local time zone of the data set's clock.
        stamp: ``(size, mtime_ns)`` of the file when it was loaded; a different file now is said.
    """

    path: str
    minutes: Mapping[str, int]
    tz: str = LOCAL_TZ
    stamp: tuple[int, int] | None = None

    def __call__(self, household_id: str, timestamp: pd.Timestamp) -> str:
        source = FileSource(self.path)
        where = source.describe()
        stat = source.path.stat() if source.path.is_file() else None
        changed = stat is not None and self.stamp is not None and (stat.st_size, stat.st_mtime_ns) != tuple(self.stamp)
        note = " (the file changed since it was loaded: lines may have moved)" if changed else ""
        df = source._read()
        cols = source._columns(CONSUMPTION)
        keys = df[cols["key"]]
        mine = np.flatnonzero(keys.notna().to_numpy() & (clean_ids(keys) == household_id).to_numpy())
        utc, *_ = parse_times(df[cols["ts"]].iloc[mine].reset_index(drop=True), _zone(CONSUMPTION), self.tz)
        ranges = slot_row_starts(timestamp, self.minutes.get(household_id, 30), self.tz)
        hit = np.zeros(len(mine), dtype=bool)
        for first, last in ranges:
            hit |= ((utc >= first) & (utc <= last)).to_numpy()
        if not hit.any():
            why = "the local time does not exist (DST spring forward)" if not ranges else "a gap"
            return f"{where}: no {'line' if _is_csv(source.path) else 'row'} for this slot ({why}: the value was filled){note}"
        numbers = mine[hit] + (2 if _is_csv(source.path) else 1)
        unit = "line" if _is_csv(source.path) else "row"
        return f"{where} {unit}{'s' if len(numbers) > 1 else ''} {_numbers_text(numbers)}{note}"
