"""Independent learners: one PPO policy per household, each trained on its own experience.

All households act in the same simulated community (B scenarios at once on the batched core),
but household ``i``'s policy only ever sees household ``i``'s observations, actions and rewards,
with its own observation and reward normalisation: nothing is shared. The loop is SB3's PPO
split open (collect with every policy, then ``model.train()`` for each), so that a federated
round can be inserted every K updates: pass ``after_update(update, models, obs_rms, ret_rms)``
(the models and their observation and return normalisers, which the hook may change in place).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.logger import configure
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import VecEnv
from tqdm import tqdm

from energy_env.community import Community
from energy_env.vector import WattshareVecEnv
from policies.learned import CLIP_OBS, LearnedPolicy, ObsNormalizer
from train.checkpoints import save_checkpoint, snapshot_policy
from train.evaluation import CurveLogger, TestWeekEvaluator
from train.settings import PPOSettings

AfterUpdate = Callable[[int, list[PPO], list[RunningMeanStd], list[RunningMeanStd]], None]


class _SpacesOnly(VecEnv):
    """Gives a PPO model its spaces and env count; the loop below does the stepping."""

    def __init__(self, num_envs: int, observation_space: spaces.Space, action_space: spaces.Space) -> None:
        super().__init__(num_envs, observation_space, action_space)

    def reset(self):
        raise RuntimeError("stepped by train.independent, not by SB3")

    step_async = step_wait = reset

    def close(self) -> None:
        return None

    def get_attr(self, attr_name, indices=None):
        return [None] * self.num_envs

    def set_attr(self, attr_name, value, indices=None) -> None:
        return None

    def env_method(self, method_name, *args, indices=None, **kwargs):
        return [None] * self.num_envs

    def env_is_wrapped(self, wrapper_class, indices=None):
        return [False] * self.num_envs


def _normalize(obs: np.ndarray, rms: RunningMeanStd) -> np.ndarray:
    return np.clip((obs - rms.mean) / np.sqrt(rms.var + 1e-8), -CLIP_OBS, CLIP_OBS).astype(np.float32)


def make_models(venv: WattshareVecEnv, settings: PPOSettings, count: int) -> list[PPO]:
    """``count`` PPO models, each with a rollout buffer over the ``B`` scenarios.

    Each model's minibatch is ``settings.batch_size / count``: a household's rollout is
    ``1 / count`` of the shared policy's, so it then takes as many gradient steps per update as
    the shared policy does (with the full batch size it took ``count`` times fewer, and learned
    far less from the same experience: 34.3 % vs 41.0 % saved on the 14 CityLearn homes).
    """
    dummy = _SpacesOnly(venv.num_scenarios, venv.observation_space, venv.action_space)
    rollout = settings.n_steps * venv.num_scenarios
    batch = max(32, min(settings.batch_size // max(count, 1), rollout))
    models = []
    for i in range(count):
        model = PPO(
            "MlpPolicy", dummy, n_steps=settings.n_steps, batch_size=batch,
            n_epochs=settings.n_epochs, learning_rate=settings.learning_rate, gamma=settings.gamma,
            gae_lambda=settings.gae_lambda, ent_coef=settings.ent_coef, clip_range=settings.clip_range,
            device="cpu", seed=settings.seed + i, policy_kwargs={"net_arch": settings.net_arch, "log_std_init": settings.log_std_init},
        )
        model.set_logger(configure(None, []))
        models.append(model)
    return models


def train_independent(
    community: Community,
    settings: PPOSettings,
    out: Path,
    evaluate: bool = True,
    after_update: AfterUpdate | None = None,
    label: str = "independent",
) -> LearnedPolicy:
    """Train one PPO policy per household; checkpoint into ``out``; return the final policies.

    ``label`` names the result (``ppo_<label>``), e.g. ``federated`` when ``after_update`` averages;
    ``independent`` and ``federated`` are also the checkpoint's mode.
    """
    if settings.residual_base is not None:  # the loop below steps the raw env: a residual base would never be applied
        raise ValueError("residual learning (residual_base) needs the shared mode; independent learners set the setpoint itself")
    mode = label if label in ("independent", "federated") else "independent"
    torch.set_num_threads(settings.torch_threads)
    set_random_seed(settings.seed)
    venv = WattshareVecEnv(settings.scenarios, community=community, split=settings.episode_split)
    venv.seed(settings.seed)
    b, n = venv.num_scenarios, venv.num_households
    models = make_models(venv, settings, n)
    obs_rms = [RunningMeanStd(shape=venv.observation_space.shape) for _ in range(n)]
    ret_rms = [RunningMeanStd(shape=()) for _ in range(n)]
    returns = np.zeros((b, n))
    per_update = settings.n_steps * b * n
    updates = max(1, settings.total_timesteps // per_update)
    evaluator = TestWeekEvaluator(community) if evaluate else None
    curve = CurveLogger(out / "curve.csv", evaluator)
    next_eval = settings.eval_every

    def normalizers() -> list[ObsNormalizer]:
        return [ObsNormalizer(r.mean.copy(), r.var.copy()) for r in obs_rms]

    width = int(np.prod(venv.action_space.shape))
    obs = venv.reset().reshape(b, n, -1)
    episode_starts = np.ones(b, dtype=bool)
    t0 = time.perf_counter()
    for update in tqdm(range(updates), desc=f"{label} PPO", unit="update"):
        for m in models:
            m.rollout_buffer.reset()
            m.policy.set_training_mode(False)
        for _ in range(settings.n_steps):
            actions = np.empty((b, n, width), dtype=np.float32)  # width 2 in the double auction (setpoint, price)
            steps = []
            with torch.no_grad():
                for i, m in enumerate(models):  # one small network per household
                    obs_rms[i].update(obs[:, i])
                    o = _normalize(obs[:, i], obs_rms[i])
                    a, v, logp = m.policy(torch.as_tensor(o))
                    a = a.numpy()
                    actions[:, i] = np.clip(a.reshape(b, width), -1.0, 1.0)
                    steps.append((o, a, v, logp))
            new_obs, rewards, dones, _ = venv.step(actions.reshape(-1))
            rewards = rewards.reshape(b, n)
            done_b = dones.reshape(b, n)[:, 0]
            returns = returns * settings.gamma + rewards
            for i, (o, a, v, logp) in enumerate(steps):
                ret_rms[i].update(returns[:, i])
                r = np.clip(rewards[:, i] / np.sqrt(ret_rms[i].var + 1e-8), -10.0, 10.0)
                models[i].rollout_buffer.add(o, a, r, episode_starts, v, logp)
            returns[done_b] = 0.0
            obs, episode_starts = new_obs.reshape(b, n, -1), done_b
        progress = 1.0 - (update + 1) / updates
        for i, m in enumerate(models):
            with torch.no_grad():
                last_values = m.policy.predict_values(torch.as_tensor(_normalize(obs[:, i], obs_rms[i])))
            m.rollout_buffer.compute_returns_and_advantage(last_values=last_values, dones=episode_starts)
            m._current_progress_remaining = progress
            m.train()
        if after_update is not None:
            after_update(update, models, obs_rms, ret_rms)
        steps_done = (update + 1) * per_update
        if steps_done >= next_eval:
            next_eval += settings.eval_every
            curve.log(steps_done, _named(snapshot_policy(models, normalizers(), mode), label))
    seconds = time.perf_counter() - t0
    total = updates * per_update
    policy = _named(snapshot_policy(models, normalizers(), mode), label)
    running = {"count": [r.count for r in obs_rms], "return_mean": [r.mean for r in ret_rms],
               "return_var": [r.var for r in ret_rms], "return_count": [r.count for r in ret_rms]}
    save_checkpoint(out, policy, community, settings, total, {k: np.asarray(v, dtype=np.float64) for k, v in running.items()})
    (out / "timing.json").write_text(f'{{"train_seconds": {seconds:.1f}, "household_steps": {total}, "household_steps_per_second": {total / max(seconds, 1e-9):.0f}}}')
    curve.log(total, policy)
    return policy


def _named(policy: LearnedPolicy, label: str) -> LearnedPolicy:
    policy.name = f"ppo_{label}"
    return policy
