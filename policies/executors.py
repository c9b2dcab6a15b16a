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
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Callable, Sequence

ENGINES = ("processes", "ray")


def map_tasks(fn: Callable[[Any], Any], items: Sequence[Any], workers: int = 1, engine: str = "processes",
              progress: str | None = None) -> list[Any]:
    """``[fn(x) for x in items]``, ``workers`` at a time on ``engine``; results in the order of ``items``.

    ``fn`` and the items must pickle. One worker (or one item) runs here, in this process.
    ``progress``: a bar of that name counts the finished items.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    items = list(items)
    bar = _bar(progress, len(items))
    try:
        if engine == "ray":
            return _ray_map(fn, items, bar)
        if workers <= 1 or len(items) <= 1:
            results = []
            for x in items:
                results.append(fn(x))
                bar.update(1)
            return results
        results: list[Any] = [None] * len(items)
        with ProcessPoolExecutor(min(workers, len(items)), mp_context=mp.get_context("spawn")) as pool:
            futures = {pool.submit(fn, x): k for k, x in enumerate(items)}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                bar.update(1)
        return results
    finally:
        bar.close()


def _bar(desc: str | None, total: int):
    """A tqdm bar, or a stand-in that does nothing (no tqdm needed without a bar)."""
    if desc is None:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="task", leave=False)


class _NoBar:
    def update(self, n: int = 1) -> None:
        return None

    def close(self) -> None:
        return None


def _call(fn: Callable[[Any], Any], x: Any) -> Any:
    return fn(x)


def _ray_map(fn: Callable[[Any], Any], items: list[Any], bar) -> list[Any]:
    try:
        import ray
    except ImportError as err:
        raise ImportError("engine 'ray' needs Ray: pip install 'wattshare[ray]'") from err
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"), ignore_reinit_error=True, log_to_driver=False)
    task = ray.remote(_call)  # a module function: Ray takes neither partials nor builtins as tasks
    fn_ref = ray.put(fn)  # shipped once, not once per item
    refs = [task.remote(fn_ref, x) for x in items]
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        bar.update(len(done))
    return ray.get(refs)
