"""Scaling: single-step EM (and CR where cheap) against training data and model size.

``python -m wmgym.benchmarks.scaling --env TextWorld-v0 --sizes 32,64,128 --presets tiny-s,tiny``
(or ``wmgym bench scaling ...``)

Word2World's data-scaling figure for our setting. Training trajectories come
from the train split (scripted policies, collected once and cached); the
sizes are nested (the 64-trajectory set holds the 32 one). For every size and
tiny preset a world model is trained with ``wmgym train sft``'s Python API
(:func:`wmgym.training.sft.train`, the same number of optimizer steps for
every size by default, or the same epochs with ``--max-steps 0``) and scored on
one fixed set of gold test-split episodes by the fidelity benchmark's
teacher-forced EM. ``--cr-games N`` adds the consistency ratio of the
scripted agent on N test games per model. Trained models are kept under
``--work-dir`` and reused when the same run is asked again.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from wmgym.benchmarks.common import BenchmarkRun, add_common_args, fmt, line_plot, md_table, set_torch_threads
from wmgym.paths import wmgym_home


@dataclasses.dataclass
class ScalingConfig:
    """Settings of a scaling run."""

    env: str = "TextWorld-v0"
    """Real env id."""
    sizes: list[int] = dataclasses.field(default_factory=lambda: [32, 64, 128])
    """Numbers of training trajectories (the paper's figure goes 250 -> 8,000)."""
    presets: list[str] = dataclasses.field(default_factory=lambda: ["tiny"])
    """Tiny model presets (model size axis): tiny-s | tiny | tiny-m | tiny-l."""
    policies: list[str] = dataclasses.field(default_factory=lambda: ["expert", "noisy-expert:0.3"])
    """Policies that roll the training (train split) and gold (test split) trajectories."""
    epochs: float = 3.0
    """Training epochs for every size (used when max_steps is 0)."""
    max_steps: int = 200
    """Optimizer steps for every size (compute-matched points; 0: train --epochs instead). A few epochs of a
    small set are only a handful of steps, too few for a model trained from scratch to learn anything."""
    eval_episodes: int = 20
    """Gold test-split episodes for EM (the same for every model)."""
    cr_games: int = 0
    """Test games for the scripted agent's CR per model (0: skip CR)."""
    max_new_tokens: int = 256
    """Generation cap of the evaluated world models."""
    seed: int = 0
    """Seed of collection and training."""
    work_dir: str | None = None
    """Where data subsets and trained models live (default WMGYM_HOME/benchmarks/scaling)."""
    workers: int = 1
    """Processes collecting trajectories."""
    train_trajectories: list[str] = dataclasses.field(default_factory=list)
    """Train on prefixes of these files instead of collecting train-split episodes."""
    eval_trajectories: list[str] = dataclasses.field(default_factory=list)
    """Score on these gold episodes instead of collecting test-split ones."""

    def __post_init__(self) -> None:
        if not self.sizes or any(n < 1 for n in self.sizes):
            raise ValueError(f"sizes must be positive trajectory counts, got {self.sizes}")
        from wmgym.training.tiny import get_preset

        for p in self.presets:
            get_preset(p)  # names the valid presets on a typo
        if self.eval_episodes < 1:
            raise ValueError(f"eval_episodes must be >= 1, got {self.eval_episodes}")
        if self.epochs <= 0 and self.max_steps <= 0:
            raise ValueError("give epochs > 0 or max_steps > 0")


def _work_dir(cfg: ScalingConfig) -> Path:
    return Path(cfg.work_dir) if cfg.work_dir else wmgym_home() / "benchmarks" / "scaling"


def train_one(cfg: ScalingConfig, size: int, preset: str, train_eps: list) -> tuple[Path, dict[str, Any]]:
    """Train (or reuse) the model of one (size, preset) point; returns its directory and SFT summary."""
    from wmgym.training.sft import SFTConfig, train
    from wmgym.training.trajectories import TrajectoryWriter

    source = "collected"
    if cfg.train_trajectories:  # a stable name for the given files
        source = "files-" + hashlib.sha1("\n".join(map(os.path.abspath, cfg.train_trajectories)).encode()).hexdigest()[:8]
    tag = f"{cfg.env}-{source}-n{size}-{preset}-e{cfg.epochs:g}-s{cfg.max_steps}-seed{cfg.seed}"
    out = _work_dir(cfg) / "runs" / tag
    done = out / "scaling_summary.json"
    if done.exists():
        return out, json.loads(done.read_text())
    data = _work_dir(cfg) / "data" / f"{cfg.env}-{source}-n{size}-seed{cfg.seed}.jsonl"
    if not data.exists():
        data.parent.mkdir(parents=True, exist_ok=True)
        tmp = data.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        with TrajectoryWriter(tmp) as w:
            for ep in train_eps[:size]:
                w.write(ep)
        tmp.rename(data)
    sft = SFTConfig(data=[str(data)], out=str(out), model="tiny", preset=preset, epochs=cfg.epochs,
                    max_steps=cfg.max_steps, eval_fraction=0.0, eval_em_episodes=0, seed=cfg.seed,
                    progress=False, save_steps=10**6)
    summary = train(sft)
    keep = {k: summary.get(k) for k in ("parameters", "steps", "train_loss", "wall_s", "tokens_per_s",
                                        "train_tokens_per_epoch", "tokens_seen_this_run")}
    done.write_text(json.dumps(keep, indent=2))
    return out, keep


def _interleave(eps: list, policies: list[str]) -> list:
    """Episodes ordered policy by policy in turn, so any prefix has the same policy mix."""
    by_policy = [[e for e in eps if e.policy == p] for p in policies]
    out = []
    for i in range(max((len(b) for b in by_policy), default=0)):
        out += [b[i] for b in by_policy if i < len(b)]
    return out


def run(cfg: ScalingConfig, *, out: str | None = None, run_name: str | None = None,
        argv: list[str] | None = None) -> BenchmarkRun:
    """Train every (size, preset) point, score it, write the results."""
    from wmgym.agents import parse_spec
    from wmgym.benchmarks.fidelity import score_episodes, summarise
    from wmgym.benchmarks.gold import gold_episodes, read_gold
    from wmgym.envs import heldout_split
    from wmgym.worldmodels import load_world_model

    bench = BenchmarkRun("scaling", config=cfg, seeds={"collection_and_training": cfg.seed}, out=out,
                         run_name=run_name, argv=argv)
    if cfg.train_trajectories:
        train_all = read_gold(cfg.train_trajectories, [cfg.env])
    else:
        train_all = gold_episodes(cfg.env, max(cfg.sizes), policies=tuple(cfg.policies), split="train",
                                  seed=cfg.seed, spread=False, workers=cfg.workers)
        train_all = _interleave(train_all, [parse_spec(p, privileged=True).name for p in cfg.policies])
    if cfg.eval_trajectories:
        gold = read_gold(cfg.eval_trajectories, [cfg.env])[: cfg.eval_episodes]
    else:
        gold = gold_episodes(cfg.env, cfg.eval_episodes, policies=tuple(cfg.policies), split=heldout_split(cfg.env),
                             seed=cfg.seed, workers=cfg.workers)
    if not train_all or not gold:
        raise ValueError(f"no {cfg.env} episodes to train on or to score (check the trajectory files)")
    points = []
    for preset in cfg.presets:
        for size in sorted(cfg.sizes):
            t0 = time.perf_counter()
            model_dir, summary = train_one(cfg, size, preset, train_all)
            wm = load_world_model(model_dir, max_new_tokens=cfg.max_new_tokens)
            fid = summarise(score_episodes(wm, gold))
            point = {"preset": preset, "trajectories": min(size, len(train_all)),
                     "train_steps": sum(len(e.steps) for e in train_all[:size]), "em": fid["em"], "f1": fid["f1"],
                     "eval_steps": fid["steps"], "model_dir": str(model_dir), **{f"sft_{k}": v for k, v in
                                                                                 summary.items()}}
            if cfg.cr_games:
                point.update(_cr(cfg, wm))
            point["seconds"] = round(time.perf_counter() - t0, 2)
            points.append(point)
            print(f"{preset} n={size}: EM {100 * (fid['em'] or 0):.2f}% F1 {fid['f1']:.3f}"
                  + (f" CR {fmt(point.get('cr'))}" if cfg.cr_games else "") + f" ({point['seconds']:.0f} s)",
                  flush=True)
            del wm
    results = {"env": cfg.env, "points": points, "gold_episodes": len(gold),
               "gold_steps": sum(len(e.steps) for e in gold)}
    series = {p: ([pt["trajectories"] for pt in points if pt["preset"] == p],
                  [100 * pt["em"] for pt in points if pt["preset"] == p]) for p in cfg.presets}
    line_plot(bench.add_figure("em_vs_trajectories.png"), series, title=f"{cfg.env}: EM vs training trajectories",
              xlabel="training trajectories", ylabel="single-step EM (%)", logx=True, ylim=(0, 101))
    if cfg.cr_games:
        cr_series = {p: ([pt["trajectories"] for pt in points if pt["preset"] == p],
                         [pt.get("cr") for pt in points if pt["preset"] == p]) for p in cfg.presets}
        line_plot(bench.add_figure("cr_vs_trajectories.png"), cr_series, title=f"{cfg.env}: CR vs trajectories",
                  xlabel="training trajectories", ylabel="CR (W2R / Real)", logx=True)
    bench.finish(results, _markdown(results, cfg, bench.figures))
    print(f"results in {bench.path}")
    return bench


def _cr(cfg: ScalingConfig, wm: Any) -> dict[str, Any]:
    import gymnasium as gym

    from wmgym.benchmarks.consistency import measure_agent
    from wmgym.envs import heldout_split, twin_id
    from wmgym.wrappers import W2RReplay

    split = heldout_split(cfg.env)
    real = gym.make(cfg.env, split=split)
    twin = W2RReplay(gym.make(twin_id(cfg.env), split=split, model=wm))
    res = measure_agent(real, twin, "scripted", cfg.env, list(range(cfg.cr_games)), cfg.seed, {})
    real.close()
    twin.close()
    return {"real": res["real"], "wm": res["wm"], "w2r": res["w2r"], "cr": res["cr"]}


def _markdown(results: dict[str, Any], cfg: ScalingConfig, figures: list[str]) -> str:
    rows = [[pt["preset"], f"{pt.get('sft_parameters') or 0:,}", pt["trajectories"], pt["train_steps"],
             pt.get("sft_steps"), f"{100 * pt['em']:.2f}", f"{pt['f1']:.3f}",
             f"{pt.get('sft_tokens_seen_this_run') or 0:,}", fmt(pt.get("sft_train_loss"), 3),
             fmt(pt.get("cr")) if cfg.cr_games else "-", fmt(pt.get("sft_wall_s"), 0)] for pt in results["points"]]
    return "\n".join([
        f"Teacher-forced single-step EM of tiny world models trained on nested subsets of {cfg.env} train-split "
        f"trajectories ({', '.join(cfg.policies)}), scored on {results['gold_episodes']} gold test episodes "
        f"({results['gold_steps']} steps).", "",
        md_table(["preset", "parameters", "trajectories", "transitions", "optimizer steps", "EM (%)", "token F1",
                  "tokens trained", "final train loss", "CR", "train s"], rows), "",
        *[f"![{f}]({f})" for f in figures]])


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--env", default="TextWorld-v0", help="real env id")
    p.add_argument("--sizes", default="32,64,128", help="comma-separated training trajectory counts")
    p.add_argument("--presets", default="tiny", help="comma-separated tiny presets (tiny-s, tiny, tiny-m, tiny-l)")
    p.add_argument("--policies", default="expert,noisy-expert:0.3", help="comma-separated collection policies")
    p.add_argument("--epochs", type=float, default=3.0, help="training epochs for every size (with --max-steps 0)")
    p.add_argument("--max-steps", type=int, default=200,
                   help="optimizer steps for every size (compute-matched; 0: train --epochs instead)")
    p.add_argument("--eval-episodes", type=int, default=20, help="gold test episodes for EM")
    p.add_argument("--cr-games", type=int, default=0, help="test games for the scripted agent's CR (0: skip)")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--work-dir", default=None, help="data subsets and models (default WMGYM_HOME/benchmarks/scaling)")
    p.add_argument("--workers", type=int, default=1, help="processes collecting trajectories")
    p.add_argument("--train-trajectories", action="append", default=[], help="train on prefixes of this file")
    p.add_argument("--eval-trajectories", action="append", default=[], help="score on these gold episodes")
    add_common_args(p)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="wmgym bench scaling", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    args = p.parse_args(argv)
    set_torch_threads()
    import wmgym  # noqa: F401 - registers ids

    cfg = ScalingConfig(env=args.env, sizes=[int(s) for s in args.sizes.split(",") if s],
                        presets=[s for s in args.presets.split(",") if s],
                        policies=[s for s in args.policies.split(",") if s], epochs=args.epochs,
                        max_steps=args.max_steps, eval_episodes=args.eval_episodes, cr_games=args.cr_games,
                        max_new_tokens=args.max_new_tokens, seed=args.seed, work_dir=args.work_dir,
                        workers=args.workers, train_trajectories=args.train_trajectories,
                        eval_trajectories=args.eval_trajectories)
    run(cfg, out=args.out, run_name=args.run_name, argv=None if argv is None else ["wmgym", "bench", "scaling", *argv])
    return 0


if __name__ == "__main__":
    sys.exit(main())
