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

import argparse
import csv
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import VecEnvWrapper, VecNormalize

from energy_env.community import Community, build_community
from energy_env.config import EnvConfig, load_config
from energy_env.episodes import WEEK, test_week_starts
from policies import checkpoint
from policies.checkpoint import CheckpointError
from policies.learned import LearnedPolicy, ObsNormalizer


DEFAULT_ROOT = Path("data/checkpoints/policies")


@dataclass
class PPOSettings:
    """Hyper-parameters with defaults that train well on this env (see docs/training.md)."""

    total_timesteps: int = 2_000_000  # household-steps
    scenarios: int = 32  # B: parallel scenarios, each of N households
    n_steps: int = 48  # steps per scenario per rollout: one day (episodes may be longer)
    batch_size: int = 2048
    n_epochs: int = 5
    learning_rate: float = 3e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    ent_coef: float = 0.0
    clip_range: float = 0.2
    log_std_init: float = -1.0  # std 0.37 of a [-1, 1] setpoint: exploration without chaos
    net_arch: list[int] = field(default_factory=lambda: [64, 64])
    seed: int = 0
    eval_every: int = 250_000  # household-steps between evaluations on the test weeks
    torch_threads: int = 1  # tiny MLPs: more threads only contend (6x slower seen on 2 busy cores)
    # Residual learning: the policy's output corrects a base controller's setpoint,
    # clip(base + scale * output); None learns the setpoint itself.
    residual_base: str | None = None
    residual_scale: float = 0.5


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
        total = np.clip(base + self.scale * np.asarray(actions).reshape(base.shape), -1.0, 1.0)
        self.venv.step_async(total.reshape(-1))

    def step_wait(self):
        return self.venv.step_wait()


def make_vec_env(community: Community, scenarios: int, seed: int, backend: str = "core", residual_base: str | None = None, residual_scale: float = 0.5):
    """A SB3 VecEnv of ``scenarios x N`` households on train days, normalised."""
    if backend == "core":
        from energy_env.vector import WattshareVecEnv

        venv = WattshareVecEnv(scenarios, community=community, split="train")
        if residual_base is not None:
            from policies.registry import make_policy

            venv = ResidualVecEnv(venv, make_policy(residual_base), residual_scale)
    elif backend == "supersuit":
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


# ---------------------------------------------------------------------------------------------
# 4. Evaluation on the test weeks


class TestWeekEvaluator:
    __test__ = False  # a helper, not a pytest test class
    """Scores a policy on the test weeks against the PG&E baseline and the oracle."""

    def __init__(self, community: Community, max_weeks: int | None = None) -> None:
        self.community = build_community(community.config.model_copy(update={"episode_length": WEEK}), dataset=community.dataset)
        starts = test_week_starts(self.community.dataset)
        self.starts = starts[:max_weeks] if max_weeks else starts
        self.length = WEEK
        self.baseline_usd: float | None = None
        self.oracle_usd: float | None = None

    def cost_usd(self, policy: Any) -> float:
        """Community cost of ``policy`` over the test weeks (terminal settlement included)."""
        from energy_env.rollout import rollout

        if hasattr(policy, "plan"):
            policy.plan(self.community, self.starts, self.length)
        traj = rollout(self.community, policy.act, self.starts, self.length)
        if self.baseline_usd is None:
            self.baseline_usd = float(traj["baseline_cost_usd"].sum())
        return float(traj["cost_usd"].sum())

    def oracle_share(self, cost_usd: float) -> float | None:
        """(baseline - cost) / (baseline - oracle); the oracle is solved once and cached on disk."""
        if self.oracle_usd is None:
            self.oracle_usd = self._oracle_cost_usd()
        gap = self.baseline_usd - self.oracle_usd
        return (self.baseline_usd - cost_usd) / gap if gap > 1e-9 else None


    def _oracle_cost_usd(self) -> float:
        # Week-long MILPs with many NEM 3 evenings take minutes; the answer depends only on the
        # data, physics and episodes, so it is kept under data/cache keyed by all three.
        import hashlib

        from policies.optimum import OraclePolicy

        cfg = self.community.config.model_dump(mode="json")
        cfg.pop("reward", None)
        ds = self.community.dataset
        fingerprint = [ds.name, float(ds.load_kwh.sum()), float(ds.pv_kwh.sum())]  # changes with the data
        key = hashlib.sha256(json.dumps([cfg, fingerprint, self.starts.tolist(), self.length], sort_keys=True).encode()).hexdigest()[:16]
        path = Path("data/cache") / f"oracle_{key}.json"
        if path.exists():
            cached = json.loads(path.read_text())
            self.baseline_usd = cached["baseline_usd"]
            return cached["oracle_usd"]
        cost = self.cost_usd(OraclePolicy())
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"oracle_usd": cost, "baseline_usd": self.baseline_usd}))
        return cost


