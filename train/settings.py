"""The ``training`` section of a run configuration: how ``wattshare train-policies`` (and the main
job's policy stage) train PPO.

Defaults train well on this env (docs/training.md). ``mode`` picks the loop: ``shared`` (one
policy for every home, :mod:`train.ppo`), ``independent`` (one per home,
:mod:`train.independent`), ``federated`` (one per home, FedAvg every ``fed_every`` updates:
:mod:`federated.policies`, with the ``federated`` section's server settings).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from energy_env.config import Int, StrictModel
from energy_env.episodes import WEEK


class PPOSettings(StrictModel):
    """PPO's hyper-parameters and the training run's choices (the ``training`` section)."""

    algorithm: Literal["ppo", "apg"] = Field(
        "ppo", description="ppo: Stable-Baselines3 PPO; apg: analytic policy gradients through the differentiable twin (train/apg.py; shared mode)."
    )
    mode: Literal["shared", "independent", "federated"] = Field("shared", description="One policy for all homes, one per home, or one per home federated.")
    total_timesteps: Int = Field(3_000_000, ge=1, description="Household-steps.")
    scenarios: Int = Field(32, ge=1, description="B: parallel scenarios, each of N households.")
    n_steps: Int = Field(48, ge=1, description="Steps per scenario per rollout: one day (episodes may be longer).")
    batch_size: Int = Field(2048, ge=2)
    n_epochs: Int = Field(5, ge=1)
    learning_rate: float = Field(3e-4, gt=0.0)
    learning_rate_schedule: Literal["constant", "linear"] = Field(
        "linear", description="linear: from learning_rate down to 0 over the run (steadier final weights, docs/training.md; shared mode, the per-home loops keep the rate; a resumed run restarts the decay)."
    )
    gamma: float = Field(0.99, gt=0.0, le=1.0)
    gae_lambda: float = Field(0.95, ge=0.0, le=1.0)
    ent_coef: float = Field(0.0, ge=0.0)
    clip_range: float = Field(0.2, gt=0.0)
    log_std_init: float = Field(-1.0, description="std 0.37 of a [-1, 1] setpoint: exploration without chaos.")
    net_arch: list[Int] = Field(default_factory=lambda: [64, 64])
    seed: Int = Field(0, ge=0)
    eval_every: Int = Field(250_000, ge=1, description="Household-steps between evaluations on the test weeks.")
    torch_threads: Int = Field(1, ge=1, description="Tiny MLPs: more threads only contend (docs/training.md, Threads).")
    # Residual learning: the policy's output corrects a base controller's setpoint,
    # clip(base + scale * output); None learns the setpoint itself.
    residual_base: str | None = None
    residual_scale: float = Field(0.5, gt=0.0)
    observation_scale: Literal["absolute", "per_home"] = Field(
        "absolute", description="per_home: energies divided by each home's typical load, so the policy transfers (policies/observation_scale.py); shared mode."
    )
    # Imitation before PPO (train/imitation.py): the network starts as a clone of an expert's
    # train-week actions, then PPO improves it on the env's reward.
    pretrain: Literal["none", "oracle_bc", "mpc_bc"] = Field(
        "none", description="Behaviour-clone the train weeks of the oracle (oracle_bc) or of mpc_day_ahead (mpc_bc) first (shared mode)."
    )
    bc_epochs: Int = Field(20, ge=1, description="oracle_bc / mpc_bc: passes over the demonstrations.")
    bc_learning_rate: float = Field(1e-3, gt=0.0)
    dagger_iterations: Int = Field(
        0, ge=0, description="mpc_bc: DAgger rounds after cloning (the clone acts, the MPC labels the states it reaches)."
    )
    dagger_label_every: Int = Field(4, ge=1, description="DAgger: label every K-th interval of the clone's weeks.")
    critic_warmup_updates: Int = Field(
        0, ge=0, description="First PPO updates that train only the value function (the actor frozen; useful after a pretrain)."
    )
    bc_weeks: Int | None = Field(None, ge=1, description="oracle_bc / mpc_bc: only the first K train weeks (None: all).")
    episode_length: Int = Field(WEEK, ge=1, description="Training episode, intervals (336: a week, like the evaluation).")
    # "train" draws any train day, so a week starting on one of a month's last train days runs on
    # into its test days (a quarter of the week-long draws); every PPO figure measured before
    # this key used it. "train_whole" draws only weeks of train days, as APG always does.
    episode_split: Literal["train", "train_whole"] = Field(
        "train", description="PPO's training episodes: from any train day (train), or only wholly within train days (train_whole)."
    )
    # Savings against the home's own baseline remove the load-driven variance of the cost, so the
    # reward reflects only what the battery did; the evaluation still scores the cost.
    reward: Literal["savings", "cost"] = "savings"
    vec: Literal["core", "supersuit"] = Field("core", description="Shared mode's VecEnv: the batched core or SuperSuit.")
    fed_every: Int = Field(4, ge=1, description="Federated: PPO updates between FedAvg rounds (K).")
    fed_personal: Literal["none", "head"] = Field("head", description="Federated: layers kept at home (head: output layers).")
    fed_normalizers: Literal["local", "shared"] = Field("local", description="Federated: keep each home's normalisers, or average them too.")
    fed_server_learning_rate: float = Field(
        2.0, gt=0.0, description="Federated: step of the averaged update (1: plain FedAvg; docs/federated.md; 1 under DP or a robust aggregation)."
    )

    # Analytic policy gradients (algorithm: apg): whole train weeks rolled out and differentiated.
    apg_iterations: Int = Field(400, ge=1, description="apg: gradient steps, each over apg_batch_weeks weeks of every home.")
    apg_batch_weeks: Int = Field(16, ge=1, description="apg: train weeks (windows wholly in train days) per gradient step.")
    apg_max_batch_households: Int = Field(
        320, ge=1, description="apg: at most this many households (weeks x homes) per gradient step: large communities take fewer weeks, at least one."
    )
    apg_learning_rate: float = Field(1e-2, gt=0.0, description="apg: Adam's rate, decayed linearly to 0 over the iterations (docs/training.md: 1e-3 ends lower).")
    apg_max_grad_norm: float = Field(1.0, gt=0.0, description="apg: the gradient's L2 norm is clipped to this.")
    apg_eval_every: Int = Field(50, ge=1, description="apg: iterations between test-week evaluations.")

    @model_validator(mode="after")
    def _consistent(self) -> "PPOSettings":
        if self.algorithm == "apg" and (self.mode != "shared" or self.residual_base is not None or self.pretrain != "none"):
            raise ValueError(f"algorithm 'apg' trains one shared policy from scratch: it needs mode 'shared', no residual_base and "
                             f"pretrain 'none' (got mode {self.mode!r}, residual_base {self.residual_base!r}, pretrain {self.pretrain!r})")
        if self.residual_base is not None and self.mode != "shared":
            raise ValueError(f"residual_base needs mode 'shared' (the per-home loops step the raw env), got mode {self.mode!r}")
        if self.observation_scale != "absolute" and (self.mode != "shared" or self.vec != "core"):
            raise ValueError("observation_scale per_home needs mode 'shared' and vec 'core' (per-home policies need no transfer)")
        if self.dagger_iterations > 0 and self.pretrain != "mpc_bc":
            raise ValueError(f"dagger_iterations needs pretrain 'mpc_bc' (an expert that acts from any state), got {self.pretrain!r}")
        if self.pretrain != "none" and self.mode != "shared":
            raise ValueError(f"pretrain {self.pretrain!r} needs mode 'shared', got mode {self.mode!r}")
        if self.episode_split != "train" and self.vec != "core":
            raise ValueError(f"episode_split {self.episode_split!r} needs vec 'core' (SuperSuit's conversion resets the env on train days)")
        if self.residual_base is not None and self.vec != "core":
            raise ValueError("residual_base needs vec 'core'")
        return self
