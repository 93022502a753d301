"""``wmgym train sft|default|export``.

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

    train = sub.add_parser("train", help="train world models (sft, the embedded defaults) and export data")
    tsub = train.add_subparsers(dest="train_command", metavar="TRAIN_COMMAND", required=True)

    p = tsub.add_parser("sft", help="dynamics-aligned SFT: trajectories -> world model (HF directory)")
    add_dataclass_args(p, SFTConfig, skip=PYTHON_ONLY)
    p.set_defaults(func=cmd_sft)

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
