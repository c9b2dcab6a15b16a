"""Train battery policies with PPO (Stable-Baselines3) on the wattshare community.

Read it top to bottom:

1. Build the community on the configured data; training draws episodes from train days only.
2. Wrap it for SB3: every household of ``B`` scenarios is one sub-env of a ``VecEnv`` on the
   batched core (``--vec core``, default) or of SuperSuit's conversion of the PettingZoo env
   (``--vec supersuit``); ``VecNormalize`` scales observations and rewards.
3. ``shared`` mode: one PPO policy for every household (parameter sharing), trained with
   ``model.learn``. ``independent`` mode: one PPO policy per household, each trained on its own
   household's experience (see :mod:`train.independent`).
4. Every ``eval_every`` steps the policy is evaluated on the test weeks, which training never
   sees, and the share of the oracle's savings it captures is logged (the learning curve, CSV).
5. The checkpoint (network weights and optimizer state as tensors, normalisation, metadata;
   :mod:`policies.checkpoint`) is written, then a final evaluation table.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import VecEnvWrapper, VecNormalize

from energy_env.community import Community
from policies import checkpoint
from policies.checkpoint import CheckpointError
from policies.learned import LearnedPolicy, ObsNormalizer
from policies.observation_scale import ObservationScaler
from train.checkpoints import save_checkpoint, snapshot_policy
from train.evaluation import CurveLogger, TestWeekEvaluator
from train.settings import PPOSettings


# ---------------------------------------------------------------------------------------------
# 1-2. The training env


class ResidualVecEnv(VecEnvWrapper):
    """The agent's action corrects a base controller: setpoint = clip(base + scale * action)."""

    def __init__(self, venv, base: Any, scale: float) -> None:
        super().__init__(venv)
        self.base, self.scale = base, scale

    def reset(self):
        return self.venv.reset()

    def step_async(self, actions: np.ndarray) -> None:
        engine = self.venv.engine
        base = self.base.act(engine.obs, engine.state, engine.community)
        actions = np.asarray(actions).reshape(*base.shape, -1)
        total = actions.astype(np.float64)  # the double auction's price action passes as it is
        total[..., 0] = np.clip(base + self.scale * actions[..., 0], -1.0, 1.0)
        self.venv.step_async(total.reshape(-1))

    def step_wait(self):
        return self.venv.step_wait()


class ScaledObsVecEnv(VecEnvWrapper):
    """Observations as a per-home-scaled policy sees them (:mod:`policies.observation_scale`)."""

    def __init__(self, venv, community: Community) -> None:
        super().__init__(venv)
        self.community = community
        self.scaler = ObservationScaler("per_home")

    def _scaled(self, obs: np.ndarray) -> np.ndarray:
        n = self.community.num_households
        return self.scaler(obs.reshape(-1, n, obs.shape[-1]), self.community).reshape(obs.shape)

    def reset(self):
        return self._scaled(self.venv.reset())

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        for i in np.flatnonzero(dones).tolist():  # households of one scenario end together
            start = i - i % self.community.num_households
            terminal = np.stack([infos[j]["terminal_observation"] for j in range(start, start + self.community.num_households)])
            infos[i]["terminal_observation"] = self._scaled(terminal)[i - start]
        return self._scaled(obs), rewards, dones, infos


def make_vec_env(
    community: Community, scenarios: int, seed: int, backend: str = "core", residual_base: str | None = None,
    residual_scale: float = 0.5, observation_scale: str = "absolute", split: str = "train",
):
    """A SB3 VecEnv of ``scenarios x N`` households on train days (``split``: ``"train"`` or ``"train_whole"``), (per-home scaled,) normalised."""
    if backend == "core":
        from energy_env.vector import WattshareVecEnv

        venv = WattshareVecEnv(scenarios, community=community, split=split)
        if residual_base is not None:
            from policies.registry import make_policy

            venv = ResidualVecEnv(venv, make_policy(residual_base), residual_scale)
        if observation_scale != "absolute":
            venv = ScaledObsVecEnv(venv, community)
    elif backend == "supersuit":
        if split != "train":
            raise ValueError(f"split {split!r} needs the 'core' VecEnv (SuperSuit's conversion resets the env on train days)")
        import supersuit as ss

        from energy_env.env import WattshareParallelEnv

        venv = ss.pettingzoo_env_to_vec_env_v1(WattshareParallelEnv(community=community))
        venv = ss.concat_vec_envs_v1(venv, scenarios, num_cpus=0, base_class="stable_baselines3")
        if residual_base is not None:
            raise ValueError("residual learning needs the 'core' VecEnv")
    else:
        raise ValueError(f"unknown vec backend {backend!r}; expected 'core' or 'supersuit'")
    if backend == "core":
        venv.seed(seed)
    else:  # SuperSuit's ConcatVecEnv has no seed(): seed its first reset (later resets keep the draws)
        venv.venv.reset(seed=seed)
    return VecNormalize(venv, norm_obs=True, norm_reward=True, gamma=0.99)


