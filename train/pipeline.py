"""The main job, ``wattshare run``: forecasters -> policies -> benchmark, on the embedded default.

Read it top to bottom:

1. Build the default community (10 synthetic homes, one year) from the config.
2. Each home's LSTM forecaster, federated: FedAvg on Flower (the in-process path: only weights
   travel between the homes and the server), then each home fine-tunes the global model on its
   own train days. The env's observations and the coordinator's price signal then use those
   forecasts (computed once for the whole data set).
3. Train the shared policies of ``pipeline.learned`` on train weeks: by default PPO correcting
   the rule-based controller's setpoint (residual learning, ``pipeline.residual_base``; reward:
   savings against each home's PG&E baseline) and, featured, a policy trained by analytic policy
   gradients through the differentiable twin (``apg``); ``ppo`` adds PPO setting the setpoint
   itself.
4. Benchmark on the test weeks, which training never saw: the PG&E baseline, the rule-based
   controller, MPC, the perfect-foresight oracle and the learned policies.
5. Write ``simulation_results.json`` (the seed's shape, for the learned policy, with a timeline of
   the first test week and every policy's aggregate figures), the table and the plots.

Every budget comes from the run configuration's sections (``wattshare run --config``), which the
job writes beside its results as ``run_config.yaml``. ``--quick`` is a one-minute smoke version:
tiny training budgets, one test week, no MPC.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from energy_env.community import build_community
from energy_env.episodes import WEEK
from energy_env.results import results_json
from policies.registry import make_policy
from train.benchmark import BenchmarkRuns, PolicyFailed, PolicyRun, peak_rss_mb, run_benchmark
from train.ppo import train_shared
from train.run_config import RunConfig, with_sections


def featured_run(runs: BenchmarkRuns, name: str, folder: Path) -> PolicyRun:
    """The featured policy's row of the benchmark; :class:`PolicyFailed` when it failed (``folder`` holds what finished)."""
    run = runs[name]
    if not run.ok:
        raise PolicyFailed(f"the featured policy {name} failed: {run.error} (what finished is in {folder})") from run.exception
    return run


