"""Table layouts of the external data sources: columns, accepted types, allow-lists and DDL.

Two tables hold a community's data (``docs/data_sources.md`` has the full description):

* ``consumption``: one row per household and interval, ``interval_start_utc`` timezone-aware (UTC);
  15-, 30- or 60-minute intervals (resampled to 30 minutes on load).
* ``pricing``: wholesale prices in the original team's CAISO layout (``INTERVALSTARTTIME_GMT``,
  ``NODE``, ``Price KWH`` in $/kWh). Readers also accept the hourly LMP layout of
  ``shared/data/caiso`` (``node``, ``market``, ``interval_start_local`` in Pacific prevailing time,
  ``price_usd_per_kwh``), as a table or a file.

SQL safety: table and schema names come from configuration, so they are checked against
:data:`IDENTIFIER_RE` (letters, digits, underscore; no quotes, spaces or semicolons) before any query
is built, and queries quote them as identifiers (``psycopg.sql.Identifier``). Column names are never
taken from input: they are the fixed names of a layout below (the allow-list), matched
case-insensitively against the database catalogue.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from energy_env.data.dataset import DataError

ColumnKind = Literal["id", "utc_time", "local_time", "number"]

# A conservative SQL identifier: what PostgreSQL accepts unquoted (63 bytes max), any case.
IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

# information_schema.columns.data_type values accepted for each kind of column.
ACCEPTED_TYPES: dict[ColumnKind, tuple[str, ...]] = {
    "id": ("text", "character varying", "character", "integer", "bigint", "smallint"),
    "utc_time": ("timestamp with time zone",),
    "local_time": ("timestamp without time zone", "text", "character varying"),
    "number": ("double precision", "real", "numeric", "integer", "bigint", "smallint"),
}
# The original team's pricing table may hold its GMT times as text or naive timestamps; the column's
# name states the zone, so those are read as UTC.
LEGACY_UTC_TYPES = ("timestamp with time zone", "timestamp without time zone", "text", "character varying")


@dataclass(frozen=True)
class Column:
    """One column of a layout: its exact name, role in the package, kind, DDL type and nullability."""

    name: str
    role: str
    kind: ColumnKind
    ddl_type: str
    nullable: bool = False
    accepted_types: tuple[str, ...] | None = None  # None = ACCEPTED_TYPES[kind]

    def accepts(self, data_type: str) -> bool:
        return data_type in (self.accepted_types or ACCEPTED_TYPES[self.kind])

    def expected_types(self) -> str:
        return ", ".join(self.accepted_types or ACCEPTED_TYPES[self.kind])


@dataclass(frozen=True)
class Layout:
    """A table layout: columns (the allow-list of names), primary key, and the time column's zone."""

    name: str
    default_table: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    description: str

    def column(self, role: str) -> Column | None:
        return next((c for c in self.columns if c.role == role), None)

    @property
    def required(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if not c.nullable)

    @property
    def time_column(self) -> Column:
        col = self.column("ts")
        assert col is not None
        return col


CONSUMPTION = Layout(
    name="consumption",
    default_table="consumption",
    columns=(
        Column("household_id", "key", "id", "text"),
        Column("interval_start_utc", "ts", "utc_time", "timestamptz"),
        Column("load_kwh", "load_kwh", "number", "double precision"),
        Column("pv_kwh", "pv_kwh", "number", "double precision"),
        Column("temperature_c", "temperature_c", "number", "double precision", nullable=True),
    ),
    primary_key=("household_id", "interval_start_utc"),
    description="household load and PV, kWh per interval, interval start in UTC",
)

CAISO_PRICE_KWH = Layout(
    name="caiso_price_kwh",
    default_table="pricing",
    columns=(
        Column("INTERVALSTARTTIME_GMT", "ts", "utc_time", "timestamptz", accepted_types=LEGACY_UTC_TYPES),
        Column("NODE", "key", "id", "text"),
        Column("Price KWH", "price_usd_per_kwh", "number", "double precision"),
    ),
    primary_key=("NODE", "INTERVALSTARTTIME_GMT"),
    description="CAISO prices, $/kWh, interval start in GMT (the original team's Supabase table)",
)

