"""Household load and PV data: the embedded synthetic community, the CityLearn loader and external sources.

External sources (``file``, ``postgres``, ``supabase``) live in ``sources.py`` and its neighbours;
see ``docs/data_sources.md``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from energy_env.config import DatabaseConfig, DataConfig
from energy_env.data.citylearn import load_citylearn
from energy_env.data.dataset import DataError, Dataset, validate_dataset
from energy_env.data.sources import EXTERNAL_SOURCES, LoadReport, load_consumption, load_external_dataset
from energy_env.data.sources import clear_cache as clear_external_cache
from energy_env.data.synthetic import generate_synthetic

__all__ = [
    "DataError",
    "Dataset",
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
    path: str, buildings: tuple[int, ...] | None, include_faulty: bool, num_households: int
) -> Dataset:
    ds = _citylearn_cached(path, buildings, include_faulty)
    if num_households > ds.num_households:
        dropped = sum(1 for h in ds.flags if h not in ds.household_ids)
        hint = f" ({dropped} more are flagged faulty: set data.include_faulty)" if dropped else ""
        raise DataError(
            f"{path}: the data set has {ds.num_households} homes{hint}, but num_households is {num_households}"
        )
    return ds if num_households == ds.num_households else ds.select(list(range(num_households)))


def load_dataset(cfg: DataConfig, num_households: int, seed: int, database: DatabaseConfig | None = None) -> Dataset:
    """The data set a config asks for, cached in-process (data sets are read-only, so shared).

    ``synthetic``: :func:`generate_synthetic` with ``num_households`` homes, ``cfg.year`` and ``seed``.
    ``citylearn``: :func:`load_citylearn` of ``cfg.path`` (``seed`` is unused), cut to the first
    ``num_households`` homes; asking for more homes than the folder gives raises :class:`DataError`.
    ``file`` / ``postgres`` / ``supabase``: :func:`energy_env.data.sources.load_external_dataset`
    (``database``: connection settings; None = the defaults).
    """
    if num_households < 1:
        raise DataError(f"num_households must be >= 1, got {num_households}")
    if cfg.source == "synthetic":
        return _synthetic_cached(int(num_households), int(cfg.year), int(seed))
    if cfg.source == "citylearn":
        if not cfg.path:
            raise DataError("data.source 'citylearn' needs data.path (a folder holding schema.json)")
        path = str(Path(cfg.path).expanduser().resolve())
        buildings = tuple(int(b) for b in cfg.buildings) if cfg.buildings is not None else None
        return _citylearn_first_cached(path, buildings, bool(cfg.include_faulty), int(num_households))
    if cfg.source in EXTERNAL_SOURCES:
        return load_external_dataset(cfg, int(num_households), database)
    raise DataError(
        f"unknown data.source {cfg.source!r}; expected 'synthetic', 'citylearn', {', '.join(map(repr, EXTERNAL_SOURCES))}"
    )


def clear_cache() -> None:
    """Forget cached data sets (e.g. after editing files in a CityLearn folder)."""
    _synthetic_cached.cache_clear()
    _citylearn_cached.cache_clear()
    _citylearn_first_cached.cache_clear()
    clear_external_cache()
