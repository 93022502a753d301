"""Fine-tuning a pretrained chat LM as a twin, at a fixed wall-clock budget, against the embedded tiny default.

``wmgym bench finetune --model DIR --minutes 15`` (or ``python -m wmgym.benchmarks.finetune ...``)

For each env of ``--env`` (default TextWorld-v0 and ALFWorld-v0) and each mode of ``--modes`` (``lora``,
``full``): ``wmgym train sft`` of ``--model`` (a local HF directory, e.g. SmolLM2-135M-Instruct imported with
``wmgym models import-gguf``, or a hub id on a GPU) on the default twin's training episodes
(``training.default.data_paths``: the quickstart's), stopped after ``--minutes`` of training (``--max-minutes``;
the learning-rate schedule follows ``--max-steps``). Held-out teacher-forced EM on the first
``--eval-em-episodes`` held-out episodes every ``--eval-steps`` steps, with the tokens trained by then (EM
against tokens), and the embedded tiny default's EM on the same episodes beside it.

A run folder that holds ``sft_summary.json`` is read back, not retrained, so an interrupted benchmark resumes
(a run stopped mid-training resumes from its checkpoint, its budget counting the new process's time only).

On a GPU the same command is the prepared check of issue 24 (full fine-tuning to convergence in minutes):
``wmgym bench finetune --model HUB_ID_OR_DIR --modes full --minutes 3 --max-steps 400 --eval-em-episodes 60``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from wmgym.benchmarks.common import BenchmarkRun, md_table, set_torch_threads

#: Longest training sequence per env for a pretrained tokenizer (ALFWorld's initial states run longer).
MAX_LENGTH = {"ALFWorld-v0": 4096}


@dataclasses.dataclass
class FinetuneConfig:
    model: str = ""
    """Pretrained model: a local HF directory or a hub id."""
    envs: list[str] = dataclasses.field(default_factory=lambda: ["TextWorld-v0", "ALFWorld-v0"])
    modes: list[str] = dataclasses.field(default_factory=lambda: ["lora", "full"])
    minutes: float = 15.0
    """Wall-clock training budget of each run."""
    max_steps: int = 40
    """Steps the learning-rate schedule is laid out for (a run may stop earlier at the budget)."""
    eval_steps: int = 10
    eval_em_episodes: int = 8
    batch_tokens: int = 4096
    max_length: int = 2048
    """Longest sequence (ALFWorld: at least 4,096)."""
    gradient_checkpointing: bool = True
    lora_r: int = 16
    data: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    """ENV -> [train file, held-out file] (default: the default twin's data)."""
    compare_default: bool = True
    """Score the embedded tiny default on the same held-out episodes."""

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("give --model: a local HF directory (e.g. from `wmgym models import-gguf`) or a hub id")
        bad = sorted(set(self.modes) - {"lora", "full"})
        if bad or not self.modes:
            raise ValueError(f"unknown modes {bad}; choose from ['lora', 'full']")
        if self.minutes <= 0:
            raise ValueError(f"--minutes must be > 0, got {self.minutes}")


def data_for(cfg: FinetuneConfig, env: str) -> tuple[str, str]:
    if env in cfg.data:
        train, test = cfg.data[env]
        return train, test
    from wmgym.training.default import data_paths

    train, test = data_paths(env)
    if not (train.is_file() and test.is_file()):
        raise FileNotFoundError(f"no default data for {env} at {train.parent}; run `wmgym quickstart` or "
                                f"`wmgym train default --env {env}` first, or pass --data {env}=TRAIN,TEST")
    return str(train), str(test)


def default_em(cfg: FinetuneConfig, env: str, test: str, max_length: int) -> dict[str, Any] | None:
    """The embedded tiny default's teacher-forced EM on the held-out episodes a run scores (None without it)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from wmgym.training.evaluate import argmax_em
    from wmgym.training.sft import SFTConfig
    from wmgym.training.sft_batches import load_data
    from wmgym.worldmodels.loading import default_model_dir

    d = default_model_dir(env)
    if not (d / "model.safetensors").is_file():
        return None
    train_file, _ = data_for(cfg, env)
    _, held, _ = load_data(SFTConfig(data=[train_file], eval_data=[test]))
    eps = [ep for ep in held if ep.steps][:cfg.eval_em_episodes]  # the episodes SFT's eval_em scores
    r = argmax_em(AutoModelForCausalLM.from_pretrained(d), AutoTokenizer.from_pretrained(d), eps,
                  max_length=max_length)
    return {"em": r.em, "steps": r.n_steps, "model": str(d)}


def run_one(cfg: FinetuneConfig, env: str, mode: str, folder: Path) -> dict[str, Any]:
    from wmgym.training.sft import SFTConfig, train, write_summary

    done = folder / "sft_summary.json"
    if not done.is_file():
        train_file, test_file = data_for(cfg, env)
        scfg = SFTConfig(data=[train_file], eval_data=[test_file], model=cfg.model, lora=mode == "lora",
                         lora_r=cfg.lora_r, max_steps=cfg.max_steps, max_minutes=cfg.minutes,
                         max_length=max(cfg.max_length, MAX_LENGTH.get(env, 0)), batch_tokens=cfg.batch_tokens,
                         eval_steps=cfg.eval_steps, save_steps=cfg.eval_steps, eval_em_episodes=cfg.eval_em_episodes,
                         gradient_checkpointing=cfg.gradient_checkpointing, out=str(folder), progress=False)
        write_summary(train(scfg), str(folder))
    s = json.loads(done.read_text())
    curve = [{"step": h["step"], "em": h.get("eval_em"), "loss": h.get("eval_loss"),
              "tokens": h.get("num_input_tokens_seen")} for h in s["eval_history"] if "eval_em" in h]
    return {"mode": mode, "em": s["eval_em"], "eval_loss": s["eval_loss"], "steps": s["steps"],
            "tokens": s["tokens_seen_this_run"], "wall_s": round(s["wall_s"]), "em_episodes": s["eval_em_episodes"],
            "stopped_by_time_at_step": s.get("stopped_by_time_at_step"), "parameters": s.get("parameters"),
            "em_against_tokens": curve}


def run(cfg: FinetuneConfig, *, out: str | None = None, run_name: str | None = None,
        argv: list[str] | None = None) -> BenchmarkRun:
    set_torch_threads()
    bench = BenchmarkRun("finetune", config=cfg, seeds=[0], out=out, run_name=run_name, argv=argv)
    results: dict[str, Any] = {"model": cfg.model, "minutes": cfg.minutes, "envs": {}}
    for env in cfg.envs:
        _, test = data_for(cfg, env)
        r: dict[str, Any] = {"runs": {}}
        for mode in cfg.modes:
            r["runs"][mode] = run_one(cfg, env, mode, bench.path / "runs" / f"{env}-{mode}")
            print(f"{env} {mode}: held-out EM {r['runs'][mode]['em']:.3f} after {r['runs'][mode]['steps']} steps, "
                  f"{r['runs'][mode]['tokens']} tokens, {r['runs'][mode]['wall_s']} s", flush=True)
        if cfg.compare_default:
            r["tiny_default"] = default_em(cfg, env, test, max(cfg.max_length, MAX_LENGTH.get(env, 0)))
        results["envs"][env] = r
    bench.finish(results, markdown(cfg, results), title=f"Fine-tuning {cfg.model} as a twin, {cfg.minutes:g} "
                                                         "minutes a run")
    print(f"results in {bench.path}")
    return bench


def markdown(cfg: FinetuneConfig, results: dict[str, Any]) -> str:
    rows = []
    for env, r in results["envs"].items():
        tiny = r.get("tiny_default")
        for mode, x in r["runs"].items():
            rows.append([env, mode, f"{100 * x['em']:.1f}%", f"{x['eval_loss']:.3f}", x["steps"], x["tokens"],
                         x["wall_s"], f"{100 * tiny['em']:.1f}%" if tiny else "n/a",
                         "; ".join(f"{c['tokens']}: {100 * c['em']:.1f}%" for c in x["em_against_tokens"])])
    head = ["env", "mode", "held-out EM", "eval loss", "steps", "tokens trained", "wall s", "tiny default EM (same "
            "episodes)", "EM against tokens"]
    return (f"Model `{cfg.model}`, {cfg.minutes:g} minutes of training a run, teacher-forced EM on the first "
            f"{cfg.eval_em_episodes} held-out episodes.\n\n" + md_table(head, rows))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m wmgym.benchmarks.finetune", description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="pretrained model: local HF directory or hub id")
    p.add_argument("--env", action="append", default=None, help="real env id (repeatable; default TextWorld-v0 "
                                                                  "and ALFWorld-v0)")
    p.add_argument("--modes", default="lora,full", help="comma-separated: lora,full")
    p.add_argument("--minutes", type=float, default=15.0, help="wall-clock training budget of each run")
    p.add_argument("--max-steps", type=int, default=40, help="steps the LR schedule is laid out for")
    p.add_argument("--eval-steps", type=int, default=10)
    p.add_argument("--eval-em-episodes", type=int, default=8)
    p.add_argument("--batch-tokens", type=int, default=4096)
    p.add_argument("--max-length", type=int, default=2048)
    p.add_argument("--no-gradient-checkpointing", action="store_true")
    p.add_argument("--data", action="append", default=[], help="ENV=TRAIN,TEST trajectory files")
    p.add_argument("--no-compare-default", action="store_true")
    p.add_argument("--out", default=None)
    p.add_argument("--run-name", default=None)
    a = p.parse_args(argv)
    try:
        data = {k: v.split(",") for k, v in (x.split("=", 1) for x in a.data)}
        cfg = FinetuneConfig(model=a.model, envs=a.env or ["TextWorld-v0", "ALFWorld-v0"],
                             modes=[m for m in a.modes.split(",") if m], minutes=a.minutes, max_steps=a.max_steps,
                             eval_steps=a.eval_steps, eval_em_episodes=a.eval_em_episodes, batch_tokens=a.batch_tokens,
                             max_length=a.max_length, gradient_checkpointing=not a.no_gradient_checkpointing,
                             data=data, compare_default=not a.no_compare_default)
    except ValueError as e:
        p.error(str(e))
    run(cfg, out=a.out, run_name=a.run_name, argv=["wmgym", "bench", "finetune", *(argv or sys.argv[1:])])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
