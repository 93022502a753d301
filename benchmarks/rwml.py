"""RWML against token-level RL at equal compute: ``wmgym bench rwml --env ALFWorld-v0 --env TextWorld-v0``.

For each env, from the same SFT'd world model (the env's default twin, or
``--model ENV=DIR``):

- **SFT**: the starting model as it is;
- **SFT + RWML**: GRPO with the binarised sim-to-real embedding reward
  (:mod:`wmgym.training.rwml`, all-MiniLM-L6-v2, ``--threshold``);
- **SFT + GRPO-EM**: the same GRPO with an exact-match reward, the
  token-level baseline RWML argues against.

*Equal compute*: both runs take ``--steps`` GRPO steps of ``--prompts-per-step``
prompts x ``--num-generations`` samples, on transitions drawn from the same
seeded subset of the training episodes, after a pre-pass whose samples (drawn
once from the SFT model) both score with their own reward for the too-easy and
unpredictable filters. Each model is then scored on the same fixed subset of
held-out transitions (``--eval-transitions``, the twin's held-out episodes):
greedy prediction from the real history, EM (after ``strip()``, marker
included), token F1 and embedding similarity to the real next state. The
results also hold each run's effective-group share (before training, among the
kept transitions, and per step), and its reward curve.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

from wmgym.benchmarks import metrics
from wmgym.benchmarks.common import BenchmarkRun, add_common_args, fmt, md_table, set_torch_threads
from wmgym.training.rewards import StateReward

#: The arms compared: label -> reward kind of the GRPO run (None: the SFT model untouched).
ARMS: dict[str, str | None] = {"sft": None, "sft+rwml": "binary", "sft+grpo-em": "em"}


@dataclasses.dataclass
class RWMLBenchConfig:
    """Settings of one ``bench rwml`` run."""

    envs: list[str] = dataclasses.field(default_factory=lambda: ["ALFWorld-v0", "TextWorld-v0"])
    models: dict[str, str] = dataclasses.field(default_factory=dict)
    """env -> starting model directory (default: the env's default twin)."""
    train_data: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    """env -> training trajectory files (default: the default twin's training data)."""
    eval_data: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    """env -> held-out trajectory files (default: the default twin's held-out data)."""
    train_transitions: int = 300
    eval_transitions: int = 150
    steps: int = 20
    prompts_per_step: int = 4
    num_generations: int = 4
    filter_samples: int = 4
    threshold: float = 0.1
    unpredictable_below: float = 0.5
    beta: float = 0.0
    lr: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.envs:
            raise ValueError("give at least one env (--env ID)")
        for name in ("train_transitions", "eval_transitions", "steps", "prompts_per_step"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


def _twin_files(env: str, cfg: RWMLBenchConfig) -> tuple[str, list[str], list[str]]:
    """Starting model, training files and held-out files of ``env``."""
    from wmgym.worldmodels.loading import default_model_dir, train_default_command

    model = cfg.models.get(env) or str(default_model_dir(env))
    meta_path = Path(model) / "wmgym.json"
    data = {}
    if meta_path.exists():
        data = json.loads(meta_path.read_text()).get("data") or {}
    train = cfg.train_data.get(env) or ([data["train"]] if data.get("train") else [])
    held = cfg.eval_data.get(env) or ([data["test"]] if data.get("test") else [])
    if not (Path(model) / "config.json").exists():
        raise FileNotFoundError(f"no world model for {env} at {model}; train the default twin "
                                f"({train_default_command(env)}) or pass --model {env}=DIR")
    if not train or not held:
        raise ValueError(f"{model} does not record its training and held-out data (wmgym.json 'data'); pass "
                         f"--train-data {env}=FILE and --eval-data {env}=FILE")
    return model, train, held


def score(model: Any, tokenizer: Any, transitions: list, embed: Any, max_new_tokens: int,
          threshold: float = 0.1) -> dict[str, Any]:
    """Greedy next-state predictions of ``transitions``: EM, token F1 and embedding similarity (means), how many
    wrong predictions RWML's binary reward at ``threshold`` would still score 1 (``wrong_but_rewarded``), and a
    few mismatches."""
    from wmgym.training.rwml import sample

    t0 = time.perf_counter()
    preds = [g[0] for g in sample(model, tokenizer, transitions, 1, max_new_tokens=max_new_tokens, greedy=True)]
    golds = [tr.target for tr in transitions]
    ems = [metrics.exact_match(p, g) for p, g in zip(preds, golds)]
    f1s = [metrics.token_f1(p, g) for p, g in zip(preds, golds)]
    sims = embed.similarities(preds, golds)
    wrong = [(p, g) for p, g, ok in zip(preds, golds, ems) if not ok]
    rewarded = StateReward("binary", threshold)([p for p, _ in wrong], [g for _, g in wrong]) if wrong else []
    return {"em": metrics.mean([float(x) for x in ems]), "f1": metrics.mean(f1s), "similarity": metrics.mean(sims),
            "transitions": len(transitions), "exact": sum(ems), "wrong": len(wrong),
            "wrong_but_rewarded": int(sum(rewarded)), "seconds": round(time.perf_counter() - t0, 1),
            "mismatches": [{"action": tr.action, "gold": g, "predicted": p}
                           for tr, p, g, ok in zip(transitions, preds, golds, ems) if not ok][:3]}


def run_env(env: str, cfg: RWMLBenchConfig, work: Path) -> dict[str, Any]:
    """The three arms of one env (see module docstring)."""
    from transformers import AutoModelForCausalLM

    from wmgym.training.rwml import (RWMLConfig, completion_budget, load_model, load_transitions, sample,
                                     train)

    model_dir, train_files, held_files = _twin_files(env, cfg)
    base = RWMLConfig(data=train_files, model=model_dir, threshold=cfg.threshold, beta=cfg.beta, lr=cfg.lr,
                      max_steps=cfg.steps, num_generations=cfg.num_generations,
                      prompts_per_step=cfg.prompts_per_step, max_transitions=cfg.train_transitions,
                      filter_samples=cfg.filter_samples, unpredictable_below=cfg.unpredictable_below,
                      seed=cfg.seed, save_steps=10**6, resume=False,
                      progress=False)
    model, tokenizer = load_model(base)
    context = model.config.max_position_embeddings
    probe, _ = load_transitions(train_files, tokenizer, 10**9, cfg.train_transitions, cfg.seed)
    completion_len = completion_budget(tokenizer, probe)
    base.max_completion_length = completion_len
    train_trs, tstats = load_transitions(train_files, tokenizer, context - completion_len, cfg.train_transitions,
                                         cfg.seed)
    eval_trs, estats = load_transitions(held_files, tokenizer, context - completion_len, cfg.eval_transitions,
                                        cfg.seed + 1)
    embed = StateReward("continuous")
    out: dict[str, Any] = {"model": model_dir, "train_data": train_files, "eval_data": held_files,
                           "train_transitions": tstats, "eval_transitions": estats,
                           "max_completion_length": completion_len, "arms": {}}
    t0 = time.perf_counter()
    samples = sample(model, tokenizer, train_trs, cfg.filter_samples, max_new_tokens=completion_len,
                     temperature=1.0, seed=cfg.seed) if cfg.filter_samples else None
    out["prepass_s"] = round(time.perf_counter() - t0, 1)
    print(f"{env}: pre-pass of {len(train_trs)} transitions x {cfg.filter_samples} samples in {out['prepass_s']} s",
          flush=True)
    for arm, kind in ARMS.items():
        if kind is None:
            trained, summary = model, None
        else:
            run_cfg = dataclasses.replace(base, reward=kind, out=str(work / env / arm))
            summary = train(run_cfg, prepass_samples=samples)
            trained = AutoModelForCausalLM.from_pretrained(run_cfg.out, use_safetensors=True)
        res = score(trained, tokenizer, eval_trs, embed, completion_len, cfg.threshold)
        if summary is not None:
            res["training"] = {k: v for k, v in summary.items() if k not in ("config",)}
        out["arms"][arm] = res
        print(f"{env} {arm}: EM {100 * res['em']:.1f}% F1 {res['f1']:.3f} similarity {res['similarity']:.3f} "
              f"({res['transitions']} held-out transitions)"
              + (f"; training: effective groups before {summary.get('effective_share_before', float('nan')):.3f}, "
                 f"during {summary['effective_groups_mean']}, kept {summary.get('kept')}, {summary['wall_s']} s"
                 if summary else ""), flush=True)
    return out


def run(cfg: RWMLBenchConfig, out: str | None = None, run_name: str | None = None,
        argv: list[str] | None = None) -> BenchmarkRun:
    bench = BenchmarkRun("rwml", config=cfg, seeds={"subset": cfg.seed, "grpo": cfg.seed}, out=out,
                         run_name=run_name, argv=argv)
    results: dict[str, Any] = {"envs": {}}
    for env in cfg.envs:
        results["envs"][env] = run_env(env, cfg, bench.path / "models")
    bench.finish(results, markdown(results, cfg), title="RWML vs EM-reward GRPO at equal compute")
    print(f"results in {bench.path}")
    return bench


def markdown(results: dict[str, Any], cfg: RWMLBenchConfig) -> str:
    rows, train_rows = [], []
    for env, r in results["envs"].items():
        for arm, a in r["arms"].items():
            rows.append([env, arm, fmt(a["em"], percent=True), fmt(a["f1"], 3), fmt(a["similarity"], 3),
                         f"{a.get('wrong_but_rewarded', '?')}/{a.get('wrong', '?')}", a["transitions"]])
            t = a.get("training")
            if t:
                train_rows.append([env, arm, t["steps"], t["completions_sampled"], t.get("kept"),
                                   fmt(t.get("effective_share_before"), 3), fmt(t.get("too_easy_share"), 3),
                                   fmt(t.get("unpredictable_share"), 3), fmt(t.get("effective_groups_mean"), 3),
                                   fmt(t.get("mean_reward_first"), 3), fmt(t.get("mean_reward_last"), 3),
                                   t["wall_s"]])
    parts = [f"Held-out next-state prediction (greedy, from the real history) of the same SFT'd world model, "
             f"untouched and after {cfg.steps} GRPO steps ({cfg.prompts_per_step} prompts x {cfg.num_generations} "
             f"samples) with RWML's binarised embedding reward (cosine distance <= {cfg.threshold}, "
             f"all-MiniLM-L6-v2) or an exact-match reward; KL beta {cfg.beta}.", "",
             md_table(["env", "model", "EM (%)", "token F1", "embedding similarity",
                       "wrong predictions the binary reward scores 1", "held-out transitions"], rows),
             "", "### Training", "",
             "Effective groups: GRPO groups whose rewards are not all equal (the only ones with a gradient); "
             "'before' is measured on the pre-pass samples of the SFT model over all training transitions, "
             "'during' is the mean over the GRPO steps (after the filters).", "",
             md_table(["env", "run", "steps", "completions", "transitions kept", "effective before",
                       "too easy", "unpredictable", "effective during", "reward first step", "reward last step",
                       "train s"], train_rows), ""]
    for env, r in results["envs"].items():
        for arm, a in r["arms"].items():
            if a["mismatches"]:
                parts += [f"#### {env} {arm}: first mismatches", ""]
                parts += [f"- `{m['action']}`: predicted `{_short(m['predicted'])}` / gold `{_short(m['gold'])}`"
                          for m in a["mismatches"]]
                parts.append("")
    return "\n".join(parts)


def _short(text: str, n: int = 140) -> str:
    text = " ".join(text.split()).replace("`", "'")
    return text if len(text) <= n else text[: n - 3] + "..."


def _pairs(values: list[str], flag: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for v in values:
        env, sep, path = v.partition("=")
        if not sep or not env or not path:
            raise ValueError(f"{flag} takes ENV=PATH, got {v!r}")
        out.setdefault(env, []).append(path)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="wmgym bench rwml", description=__doc__.split("\n\n")[0])
    p.add_argument("--env", action="append", default=None, help="real env id (repeatable; default ALFWorld-v0 and "
                                                                "TextWorld-v0)")
    p.add_argument("--model", action="append", default=[], help="ENV=DIR: starting model (default: the default twin)")
    p.add_argument("--train-data", action="append", default=[], help="ENV=FILE (default: the twin's training data)")
    p.add_argument("--eval-data", action="append", default=[], help="ENV=FILE (default: the twin's held-out data)")
    p.add_argument("--train-transitions", type=int, default=300, help="seeded subset of training transitions")
    p.add_argument("--eval-transitions", type=int, default=150, help="fixed subset of held-out transitions")
    p.add_argument("--steps", type=int, default=20, help="GRPO steps of each run")
    p.add_argument("--prompts-per-step", type=int, default=4, help="prompts per GRPO step")
    p.add_argument("--num-generations", type=int, default=4, help="samples per prompt (the group)")
    p.add_argument("--filter-samples", type=int, default=4, help="pre-pass samples per transition (0: no filters)")
    p.add_argument("--threshold", type=float, default=0.1, help="cosine distance of RWML's binary reward")
    p.add_argument("--unpredictable-below", type=float, default=0.5,
                   help="best pre-pass similarity under which a transition may be unpredictable (0: filter off)")
    p.add_argument("--beta", type=float, default=0.0, help="KL coefficient")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: rwml's)")
    add_common_args(p)
    args = p.parse_args(argv)
    set_torch_threads()
    import wmgym  # noqa: F401

    models = {env: paths[-1] for env, paths in _pairs(args.model, "--model").items()}
    cfg = RWMLBenchConfig(envs=args.env or ["ALFWorld-v0", "TextWorld-v0"], models=models,
                          train_data=_pairs(args.train_data, "--train-data"),
                          eval_data=_pairs(args.eval_data, "--eval-data"), train_transitions=args.train_transitions,
                          eval_transitions=args.eval_transitions, steps=args.steps,
                          prompts_per_step=args.prompts_per_step, num_generations=args.num_generations,
                          filter_samples=args.filter_samples, threshold=args.threshold,
                          unpredictable_below=args.unpredictable_below, beta=args.beta, lr=args.lr,
                          seed=args.seed)
    run(cfg, out=args.out, run_name=args.run_name, argv=None if argv is None else ["wmgym", "bench", "rwml", *argv])
    return 0


if __name__ == "__main__":
    sys.exit(main())
