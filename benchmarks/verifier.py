"""The action verifier: agents' success with the twin checking the irreversible action first (Word2World Table 4).

``python -m wmgym.benchmarks.verifier --env WebShop-v0 --games 200``
(or ``wmgym bench verifier ...``)

For every agent (scripted agents of three skill levels by default: ``scripted``,
``scripted:0.2``, ``scripted:0.5``), verification budget ``b`` (``--budgets``,
default 0, 2, 4, 10) and test game ``k`` (``--games`` of them, spread evenly
over the split; seed ``seed + k``), the agent plays the real env wrapped in
:class:`~wmgym.wrappers.ActionVerifier`: the env's irreversible actions (its
``irreversible_actions`` declaration; WebShop's ``click[buy now]``) are first
tried in the twin, and reach the real env only when the twin predicts success,
at most ``b`` times per episode (then they go through unchecked). Budget 0 is
the agent without a verifier.

Reported per agent and budget: success rate, mean episode reward,
verifications spent, irreversible actions blocked, and of those the **wrong
purchases prevented** (blocked actions whose real outcome would not have been a
win: reward < 1 on WebShop), the right ones blocked, and the irreversible
actions that reached the real env (and of them, those that did not win). The real outcome of a
blocked action is the counterfactual on a copy of the real env: a second real
env is reset to the same game and seed, the actions that reached the real env
so far are replayed in it, then the blocked action is played (the engines are
deterministic given game and seed; the replay is checked to end on the same
observation).

A blocked action returns the twin's predicted page with ``info["verified"] =
False`` and leaves the real env where it was; WebShop's scripted agent reads that
as "wrong product" and goes back to the results for the next best one. Blocked
steps do not reach the real env, so its step limit counts only the steps that did.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable
from typing import Any

from wmgym.agents import make_agent, parse_spec
from wmgym.benchmarks import metrics
from wmgym.benchmarks.common import BenchmarkRun, add_common_args, fmt, line_plot, md_table, set_torch_threads
from wmgym.benchmarks.gold import spread_games
from wmgym.benchmarks.models import add_model_args, describe_models, load_models, model_names, wm_settings
from wmgym.envs import env_class, heldout_split


@dataclasses.dataclass
class VerifierConfig:
    """Settings of a verifier run."""

    env: str = "WebShop-v0"
    """Real env id (it must declare ``irreversible_actions``)."""
    agents: list[str] = dataclasses.field(default_factory=lambda: ["scripted", "scripted:0.2", "scripted:0.5"])
    """Observation-only agent specs (scripted | scripted:EPS | random; see wmgym.agents.factory)."""
    budgets: list[int] = dataclasses.field(default_factory=lambda: [0, 2, 4, 10])
    """Verifications allowed per episode (0: no verifier)."""
    games: int = 200
    """Test games, spread evenly over the split (all of it when it holds fewer)."""
    split: str | None = None
    """Split the games come from (default: the env's held-out split)."""
    game_list: list[int] | None = None
    """Play exactly these game indices instead of --games spread over the split."""
    seed: int = 0
    """Game k is played with seed + k (agent randomness included)."""
    max_steps: int | None = None
    """Step limit per episode (default: the env's registered limit)."""
    verbs: list[str] | None = None
    """Verify actions whose first word is one of these (e.g. TextWorld's ``eat``) instead of the env's declared
    ``irreversible_actions`` (for envs that declare none)."""

    def __post_init__(self) -> None:
        if self.games < 1:
            raise ValueError(f"games must be >= 1, got {self.games}")
        if not self.agents or not self.budgets:
            raise ValueError("give at least one agent (--agents) and one budget (--budgets)")
        bad = [b for b in self.budgets if isinstance(b, bool) or not isinstance(b, int) or b < 0]
        if bad:
            raise ValueError(f"budgets must be ints >= 0, got {bad}")
        for spec in self.agents:  # fail now on a bad spec
            parse_spec(spec)


def irreversible_predicate(env_id: str) -> Callable[[str], bool]:
    """True for the env's declared irreversible actions (compared stripped and lowercased, as the envs read
    clickables and commands)."""
    declared = tuple(env_class(env_id).irreversible_actions)
    if not declared:
        raise ValueError(f"{env_id} declares no irreversible_actions (TextEnv.irreversible_actions), so there is "
                         "nothing to verify; envs that declare some: "
                         f"{sorted(e for e in _registered_real() if env_class(e).irreversible_actions)}")
    wanted = frozenset(a.strip().lower() for a in declared)

    def predicate(action: str) -> bool:
        return action.strip().lower() in wanted

    predicate.__name__ = f"one_of{tuple(sorted(wanted))}"
    return predicate


def _registered_real() -> list[str]:
    from wmgym.envs import real_id, registered_ids

    return [e for e in registered_ids() if e == real_id(e)]


def _make(env_id: str, cfg: VerifierConfig, split: str, **kwargs: Any):
    import gymnasium as gym

    if cfg.max_steps is not None:
        kwargs["max_episode_steps"] = cfg.max_steps
    return gym.make(env_id, split=split, **kwargs)


def counterfactual(shadow, seed: int, options: dict[str, Any], real_actions: list[str], action: str,
                   expected: str) -> tuple[float, bool]:
    """``(reward, won)`` of ``action`` played after ``real_actions`` in ``shadow`` (a fresh copy of the real env)."""
    obs, _ = shadow.reset(seed=seed, options=options)
    for a in real_actions:
        obs, *_ = shadow.step(a)
    if obs != expected:  # pragma: no cover - the engines are deterministic given game and seed
        raise RuntimeError("replaying the episode's actions in a copy of the real env did not reach the same "
                           "page; the counterfactual of the blocked action cannot be computed")
    _, reward, _, _, info = shadow.step(action)
    return float(reward), bool(info.get("won", False))


def play_game(env, shadow, agent_spec: str, env_id: str, k: int, seed: int) -> dict[str, Any]:
    """One game of one agent in the (verifier-wrapped) real env, with the counterfactual of each blocked action."""
    options = {"game": k}
    agent = make_agent(agent_spec, env_id)
    obs, info = env.reset(seed=seed + k, options=options)
    agent.reset(obs, info, seed + k, env=env)
    real_actions: list[str] = []
    real_obs = obs
    reward_sum, done, won = 0.0, False, False
    prevented = right_blocked = purchases = wrong = steps = 0
    while not done:
        action = agent.act(obs, info)
        obs, reward, terminated, truncated, info = env.step(action)
        steps += 1
        if info.get("verified") is False:  # blocked: the real env did not see it
            _, cf_won = counterfactual(shadow, seed + k, options, real_actions, action, real_obs)
            prevented += not cf_won
            right_blocked += cf_won
        else:
            real_actions.append(action)
            real_obs = obs
            won = bool(info.get("won", False))
            purchases += bool(info.get("irreversible"))
            wrong += bool(info.get("irreversible")) and not won
        reward_sum += float(reward)
        done = terminated or truncated
    verifier = env if hasattr(env, "used") else None
    return {"game": k, "game_id": info.get("game_id"), "won": won, "reward": reward_sum, "steps": steps,
            "verifications": verifier.used if verifier else 0, "blocked": verifier.blocked if verifier else 0,
            "prevented": prevented, "right_blocked": right_blocked, "irreversible_real": purchases,
            "wrong_real": wrong}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Success, mean reward and the verifier's counts over one (agent, budget)'s games."""
    total = {key: sum(r[key] for r in rows) for key in ("verifications", "blocked", "prevented", "right_blocked",
                                                           "irreversible_real", "wrong_real")}
    return {"success": metrics.success_rate(r["won"] for r in rows),
            "mean_reward": metrics.mean([r["reward"] for r in rows]),
            "mean_steps": metrics.mean([r["steps"] for r in rows]), **total, "games": rows}


def run(cfg: VerifierConfig, model: Any, *, out: str | None = None, run_name: str | None = None,
        model_desc: str | None = None, argv: list[str] | None = None) -> BenchmarkRun:
    """Play every agent at every budget and write the results (``model``: the twin's world model, a
    :class:`~wmgym.worldmodels.base.WorldModel` or a twin env)."""
    from wmgym.wrappers import ActionVerifier
    from wmgym.wrappers.verifier import first_word_in

    bench = BenchmarkRun("verifier", config=cfg, seeds={"base": cfg.seed, "game_k": "seed + k"}, out=out,
                         run_name=run_name, argv=argv)
    irreversible = first_word_in(*cfg.verbs) if cfg.verbs else irreversible_predicate(cfg.env)
    split = heldout_split(cfg.env, cfg.split)
    shadow = _make(cfg.env, cfg, split)  # the copy of the real env that plays the blocked actions
    games = cfg.game_list or spread_games(shadow.unwrapped.num_games(split), cfg.games)
    shadow.unwrapped.prepare_games(split, games, progress=False)
    results: dict[str, Any] = {"env": cfg.env, "split": split, "games": len(games), "model": model_desc,
                               "irreversible_actions": [f"{v} ..." for v in cfg.verbs] if cfg.verbs
                               else list(env_class(cfg.env).irreversible_actions),
                               "counterfactual": "replay in a copy of the real env", "agents": {}}
    for spec in cfg.agents:
        per_budget = {}
        for budget in cfg.budgets:
            t0 = time.perf_counter()
            env = ActionVerifier(_make(cfg.env, cfg, split), model, irreversible, budget=budget)
            res = summarise([play_game(env, shadow, spec, cfg.env, k, cfg.seed) for k in games])
            env.close()  # ends its twin chat and its real env
            res["seconds"] = round(time.perf_counter() - t0, 2)
            per_budget[budget] = res
            print(f"{cfg.env} {spec:>14} budget {budget:>3}: success {res['success']}  reward "
                  f"{fmt(res['mean_reward'], 3)}  blocked {res['blocked']} (wrong prevented {res['prevented']})  "
                  f"({res['seconds']:.0f} s)", flush=True)
        results["agents"][spec] = per_budget
    shadow.close()
    series = {spec: (list(b), [100 * (r["success"].value or 0.0) for r in b.values()])
              for spec, b in results["agents"].items()}
    line_plot(bench.add_figure(f"success_vs_budget_{cfg.env}.png"), series, xlabel="verification budget",
              ylabel="success (%)", title=f"{cfg.env}: success with the action verifier", ylim=(0, 101))
    bench.finish(results, _markdown(results, bench.figures))
    print(f"results in {bench.path}")
    return bench


def _markdown(results: dict[str, Any], figures: list[str]) -> str:
    parts = [f"Agents on {results['games']} {results['split']} games of {results['env']} with ActionVerifier on "
             f"{', '.join(f'`{a}`' for a in results['irreversible_actions'])} (twin: {results['model']}). "
             "Budget 0 is no verifier. **Prevented**: blocked actions whose real outcome would not have been a win; "
             "**right blocked**: blocked ones that would have won (the real outcome by replaying the episode in a "
             "copy of the real env).", ""]
    rows = []
    for spec, per_budget in results["agents"].items():
        for budget, r in per_budget.items():
            rows.append([spec, str(budget), str(r["success"]), fmt(r["mean_reward"], 3), str(r["verifications"]),
                         str(r["blocked"]), str(r["prevented"]), str(r["right_blocked"]),
                         str(r["irreversible_real"]), str(r["wrong_real"])])
    parts += [md_table(["agent", "budget", "success", "mean reward", "verifications", "blocked",
                        "wrong prevented", "right blocked", "irreversible actions played", "of them not won"],
                       rows), ""]
    parts += [f"![{f}]({f})" for f in figures]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="wmgym bench verifier", description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="WebShop-v0", help="real env id with irreversible_actions (default WebShop-v0)")
    p.add_argument("--agents", default="scripted,scripted:0.2,scripted:0.5",
                   help="comma-separated agents: scripted | scripted:EPS | random")
    p.add_argument("--budgets", default="0,2,4,10", help="comma-separated verification budgets per episode")
    p.add_argument("--games", type=int, default=200, help="test games")
    p.add_argument("--split", default=None, help="game split (default: the env's held-out split)")
    p.add_argument("--game-list", default=None, help="comma-separated game indices to play instead of --games")
    p.add_argument("--max-steps", type=int, default=None, help="step limit per episode (default: the env's)")
    p.add_argument("--verbs", default=None, help="comma-separated verbs to verify (actions whose first word is one "
                   "of them, e.g. eat for TextWorld) instead of the env's declared irreversible_actions")
    add_model_args(p)
    add_common_args(p)
    args = p.parse_args(argv)
    set_torch_threads()
    import wmgym  # noqa: F401 - registers ids

    try:
        budgets = [int(b) for b in args.budgets.split(",") if b.strip()]
    except ValueError:
        raise ValueError(f"--budgets must be comma-separated ints, e.g. 0,2,4,10; got {args.budgets!r}") from None
    cfg = VerifierConfig(env=args.env, agents=[a for a in args.agents.split(",") if a], budgets=budgets,
                         games=args.games, split=args.split, seed=args.seed, max_steps=args.max_steps,
                         game_list=[int(g) for g in args.game_list.split(",")] if args.game_list else None,
                         verbs=[v for v in args.verbs.split(",") if v.strip()] if args.verbs else None)
    if not cfg.verbs:
        irreversible_predicate(cfg.env)  # before loading a model: the env must declare what to verify
    names = model_names(args.model, [cfg.env])
    backend, wm_kwargs = wm_settings(args)
    model = load_models(names, backend, **wm_kwargs)[cfg.env]
    run(cfg, model, out=args.out, run_name=args.run_name, model_desc=describe_models(names, backend)[cfg.env],
        argv=None if argv is None else ["wmgym", "bench", "verifier", *argv])
    return 0


if __name__ == "__main__":
    sys.exit(main())
