"""Household load and PV data: the embedded synthetic community, the CityLearn loader and external sources.

External sources (``file``, ``postgres``, ``supabase``): the dispatcher ``sources.py`` over
``files.py``, ``postgres.py`` and ``supabase_source.py``, which build on ``rows.py`` (raw rows,
checks), ``assemble.py`` (the grid), ``report.py`` and ``settings.py``; see ``docs/data_sources.md``.

Homes: ``num_households`` None = every home the source holds (a file: in file order; a table:
natural order; CityLearn: every kept building); an int = the first that many. Every data set
records its ``source``, ``fingerprint()``, ``load_report`` and ``locate(household, interval)``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from energy_env.config import DatabaseConfig, DataConfig
from energy_env.data.citylearn import load_citylearn
from energy_env.data.dataset import DataError, Dataset, validate_dataset
from energy_env.data.report import LoadReport
from energy_env.data.sources import EXTERNAL_SOURCES, ExternalDataOptions, load_consumption, load_external_dataset
from energy_env.data.sources import clear_cache as clear_external_cache
from energy_env.data.synthetic import generate_synthetic

__all__ = [
    "DataError",
    "Dataset",
    "ExternalDataOptions",
    "LoadReport",
    "clear_cache",
    "generate_synthetic",
    "load_citylearn",
    "load_consumption",
    "load_dataset",
    "validate_dataset",
]


@lru_cache(maxsize=8)
def _synthetic_cached(num_households: int, year: int, seed: int) -> Dataset:
    return generate_synthetic(num_households, year, seed)


@lru_cache(maxsize=4)
def _citylearn_cached(path: str, buildings: tuple[int, ...] | None, include_faulty: bool) -> Dataset:
    return load_citylearn(path, list(buildings) if buildings is not None else None, include_faulty)


@lru_cache(maxsize=8)
def _citylearn_first_cached(
    path: str, buildings: tuple[int, ...] | None, include_faulty: bool, num_households: int | None
) -> Dataset:
    ds = _citylearn_cached(path, buildings, include_faulty)
    if num_households is None:
        return ds
    if num_households > ds.num_households:
        dropped = sum(1 for h in ds.flags if h not in ds.household_ids)
        hint = f" ({dropped} more are flagged faulty: set data.include_faulty)" if dropped else ""
        raise DataError(
            f"{path}: the data set has {ds.num_households} homes{hint}, but num_households is {num_households}"
        )
    return ds if num_households == ds.num_households else ds.select(list(range(num_households)))


def load_dataset(
    cfg: DataConfig, num_households: int | None, seed: int, database: DatabaseConfig | None = None
) -> Dataset:
    """The data set a config asks for, cached in-process (data sets are read-only, so shared).

    ``num_households``: the first that many homes, or None for every home the source holds.

    ``synthetic``: :func:`generate_synthetic` with ``num_households`` homes (required), ``cfg.year``
    and ``seed``. ``citylearn``: :func:`load_citylearn` of ``cfg.path`` (``seed`` is unused), every
    kept building or the first ``num_households``; asking for more homes than the folder gives
    raises :class:`DataError`. ``file`` / ``postgres`` / ``supabase``:
    :func:`energy_env.data.sources.load_external_dataset` (``database``: connection settings; None =
    the defaults); the :class:`LoadReport` is ``dataset.load_report``.
    """
    if num_households is not None and num_households < 1:
        raise DataError(f"num_households must be >= 1 or None (every home of the source), got {num_households}")
    if cfg.source == "synthetic":
        if num_households is None:
            raise DataError("num_households is required for data.source synthetic")
        return _synthetic_cached(int(num_households), int(cfg.year), int(seed))
    if cfg.source == "citylearn":
        if not cfg.path:
            raise DataError("data.source 'citylearn' needs data.path (a folder holding schema.json)")
        path = str(Path(cfg.path).expanduser().resolve())
        buildings = tuple(int(b) for b in cfg.buildings) if cfg.buildings is not None else None
        count = int(num_households) if num_households is not None else None
        return _citylearn_first_cached(path, buildings, bool(cfg.include_faulty), count)
    if cfg.source in EXTERNAL_SOURCES:
        return load_external_dataset(cfg, int(num_households) if num_households is not None else None, database)
    raise DataError(
        f"unknown data.source {cfg.source!r}; expected 'synthetic', 'citylearn', {', '.join(map(repr, EXTERNAL_SOURCES))}"
    )


def clear_cache() -> None:
    """Forget cached data sets (e.g. after editing files in a CityLearn folder)."""
    _synthetic_cached.cache_clear()
    _citylearn_cached.cache_clear()
    _citylearn_first_cached.cache_clear()
    clear_external_cache()
