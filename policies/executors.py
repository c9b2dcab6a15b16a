"""Where independent solves run: in this process, in spawned worker processes, or on Ray.

The oracle's episodes (and their homes) are independent models. On one machine they run in
spawned processes, one per core (spawn, not fork: a forked HiGHS or torch process can deadlock);
where a user has a cluster, the same tasks run as Ray tasks (the ``[ray]`` extra: ``pip install
'wattshare[ray]'``; ``RAY_ADDRESS`` names the cluster, else Ray starts on this machine). No RPC of
our own: the engines ship the functions and their arguments.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, Sequence

ENGINES = ("processes", "ray")


def map_tasks(fn: Callable[[Any], Any], items: Sequence[Any], workers: int = 1, engine: str = "processes") -> list[Any]:
    """``[fn(x) for x in items]``, ``workers`` at a time on ``engine``; results in the order of ``items``.

    ``fn`` and the items must pickle. One worker (or one item) runs here, in this process.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    items = list(items)
    if engine == "ray":
        return _ray_map(fn, items)
    if workers <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    with ProcessPoolExecutor(min(workers, len(items)), mp_context=mp.get_context("spawn")) as pool:
        return list(pool.map(fn, items))


def _ray_map(fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    try:
        import ray
    except ImportError as err:
        raise ImportError("engine 'ray' needs Ray: pip install 'wattshare[ray]'") from err
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"), ignore_reinit_error=True, log_to_driver=False)
    task = ray.remote(fn)
    return ray.get([task.remote(x) for x in items])
