"""The dispatcher over the external data sources: files, PostgreSQL and Supabase.

:class:`ExternalDataOptions` says where and how to read household data, built from the config by
:meth:`ExternalDataOptions.from_config` (``DataConfig`` + ``DatabaseConfig``); :func:`open_source`
opens the :class:`~energy_env.data.rows.Source` it names; :func:`load_consumption` reads, checks
and assembles the rows into a :class:`Dataset` with its :class:`LoadReport`;
:func:`load_external_dataset` is what ``energy_env.data.load_dataset`` calls (cached in-process).
Prices use the same options and sources (``caiso.py``).

Which homes: ``households`` (explicit ids) in their given order; else every home with rows in the
window, in the source's order (a file: the order each id first appears; a table, which has no
order: natural order, ``household_2`` before ``household_10``), all of them or the first
``num_households``. Credentials (a DSN, a Supabase key) come from the environment or a ``.env``
file (``settings.py``) and never appear in a message or a name.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from energy_env.config import DatabaseConfig, DataConfig
from energy_env.data.assemble import rows_to_dataset
from energy_env.data.dataset import DataError, Dataset
from energy_env.data.files import FileSource
from energy_env.data.redact import redact
from energy_env.data.report import LoadReport
from energy_env.data.resample import DEFAULT_MAX_GAP_INTERVALS, LOCAL_TZ, GapPolicy
from energy_env.data.rows import Source, TimeWindow, clean_id, unique_ids
from energy_env.data.tables import CONSUMPTION

_log = logging.getLogger(__name__)
ExternalSource = Literal["file", "postgres", "supabase"]
EXTERNAL_SOURCES: tuple[str, ...] = ("file", "postgres", "supabase")


@dataclass(frozen=True, kw_only=True)
class SourceOptions:
    """What every read from a file, PostgreSQL or Supabase needs (hashable: a cache key).

    Attributes:
        source: ``file`` (CSV or Parquet, by extension), ``postgres`` or ``supabase``.
        path: the file (``file`` only).
        table: the table (``postgres`` / ``supabase``); checked against the identifier allow-list.
        start_date, end_date: local dates, inclusive (None: what the data cover, whole days).
        gap_fill, max_gap_intervals: the :class:`GapPolicy` (``max_gap_intervals`` default one day,
            :data:`~energy_env.data.resample.DEFAULT_MAX_GAP_INTERVALS`; None = no limit).
        resolution_minutes: the input interval length (None: detected).
        tz: the local time zone of the simulation clock.
        database: connection settings (schema, the variable holding the DSN, ``.env`` file, page size).
    """

    source: ExternalSource = "file"
    path: str | None = None
    table: str = CONSUMPTION.default_table
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    gap_fill: str = "none"
    max_gap_intervals: int | None = DEFAULT_MAX_GAP_INTERVALS
    resolution_minutes: int | None = None
    tz: str = LOCAL_TZ
    database: DatabaseConfig = DatabaseConfig()

    @property
    def window(self) -> TimeWindow:
        """The local dates to read."""
        return TimeWindow(self.start_date, self.end_date, self.tz)

    @property
    def gap_policy(self) -> GapPolicy:
        """The rule for missing half hours."""
        return GapPolicy(self.gap_fill, self.max_gap_intervals)  # type: ignore[arg-type]


@dataclass(frozen=True, kw_only=True)
class ExternalDataOptions(SourceOptions):
    """Where and how to load household data; ``households``: the ids to load, in this order (None:
    every home of the source, in its order, or the first ``num_households``). The rest:
    :class:`SourceOptions`.
    """

    source: ExternalSource
    households: tuple[str, ...] | None = None

    @classmethod
    def from_config(cls, data: DataConfig, database: DatabaseConfig | None = None) -> "ExternalDataOptions":
        """From ``EnvConfig.data`` and ``EnvConfig.database`` (None: the default connection settings)."""
        if data.source not in EXTERNAL_SOURCES:
            raise DataError(f"data.source {data.source!r} is not an external source ({', '.join(EXTERNAL_SOURCES)})")
        return cls(
            source=data.source,
            path=data.path,
            table=data.table,
            households=tuple(clean_id(h) for h in data.households) if data.households else None,
            start_date=data.start_date,
            end_date=data.end_date,
            gap_fill=data.gap_fill,
            max_gap_intervals=data.max_gap_intervals,  # null in a config means no limit, not the default
            resolution_minutes=data.resolution_minutes,
            database=database if database is not None else DatabaseConfig(),
        )


def open_source(options: SourceOptions) -> Source:
    """The :class:`~energy_env.data.rows.Source` named by ``options.source`` (credentials from the environment / ``.env``)."""
    db = options.database
    if options.source == "file":
        if not options.path:
            raise DataError("source 'file' needs a path (data.path, or tariff.wholesale.path for prices): a .csv or .parquet file")
        return FileSource(options.path)
    # the database clients (psycopg, httpx) cost ~0.1 s to import: only when used
    if options.source == "postgres":
        from energy_env.data.postgres import PostgresSource

        return PostgresSource.from_env(db.dsn_env, db.env_file, schema=db.db_schema, page_rows=db.page_rows)
    if options.source == "supabase":
        from energy_env.data.supabase_source import SupabaseSource

        return SupabaseSource.from_env(db.env_file, schema=db.db_schema, page_rows=db.page_rows)
    raise DataError(f"unknown external data source {options.source!r}; expected one of {', '.join(EXTERNAL_SOURCES)}")


def select_households(
    options: ExternalDataOptions, num_households: int | None, src: Source
) -> list[str]:
    """The ids to load: ``options.households`` (given order), else the source's homes with rows in
    the window in its order (:meth:`~energy_env.data.rows.Source.list_households`); all of them
    when ``num_households`` is None, else the first ``num_households``.

    Raises:
        DataError: no homes, fewer than ``num_households``, or an id listed twice.
    """
    if num_households is not None and num_households < 1:
        raise DataError(f"num_households must be >= 1 or None (every home), got {num_households}")
    window = options.window
    if options.households:
        households = unique_ids(options.households, src.describe())
        if num_households is not None and num_households != len(households):
            if num_households > len(households):
                raise DataError(f"data.households lists {len(households)} homes, but num_households is {num_households}")
            households = households[:num_households]
        return households
    # dict: one entry per id after cleaning, in the source's order
    available = list(dict.fromkeys(h for h in map(clean_id, src.list_households(options.table, window)) if h))
    what = "the file" if isinstance(src, FileSource) else f"table {options.table!r}"
    if not available:
        raise DataError(f"{src.describe()}: {what} has no rows ({window.describe()})")
    if num_households is not None and num_households > len(available):
        raise DataError(
            f"{src.describe()}: {what} has {len(available)} households ({window.describe()}), "
            f"but num_households is {num_households}"
        )
    return available[:num_households] if num_households is not None else available


def load_consumption(
    options: ExternalDataOptions, num_households: int | None = None, source: Source | None = None
) -> tuple[Dataset, LoadReport]:
    """Load household data as a :class:`Dataset`, with its :class:`LoadReport` (also ``dataset.load_report``).

    Households: :func:`select_households` (``num_households`` None = every home of the source).

    Raises:
        DataError: naming the source and cause (missing table, wrong column type, no rows, gaps the
            rule does not fill, too few households, ...).
    """
    src = source or open_source(options)
    households = select_households(options, num_households, src)
    window = options.window
    raw = src.read_consumption(options.table, households, window)
    return rows_to_dataset(
        raw,
        households=households,
        window=window,
        gap_policy=options.gap_policy,
        resolution_minutes=options.resolution_minutes,
    )


@lru_cache(maxsize=4)
def _cached_external(options: ExternalDataOptions, num_households: int | None) -> Dataset:
    ds, report = load_consumption(options, num_households)
    # logged as well as kept on the data set (a warning when rows were lost or filled, or a check failed)
    lossy = report.rows_rejected or report.warnings or any(g.kind == "missing" for g in report.gaps)
    _log.log(logging.WARNING if lossy else logging.INFO, "%s", redact(report.summary()))
    return ds


def load_external_dataset(
    data: DataConfig, num_households: int | None, database: DatabaseConfig | None = None
) -> Dataset:
    """``energy_env.data.load_dataset`` for ``file`` / ``postgres`` / ``supabase`` (cached in-process).

    ``num_households`` None = every home of the source. The :class:`LoadReport` is
    ``dataset.load_report``.
    """
    return _cached_external(ExternalDataOptions.from_config(data, database), num_households)


def clear_cache() -> None:
    """Forget data sets loaded from external sources."""
    _cached_external.cache_clear()