CAISO_LMP_HOURLY = Layout(
    name="caiso_lmp_hourly",
    default_table="pricing_lmp_hourly",
    columns=(
        Column("node", "key", "id", "text"),
        Column("market", "market", "id", "text"),
        Column("interval_start_local", "ts", "local_time", "timestamp"),
        Column("price_usd_per_kwh", "price_usd_per_kwh", "number", "double precision"),
    ),
    primary_key=("node", "market", "interval_start_local"),
    description="CAISO hourly LMP of shared/data/caiso, Pacific prevailing time, $/kWh",
)

PRICING_LAYOUTS: tuple[Layout, ...] = (CAISO_PRICE_KWH, CAISO_LMP_HOURLY)
LAYOUTS: dict[str, Layout] = {lay.name: lay for lay in (CONSUMPTION, *PRICING_LAYOUTS)}


def validate_identifier(name: object, what: str = "table name") -> str:
    """Return ``name`` if it is a safe SQL identifier, else raise :class:`DataError` saying why.

    This is the allow-list check for names that come from configuration or the command line; it
    runs before any SQL is composed, so an injection attempt never reaches the database.
    """
    if not isinstance(name, str) or not IDENTIFIER_RE.fullmatch(name):
        raise DataError(
            f"invalid {what} {name!r}: use 1-63 letters, digits or underscores, not starting with a digit "
            "(quotes, spaces, dots and semicolons are refused)"
        )
    return name


def match_columns(
    layout: Layout, available: dict[str, str], where: str, check_types: bool = True
) -> dict[str, tuple[str, str]]:
    """Map each role of ``layout`` to the actual (name, data_type) among ``available`` columns.

    Args:
        available: column name -> ``information_schema.columns.data_type``.
        where: e.g. ``"table public.consumption"``, for messages.
        check_types: False for files, whose cells are checked row by row instead.

    Raises:
        DataError: a required column is missing, or a column has a type the layout does not accept.
    """
    by_lower = {name.lower(): name for name in available}
    out: dict[str, tuple[str, str]] = {}
    missing = []
    for col in layout.columns:
        actual = col.name if col.name in available else by_lower.get(col.name.lower())
        if actual is None:
            if not col.nullable:
                missing.append(col.name)
            continue
        data_type = available[actual]
        if check_types and not col.accepts(data_type):
            raise DataError(
                f"{where}: column {actual!r} has type {data_type}, but the {layout.name} layout needs "
                f"{col.expected_types()} ({layout.description})"
            )
        out[col.role] = (actual, data_type)
    if missing:
        raise DataError(
            f"{where}: missing column(s) {', '.join(map(repr, missing))} of the {layout.name} layout "
            f"({layout.description}); it has {sorted(available)}"
        )
    return out


def detect_pricing_layout(columns: list[str] | set[str], where: str) -> Layout:
    """The pricing layout whose required columns are all present (case-insensitive)."""
    lower = {c.lower() for c in columns}
    for layout in PRICING_LAYOUTS:
        if all(c.name.lower() in lower for c in layout.required):
            return layout
    wanted = "; ".join(f"{lay.name}: {[c.name for c in lay.required]}" for lay in PRICING_LAYOUTS)
    raise DataError(f"{where}: not a known pricing layout (columns {sorted(columns)}); expected one of {wanted}")


def _quote(name: str) -> str:
    # Names are allow-listed layout columns or validated identifiers: they hold no double quote.
    assert '"' not in name
    return f'"{name}"'


def ddl(layout: Layout, table: str | None = None, schema: str = "public") -> str:
    """``CREATE TABLE IF NOT EXISTS`` for ``layout`` (e.g. to paste into Supabase's SQL editor)."""
    table = validate_identifier(table or layout.default_table)
    schema = validate_identifier(schema, "schema name")
    lines = [f"    {_quote(c.name)} {c.ddl_type}{'' if c.nullable else ' NOT NULL'}" for c in layout.columns]
    lines.append(f"    PRIMARY KEY ({', '.join(_quote(c) for c in layout.primary_key)})")
    return f"CREATE TABLE IF NOT EXISTS {_quote(schema)}.{_quote(table)} (\n" + ",\n".join(lines) + "\n);"