class _ProgressCallback(BaseCallback):
    """A tqdm bar over household-steps (SB3's own bar needs ``rich``)."""

    def __init__(self, total: int) -> None:
        super().__init__()
        self.total, self.bar, self.last = total, None, 0

    def _on_training_start(self) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=self.total, unit="step", unit_scale=True, desc="PPO")
        self.last = self.num_timesteps

    def _on_step(self) -> bool:
        self.bar.update(self.num_timesteps - self.last)
        self.last = self.num_timesteps
        return True

    def _on_training_end(self) -> None:
        self.bar.close()


class _EvalCallback(BaseCallback):
    def __init__(self, every: int, curve: CurveLogger, venv: VecNormalize, settings: PPOSettings) -> None:
        super().__init__()
        self.every, self.curve, self.venv, self.next_at, self.settings = every, curve, venv, every, settings

    def _on_rollout_start(self) -> None:
        # Between an update and the next rollout: the policy scored is the one trained on
        # num_timesteps steps (mid-rollout it would be scored before its update, and the last
        # point would repeat the final evaluation with other weights).
        if self.num_timesteps >= self.next_at:
            self.next_at += self.every
            norm = ObsNormalizer(self.venv.obs_rms.mean.copy(), self.venv.obs_rms.var.copy())
            point = self.curve.log(self.num_timesteps, snapshot_policy([self.model], [norm], "shared", self.settings))
            if point:
                print(f"  {self.num_timesteps:>10,} steps: test savings {point['savings_percent']}%, oracle share {point['oracle_share']}")

    def _on_step(self) -> bool:
        return True


class _CriticWarmup(BaseCallback):
    """Train only the value function in the first ``updates`` PPO updates (the actor is frozen).

    After cloning, a fresh critic's advantages are noise, and the first updates move the clone
    far from where it started; a critic fitted to the clone's returns first gives them meaning.
    """

    def __init__(self, updates: int) -> None:
        super().__init__()
        self.updates, self.rollouts = updates, 0

    def _actor(self) -> list[torch.nn.Parameter]:
        policy = self.model.policy
        params = [*policy.mlp_extractor.policy_net.parameters(), *policy.action_net.parameters(), policy.log_std]
        return params + ([] if policy.share_features_extractor else list(policy.pi_features_extractor.parameters()))

    def _on_rollout_end(self) -> None:  # the update that follows is number self.rollouts
        self.rollouts += 1
        for p in self._actor():
            p.requires_grad_(self.rollouts > self.updates)

    def _on_step(self) -> bool:
        return True


# ---------------------------------------------------------------------------------------------
# 3. + 5. Training and checkpoints


def learning_rate(settings: PPOSettings) -> float | Callable[[float], float]:
    """PPO's learning rate: the constant, or SB3's schedule of the remaining progress (1 -> 0)."""
    if settings.learning_rate_schedule == "linear":
        return lambda progress_remaining: settings.learning_rate * progress_remaining
    return settings.learning_rate


def new_model(venv, settings: PPOSettings) -> PPO:
    """A fresh shared-mode PPO model on ``venv`` with ``settings``."""
    return PPO(
        "MlpPolicy", venv, n_steps=settings.n_steps, batch_size=settings.batch_size, n_epochs=settings.n_epochs,
        learning_rate=learning_rate(settings), gamma=settings.gamma, gae_lambda=settings.gae_lambda,
        ent_coef=settings.ent_coef, clip_range=settings.clip_range, verbose=0, device="cpu",
        policy_kwargs={"net_arch": settings.net_arch, "log_std_init": settings.log_std_init},
        tensorboard_log=None,
    )


