"""``wmgym train sft|rwml|default|export``.

The ``train sft`` flags are generated from :class:`~wmgym.training.sft.SFTConfig`
(one flag per field, its docstring as the help, less the fields set from Python
only), so the CLI and the config never drift apart.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing


def _field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings (the string right after each field) of a dataclass."""
    import ast
    import inspect
    import textwrap

    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    docs, body = {}, tree.body[0].body
    for a, b in zip(body, body[1:]):
        if isinstance(a, ast.AnnAssign) and isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant):
            docs[a.target.id] = " ".join(str(b.value.value).split())
    return docs


def add_dataclass_args(p: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """One ``--flag`` per field of ``cls`` (lists take several values, bools are on/off switches)."""
    docs = _field_docs(cls)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        help_text = docs.get(f.name, "") + ("" if default in (None, [], "") else f" (default: {default})")
        help_text = help_text.replace("%", "%%")  # argparse formats help with %: "95% right" printed a dict
        hint = hints[f.name]
        args = typing.get_args(hint)
        if hint is bool or (bool in args):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help_text)
        elif typing.get_origin(hint) is list:
            p.add_argument(flag, nargs="+", default=default, help=help_text)
        else:
            base = next((a for a in args if a is not type(None)), hint)
            p.add_argument(flag, type=base, default=default, help=help_text)


def cmd_sft(args: argparse.Namespace) -> int:
    from wmgym.training.sft import SFTConfig, train, write_summary

    names = {f.name for f in dataclasses.fields(SFTConfig)}
    cfg = SFTConfig(**{k: v for k, v in vars(args).items() if k in names})
    summary = train(cfg)
    write_summary(summary, cfg.out)
    print(f"saved the world model to {cfg.out} ({summary['steps']} steps, eval loss {summary['eval_loss']}, "
          f"held-out teacher-forced EM {summary['eval_em']})")
    return 0


def cmd_rwml(args: argparse.Namespace) -> int:
    from wmgym.training.rwml import RWMLConfig, train

    names = {f.name for f in dataclasses.fields(RWMLConfig)}
    cfg = RWMLConfig(**{k: v for k, v in vars(args).items() if k in names})
    summary = train(cfg)
    if cfg.prepass_only:
        print(f"pre-pass only: effective groups {summary['effective_share_before']:.3f} of "
              f"{summary['prepass_transitions']} transitions (too easy {summary['too_easy_share']:.3f}, unpredictable "
              f"{summary['unpredictable_share']:.3f}); {cfg.out}/rwml_summary.json")
        return 0
    print(f"saved the world model to {cfg.out} ({summary['steps']} GRPO steps; mean reward "
          f"{summary['mean_reward_first']} at the first step, {summary['mean_reward_last']} at the last; effective "
          f"groups {summary['effective_groups_mean']}); log in {cfg.out}/rwml_summary.json")
    return 0


def cmd_agent(args: argparse.Namespace) -> int:
    from wmgym.training.agent import AgentConfig, summary_line, train, write_summary

    names = {f.name for f in dataclasses.fields(AgentConfig)}
    cfg = AgentConfig(**{k: v for k, v in vars(args).items() if k in names})
    summary = train(cfg)
    write_summary(summary, cfg.out)
    print(summary_line(summary, cfg.out))
    return 0


def cmd_grpo(args: argparse.Namespace) -> int:
    from wmgym.training.grpo import AgentGRPOConfig, parse_env_args, train

    names = {f.name for f in dataclasses.fields(AgentGRPOConfig)}
    cfg = AgentGRPOConfig(**{k: v for k, v in vars(args).items() if k in names},
                          env_kwargs=parse_env_args(args.env_arg))
    summary = train(cfg)
    print(f"saved the policy to {cfg.out} (play it as lm:{cfg.out}): {summary['steps']} GRPO steps, mean reward "
          f"{summary['first_reward']} at the first step, {summary['last_reward']} at the last; curve in "
          f"{cfg.out}/curve.json")
    for when in ("before", "after"):
        ev = summary.get(f"eval_{when}")
        if ev:
            print(f"held-out success {when}: {ev['success']:.3f} ({ev['games']} games of {ev['split']})")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from wmgym.training.data import check_mix, episode_chats, group_by_env, mix_sample, parse_mix
    from wmgym.training.export import export_llamafactory, export_word2world
    from wmgym.training.trajectories import canonical_order, check_formats, load_episodes

    episodes = canonical_order(load_episodes(args.data))  # as sft reads them: the same episodes, the same export
    # Word2World's layout carries Word2World's strings only: its episodes must have been collected that way.
    check_formats(episodes, "word2world" if args.format == "word2world" else None)
    if args.mix:
        report = check_mix(parse_mix(args.mix), group_by_env(episodes), args.allow_missing)
        print("mix:\n" + str(report))
        episodes = mix_sample(group_by_env(episodes), report.weights, args.seed)
    if args.format == "word2world":
        by_env: dict[tuple[str, str], list] = {}
        stepped = [ep for ep in episodes if ep.steps]  # episode_chats drops the others: keep the pairs aligned
        for ep, (_, chat) in zip(stepped, episode_chats(stepped)):
            by_env.setdefault((ep.env_id, ep.split), []).append(chat)
        files = export_word2world(by_env, args.out)
        names = ",".join(f.stem for f in files)
        print(f"wrote {', '.join(str(f) for f in files)}; in Word2World's LLaMA-Factory config use "
              f"dataset_dir: {args.out}, dataset: {names}")
        return 0
    chats = [m for _, m in episode_chats(episodes)]
    path = export_llamafactory(chats, args.out, args.name)
    print(f"wrote {len(chats)} chats to {path}; in LLaMA-Factory use dataset: {args.name}, dataset_dir: {args.out}")
    return 0


