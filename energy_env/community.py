"""Building a community (config -> data set -> static params + precomputed arrays), cached.

Loading a year of data and precomputing prices and forecasts happens once per distinct
(config, data set, forecast provider); every env built on the same inputs shares the result.
"""

from __future__ import annotations

import calendar
import json
from dataclasses import dataclass
from functools import lru_cache

from energy_env.config import INTERVALS_PER_DAY, ConfigError, EnvConfig, per_household_lists_problem
from energy_env.core import CommunityData, CommunityParams
from energy_env.precompute import build_data, build_params
from energy_env.data import Dataset, load_dataset
from energy_env.forecast import ForecastProvider
from energy_env.memory import check_memory


@dataclass(frozen=True)
class Community:
    """A config with its data set, static parameters and per-data-set arrays."""

    config: EnvConfig
    params: CommunityParams
    data: CommunityData

    @property
    def dataset(self) -> Dataset:
        return self.data.dataset

    @property
    def num_households(self) -> int:
        return self.data.dataset.num_households


def build_community(
    config: EnvConfig, dataset: Dataset | None = None, provider: ForecastProvider | None = None
) -> Community:
    """The community for ``config``; ``dataset``/``provider`` override the config's data and forecasts.

    Without overrides the result is cached on the config, so building many envs is cheap.
    """
    if dataset is None and provider is None:
        return _cached(json.dumps(config.model_dump(mode="json"), sort_keys=True))
    return _assemble(config, dataset if dataset is not None else _load(config), provider)


@lru_cache(maxsize=16)
def _cached(config_json: str) -> Community:
    config = EnvConfig.model_validate_json(config_json)
    return _assemble(config, _load(config), None)


def _assemble(config: EnvConfig, dataset: Dataset, provider: ForecastProvider | None) -> Community:
    """Params and precomputed arrays of ``dataset``; the config's size becomes the data set's."""
    check_memory(dataset.num_intervals, dataset.num_households)
    problem = per_household_lists_problem(config, dataset.num_households)
    if problem:
        raise ConfigError(f"{dataset.name}: {problem}")
    if dataset.num_households != config.num_households:
        config = config.model_copy(update={"num_households": dataset.num_households})
    return Community(config, build_params(config, dataset.num_households), build_data(config, dataset, provider))


def _load(config: EnvConfig) -> Dataset:
    """The config's data set; a synthetic one is checked against the memory before it is generated."""
    if config.data.source == "synthetic":
        days = 366 if calendar.isleap(config.data.year) else 365
        check_memory(days * INTERVALS_PER_DAY, config.households_to_load)
    return load_dataset(config.data, config.households_to_load, config.seed, config.database)