def resume_model(out: Path, venv: VecNormalize, settings: PPOSettings, community: Community) -> tuple[PPO, int]:
    """The shared PPO model of the checkpoint in ``out``, rebuilt with ``settings``, and its household-steps.

    Restores the network, Adam's state, the step count and ``venv``'s observation and return
    normalisers; every file is read without running code. Raises :class:`CheckpointError` if the
    checkpoint is of another mode, env, architecture or residual base than ``settings`` say.
    """
    meta_path = out / "meta.json"
    raw = checkpoint.read_meta(out)
    if checkpoint.is_legacy(raw):
        raise CheckpointError(f"{out}: a legacy pickled checkpoint (policy.zip); --resume reads only the safe format: retrain")
    meta = checkpoint.validate_meta(raw, meta_path)
    checkpoint.check_env(meta, community, meta_path)
    if meta["mode"] != "shared":
        raise CheckpointError(f"{meta_path}: a {meta['mode']} checkpoint; --resume continues shared runs only")
    if meta["residual_base"] != settings.residual_base:
        raise CheckpointError(f"{meta_path}: trained with residual base {meta['residual_base']!r}, resuming with {settings.residual_base!r}")
    model = new_model(venv, settings)
    if meta["network"] != checkpoint.network_spec(model.policy):
        raise CheckpointError(f"{meta_path}: network {meta['network']} differs from the settings' {checkpoint.network_spec(model.policy)}")
    model.policy.load_state_dict(checkpoint.load_state_dict(out / "policy.pt", model.policy.state_dict()))
    checkpoint.load_optimizer(out / "optimizer.pt", model.policy.optimizer)
    stats = checkpoint.read_normalizers(out / "obs_rms.npz", 1, meta["observation_size"], checkpoint.NORMALIZER_KEYS + checkpoint.RESUME_KEYS)
    venv.obs_rms.mean, venv.obs_rms.var, venv.obs_rms.count = stats["mean"][0], stats["var"][0], float(stats["count"][0])
    venv.ret_rms.mean, venv.ret_rms.var, venv.ret_rms.count = stats["return_mean"][0], stats["return_var"][0], float(stats["return_count"][0])
    model.num_timesteps = meta["household_steps"]
    return model, meta["household_steps"]


PRETRAIN_EXPERTS = {"oracle_bc": "oracle", "mpc_bc": "mpc_day_ahead"}  # pretrain setting -> expert cloned