def snapshot_policy(models: list[PPO], normalizers: list[ObsNormalizer], mode: str, settings: PPOSettings | None = None) -> LearnedPolicy:
    """The current policies as a deterministic :class:`LearnedPolicy`."""
    residual = settings.residual_base if settings else None
    name = f"ppo_{mode}" + (f"_residual_{residual}" if residual else "")
    return LearnedPolicy(models, normalizers, mode, name=name, residual_base=residual, residual_scale=settings.residual_scale if settings else 0.5)


class CurveLogger:
    """Appends evaluation points to ``curve.csv``: steps, seconds, cost, savings %, oracle share."""

    def __init__(self, path: Path, evaluator: TestWeekEvaluator | None, append: bool = False) -> None:
        self.path = path
        self.evaluator = evaluator
        self.t0 = time.perf_counter()
        self.last_steps: int | None = None
        if not (append and path.exists()):  # a resumed run continues its curve
            with path.open("w", newline="") as f:
                csv.writer(f).writerow(["household_steps", "wall_seconds", "test_cost_usd", "savings_percent", "oracle_share"])

    def log(self, steps: int, policy: LearnedPolicy) -> dict[str, float | None]:
        """Score ``policy`` and append its row; a second call at the same step count writes nothing."""
        if self.evaluator is None or steps == self.last_steps:
            return {}
        self.last_steps = steps
        cost = self.evaluator.cost_usd(policy)
        base = self.evaluator.baseline_usd
        share = self.evaluator.oracle_share(cost)
        row = [steps, round(time.perf_counter() - self.t0, 1), round(cost, 2), round(100 * (base - cost) / base, 2), None if share is None else round(share, 4)]
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow(row)
        return dict(zip(["household_steps", "wall_seconds", "test_cost_usd", "savings_percent", "oracle_share"], row))


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


# ---------------------------------------------------------------------------------------------
# 3. + 5. Training and checkpoints


def save_checkpoint(
    out: Path, policy: LearnedPolicy, community: Community, settings: PPOSettings, steps: int,
    running: dict[str, np.ndarray] | None = None,
) -> None:
    """Write ``policy`` (its networks, their optimizers, normalisers, ``meta.json``) into ``out``.

    The checkpoint carries ``policy``'s name, mode and residual base, so it loads as the policy
    that was trained. ``running``: statistics for resuming, one row per network (``count`` of
    the observation normaliser, ``return_mean``/``return_var``/``return_count``).
    """
    nets = [m.policy for m in policy.models]
    meta = checkpoint.make_meta(
        name=policy.name, mode=policy.mode, community=community, network=checkpoint.network_spec(nets[0]),
        residual_base=policy.residual_base, residual_scale=policy.residual_scale, household_steps=steps,
        extra={"dataset": community.dataset.name, "settings": asdict(settings), "config": community.config.model_dump(mode="json")},
    )
    arrays = {"mean": np.stack([n.mean for n in policy.normalizers]), "var": np.stack([n.var for n in policy.normalizers]), **(running or {})}
    checkpoint.write_checkpoint(out, meta, nets, arrays)


