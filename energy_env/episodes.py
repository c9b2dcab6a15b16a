"""Episodes and the evaluation protocol: where an episode starts, and the test weeks.

Every caller that trains, evaluates or benchmarks uses these, so that "the test weeks" mean the
same episodes everywhere:

* the **split** (``Dataset.split_days``): the last 7 days of every month are test days, the
  rest train days;
* a **test week** is one episode of :data:`WEEK` intervals from the first day of each run of
  consecutive test days; the battery's state carries from day to day and is settled at the end;
* a training or env **episode** starts at midnight of a day of a split (:func:`episode_start`):
  ``"train"`` days (an episode longer than a day may run on into the test days after its start),
  ``"train_whole"`` (only episodes whose every day is a train day), ``"test"`` or ``"all"``.
"""

from __future__ import annotations

import warnings

import numpy as np

from energy_env.config import INTERVALS_PER_DAY
from energy_env.data.dataset import Dataset

WEEK = 7 * INTERVALS_PER_DAY  # intervals of a test-week episode
RESET_OPTIONS = ("day", "split", "start_interval")
SPLITS = ("train", "train_whole", "test", "all")


def first_days_of_test_weeks(dataset: Dataset) -> np.ndarray:
    """Global start intervals of each run of consecutive test days (the last 7 days of a month)."""
    mask = dataset.test_day_mask()
    first = np.flatnonzero(mask & ~np.concatenate([[False], mask[:-1]]))
    return first * INTERVALS_PER_DAY


def test_week_starts(dataset: Dataset, length: int = WEEK) -> np.ndarray:
    """Start intervals of the test-week episodes: each run of test days that ``length`` intervals fit after."""
    starts = first_days_of_test_weeks(dataset)
    return starts[starts + length <= dataset.num_intervals]


test_week_starts.__test__ = False  # a helper, not a pytest test


def train_window_starts(dataset: Dataset, length: int) -> np.ndarray:
    """Start intervals (midnights) of every episode of ``length`` intervals that lies wholly in train days.

    Unlike :func:`episode_start`'s draws, which only start on a train day, no interval of these
    windows is a test day: a trainer that sees whole windows never sees a test week's data.
    Raises ``ValueError`` when no window fits.
    """
    days_needed = -(-length // INTERVALS_PER_DAY)
    train = ~dataset.test_day_mask()
    runs = np.convolve(train.astype(np.int64), np.ones(days_needed, dtype=np.int64), mode="valid")  # train days in each window
    first = np.flatnonzero(runs == days_needed)
    first = first[first * INTERVALS_PER_DAY + length <= dataset.num_intervals]
    if len(first) == 0:
        raise ValueError(f"{dataset.name}: no window of {length} intervals lies wholly in train days")
    return first * INTERVALS_PER_DAY


def check_split(split: str) -> None:
    """Raise ``ValueError`` naming the known splits unless ``split`` is one of :data:`SPLITS`."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(map(repr, SPLITS))}")


def split_start_days(dataset: Dataset, split: str, length: int) -> np.ndarray:
    """Days of ``split`` on which an episode of ``length`` intervals can start (within the data set).

    ``"train_whole"`` keeps only the train days whose episode lies wholly in train days
    (:func:`train_window_starts`); the other splits only need the episode to fit in the data.
    """
    check_split(split)
    if split == "train_whole":
        return train_window_starts(dataset, length) // INTERVALS_PER_DAY
    days = dataset.split_days(split)
    return days[days * INTERVALS_PER_DAY + length <= dataset.num_intervals]


def episode_start(dataset: Dataset, length: int, options: dict, rng: np.random.Generator, stacklevel: int = 2) -> int:
    """First interval of an episode of ``length`` intervals chosen by reset ``options``.

    ``start_interval`` picks it directly, ``day`` the k-th usable day of ``split`` (default
    ``"train"``); otherwise ``rng`` draws a day of the split. Episodes start at midnight.
    """
    unknown = set(options) - set(RESET_OPTIONS)
    if unknown:  # PettingZoo's own API test passes foreign options, so warn rather than fail
        warnings.warn(f"ignoring unknown reset option(s) {sorted(unknown)}; known: 'day', 'split', 'start_interval'", stacklevel=stacklevel)
    total = dataset.num_intervals
    if length > total:
        raise ValueError(f"episode_length {length} exceeds the data set's {total} intervals")
    if "start_interval" in options:
        start = int(options["start_interval"])
        if not 0 <= start <= total - length:
            raise ValueError(f"start_interval {start} must lie in [0, {total - length}]")
        return start
    days = split_start_days(dataset, options.get("split", "train"), length)
    if len(days) == 0:
        raise ValueError(f"no day of split {options.get('split', 'train')!r} can start an episode of {length} intervals")
    if "day" in options:
        d = int(options["day"])
        if not 0 <= d < len(days):
            raise ValueError(f"day {d} is out of range: split {options.get('split', 'train')!r} has {len(days)} usable days")
        return int(days[d]) * INTERVALS_PER_DAY
    return int(rng.choice(days)) * INTERVALS_PER_DAY
