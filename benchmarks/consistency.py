"""Long-horizon consistency: Real, WM, W2R and CR = W2R / Real per env and agent.

``python -m wmgym.benchmarks.consistency --env TextWorld-v0 --games 20``
(or ``wmgym bench consistency ...``)

For every env, agent and test game ``k`` (``--games`` of them, spread evenly
over the split so SciWorld's games cover all its tasks; seed ``seed + k``):

- **Real**: the agent plays the real env; success = the real env is won.
- **WM**: the agent plays the twin (``WM-<env>``) on the same game; success =
  the twin's success marker.
- **W2R**: the twin episode's actions are replayed in the real env, same
  game (:class:`~wmgym.wrappers.W2RReplay`); success = the real env is won.
- **CR** = W2R / Real (undefined when Real = 0, see
  :func:`~wmgym.benchmarks.metrics.consistency_ratio`).

The agents are observation-only (:mod:`wmgym.agents`), so they
play real env and twin alike; their noise levels give a spread of skill.

``--anchoring 1,5,10`` adds the anchoring study: the agent plays the twin
wrapped in :class:`~wmgym.wrappers.RealAnchoring` (the real env steps beside
it; every k steps the twin's last turn is replaced by the real observation),
and the share of steps where the twin's own prediction equals the real
observation is reported for each k, next to no anchoring.

``--ray [ADDRESS]`` plays the (env, agent, game) episodes on the Ray worker pool
(:mod:`wmgym.training.distributed`, ``--workers`` actors), each actor loading its
own copy of the twin's model (or client: ``--wm-endpoint URL`` repeated spreads
the twins over several servers); the rows are the ones the single-process run
writes. The anchoring study stays in this process.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from typing import Any

from wmgym.agents import make_agent, parse_spec, play
from wmgym.benchmarks import metrics
from wmgym.benchmarks.common import (BenchmarkRun, add_common_args, bar_plot, fmt, line_plot, md_table,
                                     set_torch_threads)
from wmgym.benchmarks.gold import spread_games
from wmgym.benchmarks.models import (add_model_args, describe_models, load_models, model_names, parse_kv,
                                     wm_settings)
from wmgym.benchmarks.published import PUBLISHED_CR
from wmgym.envs import heldout_split, twin_id

NO_ANCHOR = 10**9  # "every" that never comes: the twin runs free, the real env only watches


@dataclasses.dataclass
class ConsistencyConfig:
    """Settings of a consistency run."""

    envs: list[str] = dataclasses.field(default_factory=lambda: ["TextWorld-v0"])
    """Real env ids."""
    agents: list[str] = dataclasses.field(default_factory=lambda: ["scripted", "scripted:0.2", "scripted:0.5",
                                                                    "random"])
    """Observation-only agent specs (random | scripted | scripted:EPS | react; see wmgym.agents.factory)."""
    games: int = 200
    """Test games per env, spread evenly over the split (all of it when it holds fewer)."""
    split: str | None = None
    """Split the games come from (default: test, or valid_unseen where the env has no test split)."""
    game_list: list[int] | None = None
    """Play exactly these game indices instead of --games spread over the split."""
    seed: int = 0
    """Game k is played with seed + k (agent randomness included)."""
    max_steps: int | None = None
    """Step limit per episode (default: the env's registered limit)."""
    anchoring: list[int] = dataclasses.field(default_factory=list)
    """Anchoring periods k for the RealAnchoring study (empty: skip it)."""
    anchoring_games: int | None = None
    """Games per env for the anchoring study (default: --games)."""
    real_only: bool = False
    """Measure only Real (agents in the real env; no model needed): calibrates the agents' spread of skill."""
    ray: str | None = None
    """Play the episodes on Ray actors: ``"local"`` (a private cluster on this machine) or a cluster address."""
    workers: int = 2
    """Ray actors (with ``ray``)."""

    def __post_init__(self) -> None:
        if self.games < 1:
            raise ValueError(f"games must be >= 1, got {self.games}")
        if not self.envs or not self.agents:
            raise ValueError("give at least one env (--env) and one agent (--agents)")
        for spec in self.agents:  # fail now on a bad spec, or one that reads the engine a twin lacks
            parse_spec(spec)
        bad = [k for k in self.anchoring if k < 1]
        if bad:
            raise ValueError(f"anchoring periods must be >= 1, got {bad}")


def _make(env_id: str, cfg: ConsistencyConfig, split: str, **kwargs: Any):
    import gymnasium as gym

    if cfg.max_steps is not None:
        kwargs["max_episode_steps"] = cfg.max_steps
    return gym.make(env_id, split=split, **kwargs)


def play_game(real, twin, agent_spec: str, env_id: str, k: int, seed: int,
              react_kwargs: dict[str, Any]) -> dict[str, Any]:
    """One game's row: the agent in the real env, then (``twin`` not None) in the W2RReplay-wrapped twin."""
    options = {"game": k}
    agent = make_agent(agent_spec, env_id, **react_kwargs)
    r = play(real, agent, seed=seed + k, options=options)
    if twin is None:
        return {"game": k, "game_id": r["game_id"], "real_won": r["won"], "real_steps": r["steps"]}
    agent = make_agent(agent_spec, env_id, **react_kwargs)
    w = play(twin, agent, seed=seed + k, options=options)
    info = w["last_info"]
    if "w2r_won" not in info:  # pragma: no cover - W2RReplay always reports at the episode end
        raise RuntimeError("W2RReplay did not report w2r_won at the end of the twin episode")
    return {"game": k, "game_id": r["game_id"], "real_won": r["won"], "real_steps": r["steps"],
            "wm_won": w["won"], "wm_steps": w["steps"], "w2r_won": bool(info["w2r_won"]),
            "first_divergence": info.get("w2r_first_divergence"),
            "same_actions": r["actions"] == w["actions"],
            "wm_parse_errors": sum(i.get("wm_parse_error") is not None for i in w["infos"][1:])}


def measure_agent(real, twin, agent_spec: str, env_id: str, games: list[int], seed: int,
                  react_kwargs: dict[str, Any], rows: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Real, WM and W2R of one agent on ``games`` (``twin`` is wrapped in W2RReplay; ``None``: Real only);
    ``rows`` already played (on Ray workers) are summarised as they are."""
    if rows is None:
        rows = [play_game(real, twin, agent_spec, env_id, k, seed, react_kwargs) for k in games]
    real_rate = metrics.success_rate(x["real_won"] for x in rows)
    if twin is None:
        return {"real": real_rate, "wm": None, "w2r": None, "cr": None, "cr_note": "real env only (--real-only)",
                "mean_real_steps": metrics.mean([x["real_steps"] for x in rows]), "games": rows}
    wm_rate = metrics.success_rate(x["wm_won"] for x in rows)
    w2r_rate = metrics.success_rate(x["w2r_won"] for x in rows)
    div = [x["first_divergence"] for x in rows if x["first_divergence"] is not None]
    return {"real": real_rate, "wm": wm_rate, "w2r": w2r_rate,
            "cr": metrics.consistency_ratio(w2r_rate, real_rate), "cr_note": metrics.cr_note(real_rate),
            "mean_real_steps": metrics.mean([x["real_steps"] for x in rows]),
            "mean_wm_steps": metrics.mean([x["wm_steps"] for x in rows]),
            "mean_first_divergence": metrics.mean(div), "never_diverged": sum(x["first_divergence"] is None
                                                                               for x in rows),
            "same_actions": sum(x["same_actions"] for x in rows), "games": rows}


def measure_anchoring(twin, agent_spec: str, env_id: str, games: list[int], seed: int, every: int | None,
                      react_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Twin-vs-real agreement of one agent with RealAnchoring every ``every`` steps (None: never)."""
    from wmgym.wrappers import RealAnchoring

    env = RealAnchoring(twin, every=every or NO_ANCHOR)
    agreed = steps = anchors = 0
    won = []
    for k in games:
        out = play(env, make_agent(agent_spec, env_id, **react_kwargs), seed=seed + k, options={"game": k})
        for info in out["infos"][1:]:
            if info.get("agreed") is not None:
                steps += 1
                agreed += bool(info["agreed"])
                anchors += bool(info.get("anchored") and info.get("anchor_reason") == "every")
        won.append(out["won"])
    return {"every": every, "agreement": agreed / steps if steps else None, "steps": steps, "agreed": agreed,
            "anchors": anchors, "won": metrics.success_rate(won)}


_REMOTE: dict[str, tuple[Any, Any, Any]] = {}  # a Ray worker's envs and model, kept between its jobs


def _play_remote(job: tuple) -> tuple[str, int, dict[str, Any], dict[str, Any]]:
    """A Ray job: one game of one agent, on this worker's envs (made, and the model loaded, on first use)."""
    import json

    from wmgym.wrappers import W2RReplay

    cfg, env_id, split, spec, k, model_spec, react_kwargs = job
    key = json.dumps([env_id, split, cfg.max_steps, model_spec], sort_keys=True, default=str)
    if key not in _REMOTE:
        model = twin = None
        if model_spec is not None:
            from wmgym.worldmodels import load_world_model

            name, backend, kwargs = model_spec
            model = load_world_model(name, backend=backend, **kwargs)
            twin = W2RReplay(_make(twin_id(env_id), cfg, split, model=model))
        _REMOTE[key] = (_make(env_id, cfg, split), twin, model)
    real, twin, model = _REMOTE[key]
    return spec, k, play_game(real, twin, spec, env_id, k, cfg.seed, react_kwargs), _traffic(model)


def _traffic(model: Any) -> dict[str, Any]:
    """Take an openai-backend model's endpoint counts and failures since the last call (others: none)."""
    if not hasattr(model, "endpoint_failures"):
        return {}
    failures = model.endpoint_failures[:]
    del model.endpoint_failures[: len(failures)]
    requests = dict(model.requests_per_endpoint)
    for url in requests:
        model.requests_per_endpoint[url] -= requests[url]
    return {"requests": requests, "failures": failures}


def _add_traffic(total: dict[str, Any], part: dict[str, Any]) -> None:
    for url, n in part.get("requests", {}).items():
        total["requests"][url] = total["requests"].get(url, 0) + n
    for f in part.get("failures", []):
        total["failures"][f["url"]] = total["failures"].get(f["url"], 0) + 1
        if len(total["failure_log"]) < 20:
            total["failure_log"].append(f)


def model_specs(names: dict[str, str | None], backend: str, kwargs: dict[str, Any]) -> dict[str, tuple]:
    """What each Ray worker loads for each env: (model, backend, settings), the embedded default spelled out."""
    from wmgym.worldmodels.loading import default_model_dir

    return {env: (name if name is not None or backend == "openai" else str(default_model_dir(env)), backend, kwargs)
            for env, name in names.items()}


def _play_on_pool(pool, cfg: ConsistencyConfig, env_id: str, split: str, games: list[int], model_spec,
                  react_kwargs: dict[str, Any], traffic: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every (agent, game) of one env on the Ray pool; rows per agent in the order of ``games``."""
    jobs = [(cfg, env_id, split, spec, k, model_spec, react_kwargs) for spec in cfg.agents for k in games]
    played = {}
    for spec, k, row, part in pool.imap_unordered(_play_remote, jobs):
        played[spec, k] = row
        _add_traffic(traffic, part)
    return {spec: [played[spec, k] for k in games] for spec in cfg.agents}


def run(cfg: ConsistencyConfig, models: dict[str, Any], *, out: str | None = None, run_name: str | None = None,
        model_desc: dict[str, str] | None = None, react_kwargs: dict[str, Any] | None = None,
        argv: list[str] | None = None, specs: dict[str, tuple] | None = None) -> BenchmarkRun:
    """Run the whole study and write its results (``specs``: what Ray workers load, see :func:`model_specs`)."""
    react_kwargs = react_kwargs or {}
    bench = BenchmarkRun("consistency", config=cfg, seeds={"base": cfg.seed, "game_k": "seed + k"}, out=out,
                         run_name=run_name, argv=argv)
    results: dict[str, Any] = {"models": model_desc or {}, "envs": {}, "anchoring": {}}
    traffic: dict[str, Any] = {"requests": {}, "failures": {}, "failure_log": []}
    pool = None
    if cfg.ray is not None:
        from wmgym.training.distributed import WorkerPool

        if not cfg.real_only and specs is None:
            raise ValueError("a Ray run needs specs= (what each worker loads; see model_specs)")
        pool = WorkerPool(cfg.workers, cfg.ray)
    try:
        _run_envs(cfg, models, results, traffic, pool, specs, react_kwargs)
    finally:
        if pool is not None:
            pool.close()
    for model in {id(m): m for m in models.values()}.values():
        _add_traffic(traffic, _traffic(model))
    if traffic["requests"] or traffic["failures"]:
        results["wm_endpoints"] = traffic
        for url, n in traffic["failures"].items():
            print(f"warning: world-model endpoint {url} failed {n} time(s); those requests went to the other "
                  f"endpoints (results: wm_endpoints)", file=sys.stderr, flush=True)
    _plots(bench, results)
    bench.finish(results, _markdown(results, bench.figures))
    print(f"results in {bench.path}")
    return bench


def _run_envs(cfg: ConsistencyConfig, models: dict[str, Any], results: dict[str, Any], traffic: dict[str, Any],
              pool, specs: dict[str, tuple] | None, react_kwargs: dict[str, Any]) -> None:
    """The per-env part of :func:`run`: rows on the pool (or here), summaries, the anchoring study."""
    from wmgym.wrappers import W2RReplay

    for env_id in cfg.envs:
        split = heldout_split(env_id, cfg.split)
        real = _make(env_id, cfg, split)
        twin = None if cfg.real_only else W2RReplay(_make(twin_id(env_id), cfg, split, model=models[env_id]))
        games = cfg.game_list or spread_games(real.unwrapped.num_games(split), cfg.games)
        n = len(games)
        real.unwrapped.prepare_games(split, games, progress=False)
        env_res: dict[str, Any] = {"games": n, "split": split, "published_7b_cr": PUBLISHED_CR.get(env_id), "agents": {}}
        remote: dict[str, list[dict[str, Any]]] = {}
        if pool is not None:
            t0 = time.perf_counter()
            remote = _play_on_pool(pool, cfg, env_id, split, games, None if cfg.real_only else specs[env_id],
                                   react_kwargs, traffic)
            per_agent = (time.perf_counter() - t0) / len(cfg.agents)  # the agents ran interleaved: a fair share
        for spec in cfg.agents:
            t0 = time.perf_counter()
            res = measure_agent(real, twin, spec, env_id, games, cfg.seed, react_kwargs, rows=remote.get(spec))
            res["seconds"] = round(per_agent if pool is not None else time.perf_counter() - t0, 2)
            env_res["agents"][spec] = res
            print(f"{env_id} {spec:>14}: Real {res['real']}  WM {res['wm'] or '-'}  W2R {res['w2r'] or '-'}  "
                  f"CR {fmt(res['cr'])}  ({res['seconds']:.0f} s)", flush=True)
        w2r_pairs = [(a["w2r"], a["real"]) for a in env_res["agents"].values() if a["w2r"] is not None]
        env_res["pooled_cr"] = metrics.pooled_consistency_ratio(w2r_pairs)
        results["envs"][env_id] = env_res
        if cfg.anchoring and twin is not None:
            core = twin.env  # the twin without W2RReplay
            ag_games = games[: cfg.anchoring_games or n]
            study: dict[str, Any] = {}
            for spec in cfg.agents:
                study[spec] = [measure_anchoring(core, spec, env_id, ag_games, cfg.seed, every, react_kwargs)
                               for every in [None, *cfg.anchoring]]
                print(f"{env_id} {spec:>14} agreement: " + ", ".join(
                    f"{'none' if r['every'] is None else r['every']}: {fmt(r['agreement'])}" for r in study[spec]),
                    flush=True)
            results["anchoring"][env_id] = study
        real.close()
        if twin is not None:
            twin.close()


def _plots(bench: BenchmarkRun, results: dict[str, Any]) -> None:
    for env_id, env_res in results["envs"].items():
        agents = list(env_res["agents"])
        bars = {m: [100 * (env_res["agents"][a][m].value or 0.0) if env_res["agents"][a][m] is not None else 0.0
                    for a in agents] for m in ("real", "wm", "w2r")}
        bar_plot(bench.add_figure(f"success_{env_id}.png"), agents, {"Real": bars["real"], "WM": bars["wm"],
                                                                     "W2R": bars["w2r"]},
                 title=f"{env_id}: success per agent", ylabel="success (%)", ylim=(0, 100))
    for env_id, study in results["anchoring"].items():
        series = {}
        for spec, rows in study.items():
            xs = [r["every"] for r in rows if r["every"] is not None]
            series[spec] = (xs, [None if r["agreement"] is None else 100 * r["agreement"]
                                 for r in rows if r["every"] is not None])
        line_plot(bench.add_figure(f"anchoring_{env_id}.png"), series, xlabel="anchor every k steps",
                  ylabel="twin = real (% of steps)", title=f"{env_id}: agreement under RealAnchoring",
                  ylim=(0, 101))


def _markdown(results: dict[str, Any], figures: list[str]) -> str:
    parts = ["Success rates as in Word2World's Table 2: **Real** (agent in the real env), **WM** (agent in the "
             "twin), **W2R** (the twin episodes' actions replayed in the real env), **CR** = W2R / Real.", ""]
    rows = []
    for env_id, env_res in results["envs"].items():
        for spec, a in env_res["agents"].items():
            rows.append([env_id, spec, str(a["real"]), str(a["wm"] or "-"), str(a["w2r"] or "-"), fmt(a["cr"]),
                         fmt(a.get("mean_first_divergence"), 1), a["cr_note"] or ""])
        pub = env_res["published_7b_cr"]
        rows.append([env_id, "**all agents (pooled)**", "", "", "", fmt(env_res["pooled_cr"]), "",
                     f"published 7B CR: {pub}" if pub is not None else ""])
    parts += [md_table(["env", "agent", "Real", "WM", "W2R", "CR", "mean first divergence (step)", "note"], rows),
              ""]
    for env_id, study in results["anchoring"].items():
        parts += [f"### Anchoring study: {env_id}", "",
                  "Share of steps where the twin's own prediction equals the real observation (after `strip()`, "
                  "same win flag) while the agent plays the twin with RealAnchoring every k steps.", ""]
        heads = ["agent"] + [("none" if r["every"] is None else f"every {r['every']}") for r in
                             next(iter(study.values()))]
        parts += [md_table(heads, [[spec] + [f"{fmt(r['agreement'], 3)} ({r['agreed']}/{r['steps']})" for r in rows]
                                   for spec, rows in study.items()]), ""]
    parts += [f"![{f}]({f})" for f in figures]
    return "\n".join(parts)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--env", action="append", default=None, help="real env id (repeatable; default TextWorld-v0)")
    p.add_argument("--agents", default="scripted,scripted:0.2,scripted:0.5,random",
                   help="comma-separated agents: random | scripted | scripted:EPS | react")
    p.add_argument("--games", type=int, default=200, help="test games per env")
    p.add_argument("--split", default=None, help="game split (default: test, or valid_unseen for ALFWorld)")
    p.add_argument("--game-list", default=None, help="comma-separated game indices to play instead of --games spread over the split")
    p.add_argument("--max-steps", type=int, default=None, help="step limit per episode (default: the env's)")
    p.add_argument("--anchoring", default="", help="RealAnchoring periods to study, e.g. 1,5,10 (default: skip)")
    p.add_argument("--anchoring-games", type=int, default=None, help="games per env for the anchoring study")
    p.add_argument("--real-only", action="store_true", help="measure Real only (no model): the agents' skill spread")
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="play the episodes on Ray actors: alone, a private local cluster; with an "
                        "address (auto, HOST:6379), that cluster (pip install 'wmgym[dist]'; docs/scaling.md)")
    p.add_argument("--workers", type=int, default=2, help="Ray actors with --ray (one CPU each)")
    p.add_argument("--agent-url", default=None, help="react: OpenAI-compatible base URL (e.g. http://host:8000/v1)")
    p.add_argument("--agent-model", default=None, help="react: served model name, or a local HF model directory")
    p.add_argument("--agent-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="react: more agent settings (api_key, max_tokens, history, ...)")
    add_model_args(p)
    add_common_args(p)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="wmgym bench consistency", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    args = p.parse_args(argv)
    set_torch_threads()
    import wmgym  # noqa: F401 - registers ids

    envs = args.env or ["TextWorld-v0"]
    cfg = ConsistencyConfig(envs=envs, agents=[a for a in args.agents.split(",") if a], games=args.games,
                            split=args.split, seed=args.seed, max_steps=args.max_steps,
                            game_list=[int(g) for g in args.game_list.split(",")] if args.game_list else None,
                            anchoring=[int(k) for k in args.anchoring.split(",") if k],
                            anchoring_games=args.anchoring_games, real_only=args.real_only, ray=args.ray,
                            workers=args.workers)
    react_kwargs = {"url": args.agent_url, "model": args.agent_model, **parse_kv(args.agent_arg)}
    if "react" in cfg.agents and not args.agent_model:
        raise ValueError("--agents react needs --agent-model (a served model name with --agent-url, "
                         "or a local HF model directory)")
    names = model_names(args.model, envs)
    backend, wm_kwargs = wm_settings(args)
    models = {} if cfg.real_only else load_models(names, backend, **wm_kwargs)
    run(cfg, models, out=args.out, run_name=args.run_name, specs=model_specs(names, backend, wm_kwargs),
        model_desc={} if cfg.real_only else describe_models(names, backend),
        react_kwargs={k: v for k, v in react_kwargs.items() if v is not None},
        argv=None if argv is None else ["wmgym", "bench", "consistency", *argv])
    return 0


if __name__ == "__main__":
    sys.exit(main())
