"""``wattshare train-policies``: train battery policies (PPO, or analytic policy gradients), checkpoint them, score them on the test weeks.

The run configuration's ``training`` section says how (``mode``: shared, independent or
federated; PPO's hyper-parameters); its flags override single keys of it. Federated runs take
their server settings (DP, aggregation, screens) from the ``federated`` section.

    wattshare train-policies --steps 3000000                      # shared policy, default community
    wattshare train-policies --residual rule_based                # learn a correction to the rule
    wattshare train-policies --mode federated --config my.yaml    # one policy per home, FedAvg every 4 updates
    wattshare train-policies --algorithm apg                      # gradients of the cost through the twin
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from energy_env.community import build_community
from train.checkpoints import default_output
from train.flags import add_config_flags, add_output_flag, announce_data, run_config_from_args
from train.run_config import RunConfig


def build_parser() -> argparse.ArgumentParser:
    """The command's flags: the shared ones, then the ``training`` and ``federated`` keys it sets."""
    parser = argparse.ArgumentParser(prog="wattshare train-policies", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_flags(parser)
    add_output_flag(parser, None, "checkpoint folder; default data/checkpoints/policies/<data set>/<variant>, e.g. .../ppo_shared_residual_rule_based")
    t = parser.add_argument_group("training (override the config's training section)")
    t.add_argument("--algorithm", choices=["ppo", "apg"], default=None,
                   help="training.algorithm: PPO, or analytic policy gradients through the differentiable twin (apg: shared mode)")
    t.add_argument("--iterations", type=int, default=None, help="training.apg_iterations: apg's gradient steps")
    t.add_argument("--batch-weeks", type=int, default=None, help="training.apg_batch_weeks: train weeks per apg gradient step")
    t.add_argument("--mode", choices=["shared", "independent", "federated"], default=None,
                   help="training.mode: one policy for all homes, one per home, or one per home with FedAvg every --fed-every updates")
    t.add_argument("--steps", type=int, default=None, help="training.total_timesteps: household-steps")
    t.add_argument("--scenarios", type=int, default=None, help="training.scenarios")
    t.add_argument("--seed", type=int, default=None, help="training.seed (the data's seed is the config's top-level seed)")
    t.add_argument("--eval-every", type=int, default=None, help="training.eval_every: household-steps between test-week evaluations")
    t.add_argument("--episode-length", type=int, default=None, help="training.episode_length: intervals (336: a week, like the evaluation)")
    t.add_argument("--episode-split", choices=["train", "train_whole"], default=None,
                   help="training.episode_split: PPO's episodes from any train day, or only wholly within train days")
    t.add_argument("--residual", default=None, help="training.residual_base: learn a correction to this controller's setpoint (e.g. rule_based)")
    t.add_argument("--lr-schedule", choices=["constant", "linear"], default=None, help="training.learning_rate_schedule")
    t.add_argument("--observation-scale", choices=["absolute", "per_home"], default=None,
                   help="training.observation_scale: per_home divides energies by each home's typical load, so the policy transfers")
    t.add_argument("--pretrain", choices=["none", "oracle_bc", "mpc_bc"], default=None,
                   help="training.pretrain: clone the oracle's (oracle_bc) or mpc_day_ahead's (mpc_bc) train-week actions before PPO")
    t.add_argument("--bc-epochs", type=int, default=None, help="training.bc_epochs")
    t.add_argument("--critic-warmup", type=int, default=None,
                   help="training.critic_warmup_updates: first PPO updates that fit only the value function")
    t.add_argument("--dagger", type=int, default=None,
                   help="training.dagger_iterations: with --pretrain mpc_bc, rounds of the clone acting and the MPC labelling its states")
    t.add_argument("--reward", choices=["savings", "cost"], default=None, help="training.reward (savings: baseline $ - $ paid)")
    t.add_argument("--vec", choices=["core", "supersuit"], default=None, help="training.vec: the shared mode's VecEnv")
    t.add_argument("--no-eval", action="store_true", help="skip the test-week evaluations during training")
    t.add_argument("--resume", action="store_true", help="continue from the checkpoint in --output (shared mode)")
    f = parser.add_argument_group("federated mode (training.fed_* and the federated section)")
    f.add_argument("--fed-every", type=int, default=None, help="training.fed_every: PPO updates between FedAvg rounds (K)")
    f.add_argument("--fed-personal", choices=["none", "head"], default=None, help="training.fed_personal: layers kept at home")
    f.add_argument("--fed-server-lr", type=float, default=None, help="training.fed_server_learning_rate: step of the averaged update")
    f.add_argument("--fed-normalizers", choices=["local", "shared"], default=None, help="training.fed_normalizers")
    f.add_argument("--fed-aggregation", default=None, help="federated.aggregation (docs/federated.md)")
    f.add_argument("--fed-trim-fraction", type=float, default=None, help="federated.trim_fraction (fedtrimmedavg)")
    f.add_argument("--dp-noise", type=float, default=None, help="federated.dp_noise_multiplier (0: no DP)")
    f.add_argument("--dp-clip", type=float, default=None, help="federated.dp_clipping_norm of one update")
    return parser


def run_config(args: argparse.Namespace) -> RunConfig:
    """The run configuration these flags describe."""
    training = {"algorithm": args.algorithm, "apg_iterations": args.iterations, "apg_batch_weeks": args.batch_weeks, "mode": args.mode, "total_timesteps": args.steps, "scenarios": args.scenarios, "seed": args.seed,
                "eval_every": args.eval_every, "episode_length": args.episode_length, "episode_split": args.episode_split, "residual_base": args.residual,
                "observation_scale": args.observation_scale, "learning_rate_schedule": args.lr_schedule, "reward": args.reward, "pretrain": args.pretrain, "bc_epochs": args.bc_epochs, "dagger_iterations": args.dagger, "critic_warmup_updates": args.critic_warmup, "vec": args.vec, "fed_every": args.fed_every, "fed_personal": args.fed_personal,
                "fed_server_learning_rate": args.fed_server_lr, "fed_normalizers": args.fed_normalizers}
    federated = {"aggregation": args.fed_aggregation, "trim_fraction": args.fed_trim_fraction,
                 "dp_noise_multiplier": args.dp_noise, "dp_clipping_norm": args.dp_clip}
    return run_config_from_args(args, training=training, federated=federated)


def main(argv: list[str] | None = None) -> int:
    """Train, checkpoint, evaluate on the test weeks; prints the learning curve."""
    args = build_parser().parse_args(argv)
    run = run_config(args)
    settings = run.training
    cfg = run.env.model_copy(update={"reward": run.env.reward.model_copy(update={"kind": settings.reward}),
                                     "episode_length": settings.episode_length})
    community = build_community(cfg)
    announce_data(community.dataset)
    out = Path(args.output) if args.output else default_output(community, settings.mode, settings.residual_base, algorithm=settings.algorithm)
    out.mkdir(parents=True, exist_ok=True)
    (out / "run_config.yaml").write_text(run.to_yaml())
    t0 = time.perf_counter()
    if settings.algorithm == "apg":
        from train.apg import train_apg

        if args.resume:
            raise ValueError("--resume continues PPO runs; an apg run trains from scratch")
        train_apg(community, settings, out, evaluate=not args.no_eval)
        print(f"trained a shared policy by analytic policy gradients ({settings.apg_iterations} iterations) in {time.perf_counter() - t0:.0f} s -> {out}")
        print((out / "curve.csv").read_text())
        return 0
    if settings.mode == "shared":
        from train.ppo import train_shared

        train_shared(community, settings, out, settings.vec, evaluate=not args.no_eval, resume=args.resume)
    elif settings.mode == "independent":
        from train.independent import train_independent

        train_independent(community, settings, out, evaluate=not args.no_eval)
    else:
        from federated.policies import PolicyFederation
        from train.independent import train_independent

        fed = run.federated.replace(
            seed=settings.seed,
            server_learning_rate=1.0 if run.federated.private or run.federated.aggregation != "fedavg" else settings.fed_server_learning_rate,
        )
        hook = PolicyFederation(settings.fed_every, settings.fed_personal, fed, steps_per_update=settings.n_steps * settings.scenarios,
                                share_normalizers=settings.fed_normalizers == "shared")
        train_independent(community, settings, out, evaluate=not args.no_eval, after_update=hook, label="federated")
        spent = hook.strategy.privacy_spent() if hook.strategy else None
        print(f"{hook.round} FedAvg rounds; {len(hook.strategy.left_out) if hook.strategy else 0} replies left out"
              + (f"; DP epsilon {spent.epsilon:.2f} at delta {spent.delta:g}" if spent else ""))
    print(f"trained {settings.mode} PPO for {settings.total_timesteps:,} household-steps in {time.perf_counter() - t0:.0f} s -> {out}")
    print((out / "curve.csv").read_text())
    return 0