def run_pipeline(run: RunConfig, out_dir: str | Path = "data/output", quick: bool = False, progress: bool = True) -> dict:
    """Run the whole pipeline under ``run``; returns the ``simulation_results.json`` document.

    A benchmark policy that fails is listed in the document's ``failed_policies``; the featured
    PPO policy failing raises :class:`train.benchmark.PolicyFailed` (after the benchmark's files).

    ``run``'s sections set every budget (the defaults are the main job's; ``--quick`` is
    :data:`train.run_config.QUICK` applied to them); ``quick`` only labels the document.
    """
    from federated.forecast_runs import global_forecasters, personalised_forecasters, run_fedavg
    from federated.forecasters import run_config_from_sections
    from forecasting.checkpoint import save_checkpoint
    from forecasting.provider import LSTMForecast

    config, fed_settings, workers = run.env, run.federated, run.pipeline.workers
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "run_config.yaml").write_text(run.to_yaml())  # the whole job: pass it back with --config
    ckpt = out / "checkpoints"
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    # 1. The community (with persistence forecasts until the LSTMs exist).
    base = build_community(config)
    dataset = base.dataset
    from train.flags import announce_data  # noqa: PLC0415 - printing is the command line's

    announce_data(dataset)
    run, at_scale = at_scale_recipe(run, dataset.num_households)
    fed_settings, training = run.federated, run.training
    memory: dict[str, float] = {}

    # 2. Federated forecasters (pipeline.workers homes train at once: this machine's cores), then
    #    the community whose observations carry their forecasts. At scale every home uses the global
    #    FedAvg model (fine-tuning 1,000 homes would take hours).
    fed = run_fedavg(dataset, run_config_from_sections(run.forecasting, fed_settings), workers=workers, progress=progress)
    if at_scale:
        trained = global_forecasters(fed, dataset)
    else:
        trained = personalised_forecasters(fed, dataset, fed_settings.finetune_epochs, workers=workers)
    save_checkpoint(trained, ckpt / "forecasters.pt")
    federated_info = {"method": "FedAvg on Flower" + (" (the global model for every home)" if at_scale else ", then local fine-tuning"),
                      "rounds": fed_settings.rounds, "local_epochs": fed_settings.local_epochs, "best_round": fed.best_round,
                      "clients_per_round": max(1, int(dataset.num_households * fed_settings.fraction_train)),
                      "replies_left_out": len(fed.left_out), "fedavg_seconds": round(fed.wall_seconds, 1)}
    train_cfg = config.model_copy(update={"reward": config.reward.model_copy(update={"kind": training.reward}),
                                          "episode_length": training.episode_length})
    lstm = LSTMForecast(trained=trained)  # forecasts the data set once; both communities share them
    community = build_community(train_cfg, dataset=dataset, provider=lstm)
    timings["forecasters_s"] = time.perf_counter() - t0
    memory["forecasters"] = peak_rss_mb()

    # 3. Shared policies on train days (pipeline.learned): PPO setting the setpoint itself or
    #    correcting a controller, analytic policy gradients; the last one is featured.
    t1 = time.perf_counter()
    learned = []
    for kind in run.pipeline.learned:
        t_kind = time.perf_counter()
        if kind == "apg":
            from train.apg import NAME as APG_NAME, train_apg

            settings = training.replace(algorithm="apg", mode="shared", residual_base=None, pretrain="none")
            learned.append(train_apg(community, settings, ckpt / APG_NAME, evaluate=False))
        else:
            residual = run.pipeline.residual_base if kind == "ppo_residual" else None
            settings = training.replace(algorithm="ppo", mode="shared", residual_base=residual)
            folder = ckpt / ("ppo_shared" if residual is None else f"ppo_shared_residual_{residual}")
            folder.mkdir(parents=True, exist_ok=True)
            learned.append(train_shared(community, settings, folder, evaluate=False))
        timings[f"{learned[-1].name}_training_s"] = time.perf_counter() - t_kind
    timings["policy_training_s"] = time.perf_counter() - t1
    best = learned[-1]  # featured
    memory["policy_training"] = peak_rss_mb()

    # 4. Benchmark on the test weeks (cost, not the training reward, is what is scored).
    t2 = time.perf_counter()
    scored = build_community(config.model_copy(update={"episode_length": WEEK}), dataset=dataset, provider=lstm)
    named = [make_policy(p, oracle=run.oracle) if p == "oracle" else p for p in run.benchmark.policies]
    runs = run_benchmark(None, [*named, *learned], out / "benchmark", max_weeks=run.benchmark.weeks, plots=run.benchmark.plots,
                         progress=progress, community=scored)
    timings["benchmark_s"] = time.perf_counter() - t2
    memory["benchmark"] = peak_rss_mb()

    # 5. The seed-shaped document: the learned policy, its first test week, every policy's figures.
    #    A failed baseline policy is a row that says so (exit 1); without the featured policy
    #    there is no document to write (the benchmark folder holds what finished).
    featured = featured_run(runs, best.name, out / "benchmark")
    doc = {k: v for k, v in featured.document.items() if k not in ("status", "run_key", "run_inputs")}
    doc["households_first_test_week"] = results_json(scored, featured.trajectory, best.name, timeline=True)["households"]
    doc["policies"] = {name: r.document["aggregate_metrics"] for name, r in runs.items() if r.ok}
    doc["failed_policies"] = runs.failed  # {name: "<ExceptionType>: <message>"}; empty when all finished
    timings["total_s"] = time.perf_counter() - t0
    doc["timings_seconds"] = {k: round(v, 1) for k, v in timings.items()}
    doc["peak_rss_mb"] = memory  # the process's (or a worker's) peak so far, after each stage
    doc["at_scale"] = at_scale
    doc["mode"] = "quick" if quick else "full"
    doc["forecasters"] = federated_info
    out.mkdir(parents=True, exist_ok=True)
    (out / "simulation_results.json").write_text(json.dumps(doc, indent=2))
    return doc


def at_scale_recipe(run: RunConfig, num_households: int) -> tuple[RunConfig, dict | None]:
    """``run`` as the main job runs it for ``num_households`` homes, and what the at-scale recipe changed (None below it).

    From ``pipeline.scale_households`` homes on: FedAvg samples ``scale_clients_per_round`` homes per
    round (training and evaluation), every home uses the global model, PPO rolls out about
    ``scale_rollout_households`` households per step, and ``scale_skip_policies`` are left out
    (APG bounds its own batch at every size: ``training.apg_max_batch_households``).
    """
    p = run.pipeline
    if num_households < p.scale_households:
        return run, None
    share = min(1.0, p.scale_clients_per_round / num_households)
    scenarios = max(1, p.scale_rollout_households // num_households)
    policies = [name for name in run.benchmark.policies if name not in p.scale_skip_policies]
    changed = {"federated": {"fraction_train": share, "fraction_evaluate": share},
               "training": {"scenarios": scenarios},
               "benchmark": {"policies": policies}}
    scaled = with_sections(run, changed)
    return scaled, {**changed, "forecasters": "the global FedAvg model for every home (no fine-tuning)"}
