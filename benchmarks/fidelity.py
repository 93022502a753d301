"""Fidelity: teacher-forced single-step exact match and token F1 of a world model.

``python -m wmgym.benchmarks.fidelity --env TextWorld-v0 --episodes 40``
(or ``wmgym bench fidelity ...``)

Gold trajectories come from the test split of the real env (scripted
policies, collected once and cached; or ``--trajectories FILE``). For each
episode the world model starts from the gold ``init_context``; at every step it
predicts the next observation from the gold history (``WorldModel.step``),
then its turn is replaced by the gold one (``replace_last``), so every
prediction is conditioned on reality. Episodes are stepped in batches
(``step_batch``) for speed; greedy results equal one-by-one stepping.

Reported per env, per policy and per step index (plot): EM (after ``strip()``,
the success marker included), token F1, parse errors, and a few mismatches to
read. Works with any model and backend (``--model``, ``--backend``,
``--wm-arg``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections import defaultdict
from typing import Any

from wmgym.benchmarks import metrics
from wmgym.benchmarks.common import BenchmarkRun, add_common_args, line_plot, md_table, set_torch_threads
from wmgym.benchmarks.gold import gold_episodes, read_gold
from wmgym.benchmarks.models import add_model_args, describe_models, load_models, model_names, wm_settings
from wmgym.benchmarks.published import PUBLISHED_EM
from wmgym.envs import heldout_split


@dataclasses.dataclass
class FidelityConfig:
    """Settings of a fidelity run."""

    envs: list[str] = dataclasses.field(default_factory=lambda: ["TextWorld-v0"])
    """Real env ids whose twins are measured."""
    episodes: int = 40
    """Gold test-split episodes per env (split evenly over --policies)."""
    policies: list[str] = dataclasses.field(default_factory=lambda: ["expert", "noisy-expert:0.3"])
    """Scripted policies that roll the gold episodes."""
    split: str | None = None
    """Split the gold episodes come from (default: test, or valid_unseen where the env has no test split)."""
    trajectories: list[str] = dataclasses.field(default_factory=list)
    """Read gold episodes from these files instead of collecting them."""
    batch: int = 8
    """Episodes stepped together (step_batch)."""
    max_steps: int | None = None
    """Score at most this many steps per episode (default: all)."""
    seed: int = 0
    """Seed of the gold collection."""
    workers: int = 1
    """Processes collecting gold episodes."""

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")
        if self.batch < 1:
            raise ValueError(f"batch must be >= 1, got {self.batch}")
        if not self.envs:
            raise ValueError("give at least one env (--env ID)")
        if not self.policies and not self.trajectories:
            raise ValueError("give --policies to collect gold episodes, or --trajectories FILE")


@dataclasses.dataclass
class StepScore:
    env: str
    policy: str
    game_id: str
    step: int
    action: str
    em: bool
    f1: float
    parse_error: str | None
    prediction: str
    gold: str


def score_episodes(wm: Any, episodes: list, *, batch: int = 8, max_steps: int | None = None) -> list[StepScore]:
    """Teacher-forced predictions of every step of ``episodes`` (see module docstring)."""
    scores: list[StepScore] = []
    for b in range(0, len(episodes), batch):
        chunk = episodes[b:b + batch]
        handles = [wm.start(ep.init_context) for ep in chunk]
        try:
            horizon = max(len(ep.steps) for ep in chunk)
            if max_steps is not None:
                horizon = min(horizon, max_steps)
            for t in range(horizon):
                live = [i for i, ep in enumerate(chunk) if t < len(ep.steps)]
                preds = wm.step_batch([handles[i] for i in live], [chunk[i].steps[t].action for i in live])
                for i, pred in zip(live, preds):
                    ep = chunk[i]
                    won_here = ep.won and ep.steps[t].terminated and t == len(ep.steps) - 1
                    gold = metrics.gold_text(ep.steps[t].observation, won_here)
                    scores.append(StepScore(ep.env_id, ep.policy, ep.game_id, t + 1, ep.steps[t].action,
                                            metrics.exact_match(pred.text, gold), metrics.token_f1(pred.text, gold),
                                            pred.parse_error, pred.text, gold))
                    wm.replace_last(handles[i], gold)
        finally:
            for h in handles:
                wm.end(h)
    return scores


def action_kind(action: str) -> str:
    """The command verb of an action ("go to desk 1" -> "go"; a JSON tool call: its tool name): what a
    per-action breakdown groups by."""
    if action.lstrip().startswith("{"):
        import json

        try:
            call = json.loads(action)
        except json.JSONDecodeError:
            call = None
        if isinstance(call, dict):
            return str(call.get("name") or call.get("api_name") or ("message" if "message" in call else "{...}"))
    words = action.split()
    return words[0].lower() if words else "(empty)"


def summarise(scores: list[StepScore]) -> dict[str, Any]:
    """EM and F1 overall, per policy, per step index and per action verb.

    The per-action blocks say which dynamics a twin has learnt: a tiny twin, for
    example, gets ALFWorld's local rules ("take", "close") right but not the
    steps that must look an object list up in the initial state ("go", "open").
    """
    def block(rows: list[StepScore]) -> dict[str, Any]:
        out = {"em": metrics.mean([float(r.em) for r in rows]), "f1": metrics.mean([r.f1 for r in rows]),
               "steps": len(rows), "exact": sum(r.em for r in rows),
               "parse_errors": sum(r.parse_error is not None for r in rows)}
        fields = [f for f in (metrics.json_fields(r.prediction, r.gold) for r in rows) if f is not None]
        if fields:  # JSON answers (tool envs): does the prediction parse, which keys match
            out["json"] = {"steps": len(fields), "parses": metrics.mean([float(f["parses"]) for f in fields]),
                           "keys": metrics.mean([f["keys"] for f in fields]),
                           "per_key": {k: metrics.mean([float(k in f["matched"]) for f in fields
                                                        if k in f["gold_keys"]])
                                       for k in sorted({k for f in fields for k in f["gold_keys"]})}}
        return out

    def with_differences(rows: list[StepScore]) -> dict[str, Any]:
        return {**block(rows), "first_differences": first_differences(rows)}

    by_policy, by_step, by_action = defaultdict(list), defaultdict(list), defaultdict(list)
    for r in scores:
        by_policy[r.policy].append(r)
        by_step[r.step].append(r)
        by_action[action_kind(r.action)].append(r)
    most_frequent_first = sorted(by_action.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return {**block(scores), "episodes": len({(r.policy, r.game_id) for r in scores}),
            "per_policy": {p: block(rows) for p, rows in sorted(by_policy.items())},
            "per_step": {str(s): block(rows) for s, rows in sorted(by_step.items())},
            "per_action": {a: with_differences(rows) for a, rows in most_frequent_first}}


#: Buckets of :func:`first_differences`: where in the observation (in words) the wrong steps go wrong.
DIFF_BUCKETS = ((0, 0, "0"), (1, 4, "1-4"), (5, 19, "5-19"), (20, None, "20+"))


def _bucket(at: int) -> str:
    return next(name for lo, hi, name in DIFF_BUCKETS if at >= lo and (hi is None or at <= hi))


def first_differences(rows: list[StepScore], top: int = 3) -> dict[str, Any]:
    """Where the wrong steps of ``rows`` first leave the gold text (:func:`metrics.first_difference`).

    ``at``: how many wrong steps differ from word 0, 1-4, 5-19 or 20+ on; ``common``: the ``top`` most frequent
    (word before, gold word, predicted word) triples with their counts. A go step that names the wrong room
    shows as ``["-=", "Pantry", "Kitchen", n]``; a twin that stops before a score line as ``[".", "\\n",
    "(end)", n]``."""
    at = {name: 0 for _, _, name in DIFF_BUCKETS}
    triples: dict[tuple[str, str, str], int] = defaultdict(int)
    for r in rows:
        d = metrics.first_difference(r.prediction, r.gold)
        if d is None:
            continue
        at[_bucket(d.at)] += 1
        triples[(d.before.rsplit(" ", 1)[-1], d.gold, d.predicted)] += 1
    common = sorted(triples.items(), key=lambda kv: -kv[1])[:top]  # stable: first seen wins a tie
    return {"at": at, "common": [[*k, n] for k, n in common]}


def run(cfg: FidelityConfig, models: dict[str, Any], out: str | None = None, run_name: str | None = None,
        model_desc: dict[str, str] | None = None, argv: list[str] | None = None) -> BenchmarkRun:
    """Measure every env of ``cfg`` with its model in ``models`` and write the results."""
    bench = BenchmarkRun("fidelity", config=cfg, seeds={"gold_collection": cfg.seed}, out=out, run_name=run_name,
                         argv=argv)
    results: dict[str, Any] = {"models": model_desc or {}, "envs": {}}
    mismatches: dict[str, list[StepScore]] = {}
    for env in cfg.envs:
        if cfg.trajectories:
            eps = read_gold(cfg.trajectories, [env])[: cfg.episodes]
        else:
            eps = gold_episodes(env, cfg.episodes, policies=tuple(cfg.policies), split=heldout_split(env, cfg.split),
                                seed=cfg.seed,
                                workers=cfg.workers)
        if not eps:
            raise ValueError(f"no gold episodes of {env} (check --trajectories / --policies)")
        t0 = time.perf_counter()
        scores = score_episodes(models[env], eps, batch=cfg.batch, max_steps=cfg.max_steps)
        elapsed = time.perf_counter() - t0
        summary = summarise(scores)
        summary.update(seconds=round(elapsed, 2), steps_per_s=len(scores) / elapsed if elapsed else None,
                       published_7b_em=PUBLISHED_EM.get(env))
        results["envs"][env] = summary
        mismatches[env] = [s for s in scores if not s.em][:3]
        print(f"{env}: EM {100 * (summary['em'] or 0):.2f}% ({summary['exact']}/{summary['steps']} steps, "
              f"{summary['episodes']} episodes), token F1 {summary['f1']:.3f}, {elapsed:.1f} s", flush=True)
    _plot(bench, results)
    bench.finish(results, _markdown(results, mismatches, bench.figures))
    print(f"results in {bench.path}")
    return bench


#: Step indices scored fewer times than this are left out of the plots (a handful of steps is noise).
MIN_STEPS_PLOTTED = 5


def _plot(bench: BenchmarkRun, results: dict[str, Any]) -> None:
    series_em, series_f1 = {}, {}
    for env, s in results["envs"].items():
        kept = {k: v for k, v in s["per_step"].items() if v["steps"] >= MIN_STEPS_PLOTTED} or s["per_step"]
        xs = [int(k) for k in kept]
        series_em[env] = (xs, [100 * v["em"] for v in kept.values()])
        series_f1[env] = (xs, [v["f1"] for v in kept.values()])
    note = f" (indices scored >= {MIN_STEPS_PLOTTED} times)"
    line_plot(bench.add_figure("em_per_step.png"), series_em, title="Teacher-forced single-step EM by step index"
              + note, xlabel="step index", ylabel="exact match (%)", ylim=(0, 101))
    line_plot(bench.add_figure("f1_per_step.png"), series_f1, title="Token F1 by step index" + note,
              xlabel="step index", ylabel="token F1", ylim=(0, 1.01))


def _markdown(results: dict[str, Any], mismatches: dict[str, list[StepScore]], figures: list[str]) -> str:
    rows = [[env, f"{100 * s['em']:.2f}", f"{s['f1']:.3f}", s["steps"], s["episodes"], s["parse_errors"],
             s["published_7b_em"] if s["published_7b_em"] is not None else "n/a", results["models"].get(env, "")]
            for env, s in results["envs"].items()]
    parts = ["Teacher-forced single-step exact match (after `strip()`, success marker included) and token F1 "
             "on gold test-split episodes.", "",
             md_table(["env", "EM (%)", "token F1", "steps", "episodes", "parse errors", "published 7B EM (%)",
                       "model"], rows), ""]
    json_rows = [[env, s["json"]["steps"], f"{100 * s['json']['parses']:.1f}", f"{s['json']['keys']:.3f}",
                  ", ".join(f"{k} {100 * v:.1f}%" for k, v in s["json"]["per_key"].items())]
                 for env, s in results["envs"].items() if "json" in s]
    if json_rows:
        parts += ["JSON answers (tool envs): the share of predictions that parse as a JSON object and of the gold "
                  "answer's keys whose values they match.", "",
                  md_table(["env", "JSON steps", "parses (%)", "keys matched", "per key"], json_rows), ""]
    for env, s in results["envs"].items():
        prow = [[p, f"{100 * v['em']:.2f}", f"{v['f1']:.3f}", v["steps"]] for p, v in s["per_policy"].items()]
        parts += [f"### {env} by gold policy", "", md_table(["policy", "EM (%)", "token F1", "steps"], prow), ""]
        arow = [[a, f"{100 * v['em']:.2f}", f"{v['f1']:.3f}", v["steps"],
                 " / ".join(str(n) for n in v["first_differences"]["at"].values()),
                 "; ".join(f"{_unit(b)} {_unit(g)} -> {_unit(p)} ({n})"
                           for b, g, p, n in v["first_differences"]["common"])]
                for a, v in s["per_action"].items()]
        buckets = " / ".join(name for _, _, name in DIFF_BUCKETS)
        parts += [f"### {env} by action", "",
                  "Wrong steps by the word where the prediction first leaves the gold text, and the most common "
                  "(word before, gold -> predicted) there.", "",
                  md_table(["action", "EM (%)", "token F1", "steps", f"first difference at word {buckets}",
                            "most common first differences"], arow), ""]
    parts += [f"![{f}]({f})" for f in figures] + [""]
    for env, rows in mismatches.items():
        if rows:
            parts += [f"### {env}: first mismatches", ""]
            for r in rows:
                parts += [f"- {r.game_id} step {r.step} ({r.policy}): predicted `{_short(r.prediction)}` / "
                          f"gold `{_short(r.gold)}`"]
            parts.append("")
    return "\n".join(parts)


def _unit(u: str) -> str:
    """A unit of :func:`metrics.first_difference` as Markdown code (line breaks shown as ``\\n``; nothing before
    the first word as ``(start)``)."""
    if not u:
        return "(start)"
    return "`" + u.replace("\n", "\\n").replace("`", "'").replace("|", "\\|") + "`"


def _short(text: str, n: int = 160) -> str:
    text = " ".join(text.split()).replace("`", "'")
    return text if len(text) <= n else text[: n - 3] + "..."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--env", action="append", default=None, help="real env id (repeatable; default TextWorld-v0)")
    p.add_argument("--episodes", type=int, default=40, help="gold test-split episodes per env")
    p.add_argument("--policies", default="expert,noisy-expert:0.3", help="comma-separated gold policies")
    p.add_argument("--split", default=None, help="gold split (default: test, or valid_unseen for ALFWorld)")
    p.add_argument("--trajectories", action="append", default=[], help="gold trajectory file (repeatable)")
    p.add_argument("--batch", type=int, default=8, help="episodes stepped together")
    p.add_argument("--max-steps", type=int, default=None, help="score at most this many steps per episode")
    p.add_argument("--workers", type=int, default=1, help="processes collecting gold episodes")
    add_model_args(p)
    add_common_args(p)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="wmgym bench fidelity", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    args = p.parse_args(argv)
    set_torch_threads()
    import wmgym  # noqa: F401 - registers ids

    envs = args.env or ["TextWorld-v0"]
    cfg = FidelityConfig(envs=envs, episodes=args.episodes, policies=[s for s in args.policies.split(",") if s],
                         split=args.split, trajectories=args.trajectories, batch=args.batch, max_steps=args.max_steps,
                         seed=args.seed, workers=args.workers)
    names = model_names(args.model, envs)
    backend, wm_kwargs = wm_settings(args)
    models = load_models(names, backend, **wm_kwargs)
    run(cfg, models, out=args.out, run_name=args.run_name, model_desc=describe_models(names, backend),
        argv=None if argv is None else ["wmgym", "bench", "fidelity", *argv])
    return 0


if __name__ == "__main__":
    sys.exit(main())