def default_envs() -> list[str]:
    """The real envs ``train default --all`` trains: every registered real id, sorted (an env without a
    ``default_twin`` declaration trains on the generic recipe, as ``--env`` does)."""
    import wmgym  # noqa: F401
    from wmgym.envs import TWIN_PREFIX, registered_ids

    return [e for e in registered_ids() if not e.startswith(TWIN_PREFIX)]


def cmd_default(args: argparse.Namespace) -> int:
    from wmgym.training.default import summary_text, train_default

    if bool(args.all) == bool(args.env):
        raise SystemExit("wmgym train default: give one of --env ID or --all")
    envs = default_envs() if args.all else [args.env]
    metas = {}
    for env in envs:
        metas[env] = train_default(env, workers=args.workers, force=args.force, progress=not args.quiet)
        if not args.json:
            print(summary_text(metas[env]))
    if args.json:
        print(json.dumps(metas if args.all else metas[envs[0]], indent=2, default=str))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    from wmgym.training.sft import PYTHON_ONLY, SFTConfig

    train = sub.add_parser("train", help="train world models (sft, the embedded defaults), agents (agent) and export data")
    tsub = train.add_subparsers(dest="train_command", metavar="TRAIN_COMMAND", required=True)

    p = tsub.add_parser("sft", help="dynamics-aligned SFT: trajectories -> world model (HF directory)")
    add_dataclass_args(p, SFTConfig, skip=PYTHON_ONLY)
    p.set_defaults(func=cmd_sft)

    from wmgym.training.rwml import PYTHON_ONLY as RWML_PYTHON_ONLY, RWMLConfig

    p = tsub.add_parser("rwml", help="RWML: GRPO of a world model with a sim-to-real embedding reward (or EM)")
    add_dataclass_args(p, RWMLConfig, skip=RWML_PYTHON_ONLY)
    p.set_defaults(func=cmd_rwml)

    from wmgym.training.agent import PYTHON_ONLY as AGENT_PYTHON_ONLY, AgentConfig

    p = tsub.add_parser("agent", help="agent SFT: trajectories -> policy LM (history -> next action), played by "
                        "the agent spec lm:OUT; --warm-start wm trains it as a world model first")
    add_dataclass_args(p, AgentConfig, skip=AGENT_PYTHON_ONLY)
    p.set_defaults(func=cmd_agent)

    from wmgym.training.grpo import PYTHON_ONLY as GRPO_PYTHON_ONLY, AgentGRPOConfig

    p = tsub.add_parser("grpo", help="agent GRPO (TRL): a policy LM plays episodes of any env, real or twin, and "
                        "learns from group-relative episode rewards; played by the agent spec lm:OUT")
    add_dataclass_args(p, AgentGRPOConfig, skip=(*GRPO_PYTHON_ONLY, "ray"))
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="step the envs on --workers Ray actors (generation stays in this process, batched): alone, "
                        "a private local cluster; with an address (auto, HOST:6379), that cluster (docs/scaling.md)")
    p.add_argument("--env-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="keyword argument of gym.make, repeatable (VALUE read as JSON when it parses, else a "
                        "string), e.g. --env-arg model=runs/wm for a twin's world model")
    p.set_defaults(func=cmd_grpo)

    p = tsub.add_parser("default", help="train the embedded default twin of a real env (collects data if needed)")
    p.add_argument("--env", default=None, help="real env id, e.g. TextWorld-v0 or ALFWorld-v0")
    p.add_argument("--all", action="store_true",
                   help="train the default twin of every real env that declares a default recipe, one after another "
                        "(those already trained are kept unless --force)")
    p.add_argument("--workers", type=int, default=2, help="processes for collection")
    p.add_argument("--force", action="store_true", help="retrain even if the default model exists")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the whole metadata as JSON instead of a summary")
    p.set_defaults(func=cmd_default)

    p = tsub.add_parser("export", help="export trajectories as a LLaMA-Factory dataset (ShareGPT + dataset_info.json)")
    p.add_argument("--data", nargs="+", required=True, help="trajectory files")
    p.add_argument("--out", required=True, help="dataset directory (dataset_info.json is created or updated)")
    p.add_argument("--name", default="wmgym_worldmodel", help="dataset name in dataset_info.json")
    p.add_argument("--mix", default=None, help="mix3 | mix4 | mix5 | ENV=W,ENV=W (default: all episodes)")
    p.add_argument("--allow-missing", action="store_true", help="export the envs of --mix that have data")
    p.add_argument("--seed", type=int, default=0, help="seed of the mix sampling")
    p.add_argument("--format", default="wmgym", choices=("wmgym", "word2world"),
                   help="wmgym: one ShareGPT file named --name; word2world: Word2World's layout (one "
                        "<env>_<split>[_with_env]_<N>.json per env, OpenAI-style messages; --name is not used), "
                        "from episodes collected with format=word2world")
    p.set_defaults(func=cmd_export)