def new_model(venv, settings: PPOSettings) -> PPO:
    """A fresh shared-mode PPO model on ``venv`` with ``settings``."""
    return PPO(
        "MlpPolicy", venv, n_steps=settings.n_steps, batch_size=settings.batch_size, n_epochs=settings.n_epochs,
        learning_rate=settings.learning_rate, gamma=settings.gamma, gae_lambda=settings.gae_lambda,
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


def train_shared(community: Community, settings: PPOSettings, out: Path, backend: str = "core", evaluate: bool = True, resume: bool = False) -> LearnedPolicy:
    """One PPO policy for every household (parameter sharing); ``resume`` continues the checkpoint in ``out``."""
    torch.set_num_threads(settings.torch_threads)
    set_random_seed(settings.seed)
    venv = make_vec_env(community, settings.scenarios, settings.seed, backend, settings.residual_base, settings.residual_scale)
    if resume and (out / "meta.json").exists():
        model, done = resume_model(out, venv, settings, community)
    else:
        model, done = new_model(venv, settings), 0
    evaluator = TestWeekEvaluator(community) if evaluate else None
    curve = CurveLogger(out / "curve.csv", evaluator, append=resume)
    from stable_baselines3.common.logger import configure

    model.set_logger(configure(str(out / "logs"), ["csv"]))
    remaining = max(settings.total_timesteps - done, 0)
    callbacks = [_EvalCallback(settings.eval_every, curve, venv, settings), _ProgressCallback(remaining)]
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


def default_output(community: Community, mode: str, residual_base: str | None = None, root: str | Path = DEFAULT_ROOT) -> Path:
    """Where a variant's checkpoint goes by default: one folder per data set and variant, so runs
    of other modes, residual bases or data sets never overwrite each other."""
    from forecasting.checkpoint import dataset_slug

    variant = f"ppo_{mode}" + (f"_residual_{residual_base}" if residual_base else "")
    return Path(root) / dataset_slug(community.dataset) / variant


def main(argv: list[str] | None = None) -> int:
    """``wattshare train-policies``: train, checkpoint, evaluate on the test weeks."""
    parser = argparse.ArgumentParser(prog="wattshare train-policies", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None)
    parser.add_argument("--mode", choices=["shared", "independent", "federated"], default="shared",
                        help="shared: one policy for all homes; independent: one per home; federated: one per home, FedAvg every --fed-every updates")
    parser.add_argument("--fed-every", type=int, default=4, help="federated: PPO updates between FedAvg rounds (K)")
    parser.add_argument("--fed-personal", choices=["none", "head"], default="head", help="federated: layers kept at home (head: output layers)")
    parser.add_argument("--fed-server-lr", type=float, default=2.0,
                        help="federated: step of the averaged update (1: plain FedAvg; 2 measured best, see README; 1 under --dp-noise or a robust --fed-aggregation)")
    parser.add_argument("--fed-aggregation", choices=["fedavg", "fedmedian", "fedtrimmedavg", "krum", "multikrum", "bulyan"], default="fedavg",
                        help="federated: how the server combines the homes' policies (robust ones ignore step counts; docs/federated.md)")
    parser.add_argument("--fed-trim-fraction", type=float, default=0.2, help="federated, fedtrimmedavg: share of homes cut from each tail")
    parser.add_argument("--fed-normalizers", choices=["local", "shared"], default="local",
                        help="federated: keep each home's observation/return normalisers, or average them too")
    parser.add_argument("--dp-noise", type=float, default=0.0, help="federated: DP noise multiplier (0: no DP)")
    parser.add_argument("--dp-clip", type=float, default=1.0, help="federated: DP clipping norm of one update")
    parser.add_argument("--vec", choices=["core", "supersuit"], default="core", help="training VecEnv (shared mode)")
    parser.add_argument("--steps", type=int, default=PPOSettings.total_timesteps, help="household-steps")
    parser.add_argument("--scenarios", type=int, default=PPOSettings.scenarios)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=PPOSettings.eval_every)
    parser.add_argument("--no-eval", action="store_true", help="skip the test-week evaluations during training")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --output")
    parser.add_argument("--episode-length", type=int, default=336, help="training episode, intervals (336: a week, like the evaluation)")
    parser.add_argument("--residual", default=None, help="learn a correction to this controller's setpoint (e.g. rule_based)")
    parser.add_argument("--reward", choices=["savings", "cost"], default="savings", help="reward.kind while training (savings: baseline $ - $ paid)")
    parser.add_argument("--output", default=None,
                        help="checkpoint folder (default: data/checkpoints/policies/<data set>/<variant>, e.g. .../ppo_shared_residual_rule_based)")
    args = parser.parse_args(argv)
    # Savings against the home's own baseline remove the load-driven variance of the cost, so the
    # reward reflects only what the battery did; the evaluation still scores the cost.
    cfg: EnvConfig = load_config(args.config, reward={"kind": args.reward}, episode_length=args.episode_length)
    community = build_community(cfg)
    settings = PPOSettings(total_timesteps=args.steps, scenarios=args.scenarios, seed=args.seed, eval_every=args.eval_every, residual_base=args.residual)
    out = Path(args.output) if args.output else default_output(community, args.mode, args.residual)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if args.mode == "shared":
        train_shared(community, settings, out, args.vec, evaluate=not args.no_eval, resume=args.resume)
    elif args.mode == "independent":
        from train.independent import train_independent

        train_independent(community, settings, out, evaluate=not args.no_eval)
    else:
        from federated.policies import PolicyFederation
        from federated.strategy import FedSettings
        from train.independent import train_independent

        fed = FedSettings(dp_noise_multiplier=args.dp_noise, dp_clipping_norm=args.dp_clip, seed=args.seed,
                          server_learning_rate=1.0 if args.dp_noise or args.fed_aggregation != "fedavg" else args.fed_server_lr,
                          aggregation=args.fed_aggregation, trim_fraction=args.fed_trim_fraction)
        hook = PolicyFederation(args.fed_every, args.fed_personal, fed, steps_per_update=settings.n_steps * settings.scenarios,
                                share_normalizers=args.fed_normalizers == "shared")
        train_independent(community, settings, out, evaluate=not args.no_eval, after_update=hook, label="federated")
        spent = hook.strategy.privacy_spent() if hook.strategy else None
        print(f"{hook.round} FedAvg rounds; {len(hook.strategy.left_out) if hook.strategy else 0} replies left out"
              + (f"; DP epsilon {spent.epsilon:.2f} at delta {spent.delta:g}" if spent else ""))
    print(f"trained {args.mode} PPO for {args.steps:,} household-steps in {time.perf_counter() - t0:.0f} s -> {out}")
    print((out / "curve.csv").read_text())
    return 0
