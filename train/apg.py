"""Train a shared battery policy by analytic policy gradients through the differentiable twin.

PPO estimates how an action changes the cost from sampled returns. Here the cost is a known,
piecewise-linear function of the setpoints (battery, grid, pool market, tariff), so its exact
gradient is available: roll the policy out over whole train weeks, sum every home's cost, and
backpropagate through the weeks (the state of charge carries each decision's effect forward to
the evening it pays off in, and to the week's settlement). The policy is deterministic, acts
only on what a home observes, and is the same network and checkpoint as a PPO policy, so
``wattshare benchmark --checkpoints`` and :class:`~policies.learned.LearnedPolicy` use it
unchanged. Read it top to bottom:

1. Build the training windows: week-long episodes whose days are all train days (no test day's
   load or PV is ever seen, not even at a week's end).
2. Fit the observation normaliser on the rule-based controller's observations of the train
   windows (all of them, or evenly spaced ones at scale).
3. The network: SB3's MLP actor-critic (the critic is unused), its mean action is the setpoint.
4. Each iteration draws ``apg_batch_weeks`` windows (fewer where weeks x homes would exceed
   ``apg_max_batch_households``); the env (compiled kernel) steps them and
   gives the observations, the twin (:mod:`train.differentiable`) gives the same cost as a
   differentiable function of the setpoints and the state of charge; Adam steps on the mean
   cost per household-interval (in cents, so that gradients are well above Adam's epsilon and
   the norm clip of ``apg_max_grad_norm`` acts), the learning rate decays linearly to 0.
5. Every ``apg_eval_every`` iterations the policy is scored on the test weeks (``curve.csv``);
   the checkpoint, ``timing.json`` and a final curve point are written at the end.

Gradients flow through the setpoints and the state of charge the policy observes; the market
fields and signals it observes (last P2P price, supply-demand ratio, profitability score) are
taken as given, not differentiated.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy

from energy_env import core, kernel
from energy_env.community import Community
from energy_env.episodes import train_window_starts
from energy_env.rollout import rollout
from policies.checkpoint import env_action_space
from policies.learned import CLIP_OBS, LearnedPolicy, LoadedModel, ObsNormalizer
from policies.observation_scale import ObservationScaler
from train import differentiable as twin_lib
from train.checkpoints import save_checkpoint
from train.evaluation import CurveLogger, TestWeekEvaluator
from train.settings import PPOSettings

NAME = "apg_shared"
# The normaliser sees the rule's observations of every train window, or of evenly spaced ones (at
# least NORMALIZER_MIN_WINDOWS, so every season's prices are in it) where windows x homes would
# exceed NORMALIZER_HOUSEHOLD_WINDOWS: a sample that misses NEM 3's rare evening credits would
# scale a $3/kWh credit far past the clip, where it looks like $0.40.
NORMALIZER_HOUSEHOLD_WINDOWS = 20_000
NORMALIZER_MIN_WINDOWS = 26
NORMALIZER_CHUNK_HOUSEHOLDS = 2_000  # windows x homes rolled out at once


# ---------------------------------------------------------------------------------------------
# 1.-3. Windows, normaliser, network


def fit_normalizer(community: Community, starts: np.ndarray, length: int, scaler: ObservationScaler) -> ObsNormalizer:
    """Mean and variance of the observations the rule-based controller meets on the train windows.

    Every window, or evenly spaced ones at scale (:data:`NORMALIZER_HOUSEHOLD_WINDOWS`), rolled
    out a few at a time and merged (Chan et al.'s pairwise update), so memory stays bounded.
    """
    from policies.registry import make_policy

    n = community.num_households
    count = max(NORMALIZER_MIN_WINDOWS, NORMALIZER_HOUSEHOLD_WINDOWS // n)
    pick = starts if len(starts) <= count else starts[np.linspace(0, len(starts) - 1, count).round().astype(int)]
    chunk = max(1, NORMALIZER_CHUNK_HOUSEHOLDS // n)
    total, mean, m2 = 0, None, None
    rule = make_policy("rule_based")
    for i in range(0, len(pick), chunk):
        seen = scaler(rollout(community, rule.act, pick[i : i + chunk], length)["observation"], community)
        flat = seen.reshape(-1, seen.shape[-1]).astype(np.float64)
        k, m, v = len(flat), flat.mean(axis=0), flat.var(axis=0)
        if mean is None:
            total, mean, m2 = k, m, v * k
            continue
        delta = m - mean
        mean = mean + delta * k / (total + k)
        m2 = m2 + v * k + delta**2 * total * k / (total + k)
        total += k
    return ObsNormalizer(mean, m2 / total)


def new_network(community: Community, settings: PPOSettings) -> ActorCriticPolicy:
    """The policy network: PPO's MLP actor-critic of ``settings.net_arch`` (the checkpoint format's), Adam at ``apg_learning_rate``."""
    size = core.layout_of(community.params).size
    return ActorCriticPolicy(
        spaces.Box(-np.inf, np.inf, (size,), np.float32), env_action_space(1), lambda _: settings.apg_learning_rate,
        net_arch=list(settings.net_arch), log_std_init=settings.log_std_init,
        ortho_init=False,  # PyTorch's default: PPO's orthogonal init (output gain 0.01) starts idle and learns slower here
    )


def mean_action(network: ActorCriticPolicy, obs: torch.Tensor) -> torch.Tensor:
    """The deterministic action (the Gaussian's mean, before clipping) for normalised observations ``(M, D)``."""
    return network.get_distribution(obs).distribution.mean


# ---------------------------------------------------------------------------------------------
# 4. One differentiable rollout


@dataclass(frozen=True)
class WeekCost:
    """What a differentiable rollout returns."""

    total_usd: torch.Tensor  # every home's cost over the windows, as the twin computes it (differentiable)
    overshoot: torch.Tensor  # sum of squared mean actions beyond [-1, 1] (differentiable)
    env_usd: float  # the same cost as the env (compiled kernel) computed it
    baseline_usd: float  # the PG&E baseline's cost of the same windows


class WeekRollout:
    """Rolls a network over B windows through the env and the twin (the cost it returns is differentiable)."""

    def __init__(self, community: Community, normalizer: ObsNormalizer, scaler: ObservationScaler) -> None:
        self.community = community
        self.twin = twin_lib.twin_of(community)
        self.stepper = kernel.Stepper(community.params, community.data)
        self.scaler = scaler
        self.mean = torch.as_tensor(normalizer.mean, dtype=torch.float32)
        self.std = torch.as_tensor(np.sqrt(normalizer.var + normalizer.epsilon), dtype=torch.float32)
        cap = community.params.battery.capacity_kwh
        self.inv_capacity = torch.as_tensor(np.where(cap > 0, 1.0 / np.where(cap > 0, cap, 1.0), 0.0))
        self.soc_at = core.layout_of(community.params).at("soc_fraction")

    def __call__(self, network: ActorCriticPolicy, starts: np.ndarray, length: int) -> "WeekCost":
        """The cost of ``network`` over windows ``starts`` (:class:`WeekCost`; its tensors are differentiable)."""
        params, data = self.community.params, self.community.data
        state = core.reset_state(params, data, starts, length)
        obs = self.stepper.observe(state)
        soc = torch.as_tensor(state.soc_kwh.copy())
        soc_start = soc.clone()
        used = torch.zeros_like(soc)
        total = torch.zeros((), dtype=torch.float64)
        overshoot = torch.zeros((), dtype=torch.float64)
        env_cost = baseline = 0.0
        b, n = soc.shape
        for _ in range(length):
            x = torch.as_tensor(self.scaler(obs, self.community))
            # the observed state of charge is the twin's, so the gradient follows it into the policy
            x = torch.cat([x[..., : self.soc_at], (soc * self.inv_capacity).float()[..., None], x[..., self.soc_at + 1 :]], dim=-1)
            x = torch.clamp((x - self.mean) / self.std, -CLIP_OBS, CLIP_OBS)
            action = mean_action(network, x.reshape(b * n, -1)).reshape(b, n).double()
            t = torch.as_tensor(state.t)
            done = torch.as_tensor(state.t + 1 >= state.end)
            out, used = twin_lib.step(self.twin, soc, action, t, used, soc_start, done)
            total = total + out.cost_usd.sum()
            # the env clips setpoints to [-1, 1], where the gradient vanishes: keep the mean near the box
            overshoot = overshoot + torch.relu(action.abs() - 1.0).square().sum()
            state, result, obs, _ = self.stepper.step(state, action.detach().numpy())
            env_cost += float(result.cost_usd.sum())
            baseline += float(result.baseline_cost_usd.sum())
            soc = out.soc_kwh
        drift = float(np.abs(soc.detach().numpy() - state.soc_kwh).max())
        if drift > 1e-6 or abs(float(total.detach()) - env_cost) > 1e-6 * max(1.0, abs(env_cost)):
            raise RuntimeError(f"the differentiable twin left the env: state of energy off by {drift:.3g} kWh, "
                               f"cost ${float(total.detach()):.6f} against ${env_cost:.6f}")
        return WeekCost(total, overshoot, env_cost, baseline)


# ---------------------------------------------------------------------------------------------
# The loop


def batch_weeks(settings: PPOSettings, num_households: int, windows: int) -> int:
    """Windows per gradient step: ``apg_batch_weeks``, fewer where weeks x homes would exceed
    ``apg_max_batch_households`` (one week of every home at least), never more than there are."""
    return max(1, min(settings.apg_batch_weeks, settings.apg_max_batch_households // num_households, windows))


def train_apg(community: Community, settings: PPOSettings, out: Path, evaluate: bool = True) -> LearnedPolicy:
    """Train a shared policy by analytic policy gradients; checkpoint and curve in ``out``."""
    torch.set_num_threads(settings.torch_threads)
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    length = settings.episode_length
    starts = train_window_starts(community.dataset, length)
    scaler = ObservationScaler(settings.observation_scale)
    normalizer = fit_normalizer(community, starts, length, scaler)
    network = new_network(community, settings)
    optimizer = network.optimizer
    run = WeekRollout(community, normalizer, scaler)
    snapshot = lambda: LearnedPolicy([LoadedModel(network)], [normalizer], "shared", name=NAME,  # noqa: E731
                                     observation_scale=settings.observation_scale)

    out.mkdir(parents=True, exist_ok=True)
    curve = CurveLogger(out / "curve.csv", TestWeekEvaluator(community) if evaluate else None)
    batch = batch_weeks(settings, community.num_households, len(starts))
    per_iteration = batch * community.num_households * length
    log = (out / "progress.csv").open("w")
    log.write("iteration,household_steps,train_savings_percent,grad_norm,seconds\n")
    t0, train_seconds = time.perf_counter(), 0.0
    from tqdm import tqdm

    for it in tqdm(range(1, settings.apg_iterations + 1), desc="APG", unit="it"):
        t_it = time.perf_counter()
        network.set_training_mode(True)
        pick = starts[rng.choice(len(starts), batch, replace=False)]
        cost = run(network, pick, length)
        loss = 100.0 * (cost.total_usd + cost.overshoot) / per_iteration  # cents per household-interval
        optimizer.zero_grad()
        loss.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(network.parameters(), settings.apg_max_grad_norm))
        for group in optimizer.param_groups:  # linear decay to 0 over the run
            group["lr"] = settings.apg_learning_rate * (1.0 - (it - 1) / settings.apg_iterations)
        optimizer.step()
        train_seconds += time.perf_counter() - t_it
        log.write(f"{it},{it * per_iteration},{100 * (cost.baseline_usd - cost.env_usd) / cost.baseline_usd:.3f},{grad_norm:.4f},{train_seconds:.1f}\n")
        log.flush()
        if evaluate and it % settings.apg_eval_every == 0 and it < settings.apg_iterations:
            network.set_training_mode(False)
            point = curve.log(it * per_iteration, snapshot())
            if point:
                tqdm.write(f"  iteration {it}: test savings {point['savings_percent']}%, oracle share {point['oracle_share']}")
    log.close()
    network.set_training_mode(False)
    policy = snapshot()
    steps = settings.apg_iterations * per_iteration
    save_checkpoint(out, policy, community, settings, steps)
    (out / "timing.json").write_text(json.dumps({
        "train_seconds": round(train_seconds, 1), "wall_seconds": round(time.perf_counter() - t0, 1), "iterations": settings.apg_iterations,
        "household_steps": steps, "household_steps_per_second": round(steps / max(train_seconds, 1e-9)),
    }))
    curve.log(steps, policy)
    return policy