def clone_expert(model: PPO, venv: VecNormalize, community: Community, settings: PPOSettings, out: Path) -> dict[str, Any]:
    """``pretrain: oracle_bc | mpc_bc``: start ``model`` as a clone of the oracle or the day-ahead MPC on the train weeks.

    The observation normaliser starts from the demonstrations' statistics (so the clone sees
    what it was fitted on); ``bc.json`` in ``out`` records the data, time and losses.
    """
    from train.imitation import behaviour_clone, expert_demonstrations, learner_demonstrations

    t0 = time.perf_counter()
    expert = PRETRAIN_EXPERTS[settings.pretrain]
    demo = expert_demonstrations(community, expert, settings.bc_weeks, settings.residual_base, settings.residual_scale)
    obs, targets = demo.observations, demo.targets
    n = community.num_households
    if settings.observation_scale != "absolute":
        obs = ObservationScaler(settings.observation_scale)(obs.reshape(-1, n, obs.shape[-1]), community).reshape(obs.shape)
    venv.obs_rms.mean, venv.obs_rms.var, venv.obs_rms.count = obs.mean(0).astype(np.float64), obs.var(0).astype(np.float64), float(len(obs))
    norm = ObsNormalizer(venv.obs_rms.mean.copy(), venv.obs_rms.var.copy())
    losses = behaviour_clone(model.policy, norm(obs), targets, settings.bc_epochs, settings.bc_learning_rate, seed=settings.seed)
    dagger = []
    for i in range(settings.dagger_iterations):
        learner = snapshot_policy([model], [norm], "shared", settings)
        visits = learner_demonstrations(community, learner, expert, settings.bc_weeks, settings.residual_base, settings.residual_scale,
                                        settings.dagger_label_every, i % settings.dagger_label_every)
        seen = visits.observations
        if settings.observation_scale != "absolute":
            seen = ObservationScaler(settings.observation_scale)(seen.reshape(-1, n, seen.shape[-1]), community).reshape(seen.shape)
        obs, targets = np.concatenate([obs, seen]), np.concatenate([targets, visits.targets])
        fit = behaviour_clone(model.policy, norm(obs), targets, settings.bc_epochs, settings.bc_learning_rate, seed=settings.seed + 1 + i)
        dagger.append({"household_steps": len(obs), "label_seconds": round(visits.expert_seconds, 1), "mse_last_epoch": round(fit[-1], 5)})
        print(f"DAgger round {i + 1}: {len(seen):,} states labelled ({visits.expert_seconds:.0f} s), {len(obs):,} in all, mse {fit[-1]:.4f}")
    record = {"expert": expert, "weeks": demo.episodes, "dagger": dagger, "household_steps": len(obs), "clipped_share": round(demo.clipped_share, 4),
              "expert_seconds": round(demo.expert_seconds, 1), "seconds": round(time.perf_counter() - t0, 1),
              "mse_per_epoch": [round(v, 5) for v in losses]}
    (out / "bc.json").write_text(json.dumps(record, indent=1))
    print(f"behaviour cloning: {demo.episodes} {expert} weeks, {len(obs):,} household-steps, mse {losses[0]:.4f} -> {losses[-1]:.4f} ({record['seconds']} s)")
    return record


def train_shared(community: Community, settings: PPOSettings, out: Path, backend: str = "core", evaluate: bool = True, resume: bool = False) -> LearnedPolicy:
    """One PPO policy for every household (parameter sharing); ``resume`` continues the checkpoint in ``out``."""
    torch.set_num_threads(settings.torch_threads)
    set_random_seed(settings.seed)
    venv = make_vec_env(community, settings.scenarios, settings.seed, backend, settings.residual_base, settings.residual_scale,
                        settings.observation_scale, settings.episode_split)
    if resume and (out / "meta.json").exists():
        model, done = resume_model(out, venv, settings, community)
    else:
        model, done = new_model(venv, settings), 0
    evaluator = TestWeekEvaluator(community) if evaluate else None
    out.mkdir(parents=True, exist_ok=True)
    curve = CurveLogger(out / "curve.csv", evaluator, append=resume)  # its clock counts the cloning as training time
    if settings.pretrain != "none" and done == 0:
        clone_expert(model, venv, community, settings, out)
        curve.log(0, snapshot_policy([model], [ObsNormalizer(venv.obs_rms.mean.copy(), venv.obs_rms.var.copy())], "shared", settings))
    from stable_baselines3.common.logger import configure

    model.set_logger(configure(str(out / "logs"), ["csv"]))
    remaining = max(settings.total_timesteps - done, 0)
    callbacks = [_EvalCallback(settings.eval_every, curve, venv, settings), _ProgressCallback(remaining)]
    if settings.critic_warmup_updates > 0 and done == 0:
        callbacks.append(_CriticWarmup(settings.critic_warmup_updates))
    t0 = time.perf_counter()
    model.learn(remaining, callback=callbacks, reset_num_timesteps=not resume)
    seconds = time.perf_counter() - t0
    norm = ObsNormalizer(venv.obs_rms.mean.copy(), venv.obs_rms.var.copy())
    policy = snapshot_policy([model], [norm], "shared", settings)
    running = {"count": [venv.obs_rms.count], "return_mean": [venv.ret_rms.mean], "return_var": [venv.ret_rms.var], "return_count": [venv.ret_rms.count]}
    save_checkpoint(out, policy, community, settings, done + remaining, {k: np.asarray(v, dtype=np.float64) for k, v in running.items()})
    (out / "timing.json").write_text(json.dumps({"train_seconds": round(seconds, 1), "household_steps": remaining, "household_steps_per_second": round(remaining / max(seconds, 1e-9))}))
    venv.close()
    curve.log(done + remaining, policy)
    return policy


