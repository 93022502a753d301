"""Agent utility of the twins: what an agent trained on twin experience is worth in the real env (issue 25).

``wmgym bench utility --env ALFWorld-v0 --env TextWorld-v0 --episodes 100 --seeds 2 --out results/utility/run``
(or ``python -m wmgym.benchmarks.utility ...``)

Three sections (``--sections sft,rl,verifier``), each a set of *arms*; an arm is trained and scored once per
training seed (``--seeds K``: seeds ``seed .. seed+K-1``) and reported as the mean and the spread (sample
standard deviation, min, max) over seeds. Every score is the **greedy success in the real env** on the first
``--eval-games`` games of its held-out split (``envs.heldout_split``; game ``k`` reset with seed ``10_000 + k``,
the same games for every arm and seed), played from the agent chat of :mod:`wmgym.agents.lm` with the whole
history, as ``lm:DIR`` plays a GRPO directory (batched through :func:`wmgym.training.grpo.evaluate`).

- **sft**: tiny agents (``--sft-steps`` action steps of ``wmgym train agent``) trained on
  ``real`` (N real episodes: the first N won episodes of the default twin's training data,
  ``training.default.data_paths``, of ``--real-policy``; collected with that policy when the file is absent),
  ``synth`` (N episodes of ``--agent`` played in the twin ``WM-<env>`` by ``wmgym synth --keep won``: the first N
  the twin judged won, at most ``--synth-factor`` x N played) and ``mixed`` (both, N + N), plus ``wm-sft``: the
  real episodes with ``--warm-start wm`` (``--warm-steps`` world-model steps before the same action steps).
  ``--init`` says what these arms start from: ``tiny`` (from scratch, ``--model tiny``) or ``twin`` (the
  twin's own world-model weights, ``--model TWIN_DIR``: world-model SFT on the twin's whole training data as the
  warm start, Word2World's WM-SFT -> agent SFT); with ``twin`` a fifth arm, ``scratch`` (the real episodes from
  scratch), is the SFT-alone baseline the warm start is judged against.
- **rl**: GRPO (``wmgym train grpo``, ``--grpo-steps`` steps of ``--group`` episodes of ``--games-per-step``
  games, reward ``won``) from the ``real`` and ``wm-sft`` SFT agents in the real env (``sft+grpo``,
  ``wm-sft+grpo``), and from the ``real`` SFT agent in the twin (``sft+grpo-twin``: the twin's success marker as
  the reward, no real env step). Each reports the real held-out success before (its SFT start) and after, the
  per-step training-rollout success (real for the real arms, the twin's judgement for the twin arm) and the
  env steps the GRPO run spent, so twin and real GRPO are compared at equal GRPO steps and their env steps shown.
- ``sft+rwml+grpo`` (``--rwml-trade T`` > 0, default 1): RWML as mid-training of the agent, as the RWML paper
  uses it. The ``real`` SFT agent spends the episodes of T GRPO steps (T x group x games-per-step) on its own
  greedy rollouts in the real env (train split, ``lm:DIR``), is trained by RWML
  (:mod:`wmgym.training.rwml`, ``--rwml-steps`` steps, binary MiniLM reward, the too-easy filter; the
  unpredictable filter off, since a policy model starts with no idea of the observations) to predict the next
  observation of those transitions in the world-model chat, then by task-success GRPO in the real env for
  ``--grpo-steps`` - T steps. Against ``sft+grpo`` it has played the same number of real episodes; its env
  steps are the rollouts' plus GRPO's. When the pre-pass filter drops every transition the RWML phase is
  recorded as skipped and GRPO starts from the SFT agent.
- ``--score-eval`` also scores every agent as ``lm:DIR?mode=score`` (the best admissible command by
  length-normalised log-probability, one game at a time): a small model that roughly knows what to do but
  misspells it still wins there.
- **verifier**: :mod:`wmgym.benchmarks.verifier` on each env with irreversible actions (declared, or
  TextWorld's ``eat`` from :data:`VERBS`) against ``--budgets`` (0 / 2 / 4 / 10): success, verifications,
  blocked actions and of them the wrong ones prevented, for ``--verifier-agents`` (scripted agents) and the
  seed-0 ``real`` SFT agent when the sft section ran.

Resumable: everything lives under ``--out`` (``ENV/real-nN.jsonl``, ``ENV/synth-nN.jsonl`` from
``ENV/synth-all.jsonl``, ``ENV/sft/ARM-sSEED``,
``ENV/rl/ARM-sSEED`` (the RWML arm also holds ``rollouts.jsonl``, ``rwml/`` and ``rwml.json``),
``ENV/verifier``); an arm whose ``eval.json`` exists is read back, not redone, and the
training runs resume from their checkpoints. A rerun with another ``--eval-games`` scores the finished agents
again on that many games (nothing is trained again). ``result.json`` and ``report.md`` (tables and plots) are written
at the end.

Goals (issue 25): the ``synth`` agent reaches >= 90% of the ``real`` agent's real-env success
(``synth / real`` in the results); ``wm-sft`` >= ``real``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from wmgym.benchmarks.common import (BenchmarkRun, bar_plot, fmt, line_plot, md_table, set_torch_threads)

#: Sections, in the order they run.
SECTIONS = ("sft", "rl", "verifier")
#: SFT arms.
SFT_ARMS = ("real", "synth", "mixed", "wm-sft")
#: The extra SFT arm of ``init="twin"``: the real episodes from scratch, the baseline of the twin warm start.
SCRATCH_ARM = "scratch"
#: What the SFT arms start from (``--init``).
INITS = ("tiny", "twin")
#: RL arms: name -> (the SFT arm it starts from, twin or real env for GRPO).
RL_ARMS = {"sft+grpo": ("real", "real"), "wm-sft+grpo": ("wm-sft", "real"), "sft+grpo-twin": ("real", "twin")}
#: The RWML mid-training arm (on with ``rwml_trade`` > 0): the ``real`` SFT agent's own real-env rollouts, RWML
#: on their transitions, then GRPO in the real env; compared with ``sft+grpo`` at equal episodes.
RWML_ARM = "sft+rwml+grpo"
#: Irreversible verbs of envs that declare no ``irreversible_actions`` (ActionVerifier's verb form).
VERBS: dict[str, list[str]] = {"TextWorld-v0": ["eat"]}
#: Reset seed of held-out game k is EVAL_SEED + k (what collection uses for held-out splits).
EVAL_SEED = 10_000


@dataclasses.dataclass
class UtilityConfig:
    """Settings of a utility run."""

    envs: list[str] = dataclasses.field(default_factory=lambda: ["ALFWorld-v0", "TextWorld-v0"])
    """Real env ids (each needs its twin WM-<id>: the cached default or ``models``)."""
    sections: list[str] = dataclasses.field(default_factory=lambda: list(SECTIONS))
    episodes: int = 100
    """N: real episodes, synthetic episodes (mixed: N + N)."""
    seeds: int = 2
    """Training seeds per arm (seed, seed + 1, ...)."""
    seed: int = 0
    agent: str = "scripted"
    """Observation-only agent that plays the twin for the synthetic episodes."""
    real_policy: str = "expert"
    """Policy of the real episodes (read from the default twin's data, or collected when absent)."""
    synth_factor: int = 4
    """At most synth_factor x N twin episodes are played to find N the twin judged won."""
    sft_steps: int = 60
    """Action steps of every SFT arm."""
    warm_steps: int = 0
    """World-model steps of the wm-sft warm start (0: as many as sft_steps)."""
    preset: str = "tiny"
    init: str = "tiny"
    """What the SFT arms start from: ``tiny`` (from scratch) or ``twin`` (the twin world model's weights)."""
    sft_lr: float | None = None
    """Peak learning rate of agent SFT (default: the trainer's, 1e-3 for a tiny twin's weights)."""
    batch_tokens: int = 4096
    grpo_steps: int = 3
    group: int = 4
    games_per_step: int = 1
    grpo_lr: float = 1e-4
    rwml_trade: int = 1
    """GRPO steps whose episodes the sft+rwml+grpo arm spends on rollouts for RWML instead (0: no such arm)."""
    rwml_steps: int = 10
    """RWML optimizer steps of the sft+rwml+grpo arm."""
    eval_games: int = 20
    max_steps: int = 20
    """Actions per episode at most, in evaluation and GRPO rollouts."""
    max_tokens: int = 2048
    budgets: list[int] = dataclasses.field(default_factory=lambda: [0, 2, 4, 10])
    verifier_games: int = 20
    verifier_agents: list[str] = dataclasses.field(default_factory=lambda: ["scripted", "scripted:0.5"])
    score_eval: bool = False
    """Also score every agent as ``lm:DIR?mode=score`` (best admissible command) on the same games."""
    models: dict[str, str] = dataclasses.field(default_factory=dict)
    """Twin world model per real env id (default: the env's embedded default twin)."""
    real_data: dict[str, str] = dataclasses.field(default_factory=dict)
    """Real trajectory file per env id (default: the default twin's training data)."""

    def __post_init__(self) -> None:
        import gymnasium as gym

        import wmgym  # noqa: F401 - registers ids
        from wmgym.agents import parse_spec
        from wmgym.envs import real_id, registered_ids

        if not self.envs:
            raise ValueError("give at least one env (--env ID)")
        for env in self.envs:
            if env not in gym.registry or real_id(env) != env:
                raise ValueError(f"--env must be a registered real env id, got {env!r}; registered: "
                                 f"{[e for e in registered_ids() if real_id(e) == e]}")
        bad = [s for s in self.sections if s not in SECTIONS]
        if bad or not self.sections:
            raise ValueError(f"unknown sections {bad}; valid: {list(SECTIONS)}")
        for name in ("episodes", "seeds", "sft_steps", "grpo_steps", "eval_games", "max_steps", "synth_factor",
                     "verifier_games", "games_per_step"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.rwml_trade < 0 or self.rwml_steps < 1:
            raise ValueError(f"rwml_trade must be >= 0 and rwml_steps >= 1, got {self.rwml_trade} and "
                             f"{self.rwml_steps}")
        if "rl" in self.sections and self.rwml_trade and self.grpo_steps <= self.rwml_trade:
            raise ValueError(f"the {RWML_ARM} arm trades {self.rwml_trade} GRPO step(s) for rollouts, so grpo_steps "
                             f"must exceed rwml_trade, got grpo_steps {self.grpo_steps}; raise --grpo-steps or "
                             f"pass --rwml-trade 0")
        if self.init not in INITS:
            raise ValueError(f"unknown init {self.init!r}; valid: {list(INITS)}")
        if self.group < 2:
            raise ValueError(f"group must be >= 2 (GRPO compares episodes of one game), got {self.group}")
        if any(isinstance(b, bool) or not isinstance(b, int) or b < 0 for b in self.budgets) or not self.budgets:
            raise ValueError(f"budgets must be ints >= 0, got {self.budgets}")
        parse_spec(self.agent)
        for spec in self.verifier_agents:
            parse_spec(spec)

    @property
    def seed_list(self) -> list[int]:
        return [self.seed + i for i in range(self.seeds)]

    @property
    def sft_arms(self) -> list[str]:
        """The SFT arms this run trains: :data:`SFT_ARMS`, plus :data:`SCRATCH_ARM` when starting from the twin."""
        return list(SFT_ARMS) + ([SCRATCH_ARM] if self.init == "twin" else [])

    def twin_dir(self, env: str) -> str:
        """The twin's world model directory (``models`` or the env's trained embedded default)."""
        from wmgym.worldmodels.loading import trained_default_dir

        return self.models.get(env) or str(trained_default_dir(env, f"--model {env}=DIR"))

    @property
    def rl_arms(self) -> dict[str, tuple[str, str]]:
        """The RL arms this run trains: :data:`RL_ARMS`, plus :data:`RWML_ARM` when ``rwml_trade`` > 0."""
        return {**RL_ARMS, **({RWML_ARM: ("real", "real")} if self.rwml_trade else {})}


# ---------------------------------------------------------------------------- statistics
def spread(values: list[float]) -> dict[str, Any]:
    """Mean, sample standard deviation, min, max and the values (over seeds)."""
    vals = [float(v) for v in values]
    return {"mean": statistics.fmean(vals) if vals else None,
            "std": statistics.stdev(vals) if len(vals) > 1 else (0.0 if vals else None),
            "min": min(vals) if vals else None, "max": max(vals) if vals else None, "values": vals, "n": len(vals)}


def pm(s: dict[str, Any] | None, percent: bool = True) -> str:
    """``mean ± std`` of a :func:`spread` as a table cell."""
    if not s or s.get("mean") is None:
        return "n/a"
    k = 100 if percent else 1
    return f"{k * s['mean']:.1f} ± {k * s['std']:.1f}" + (f" (n={s['n']})" if s.get("n") else "")


def _read(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    tmp.replace(path)


# ---------------------------------------------------------------------------- data
def real_episodes(cfg: UtilityConfig, env: str, out: Path) -> Path:
    """``out/ENV/real.jsonl``: the first N won ``real_policy`` episodes of the real data (collected if absent)."""
    from wmgym.training.trajectories import TrajectoryWriter, canonical_order, load_episodes

    dest = out / env / f"real-n{cfg.episodes}.jsonl"
    if dest.is_file():
        return dest
    source = cfg.real_data.get(env)

    def won(path: str) -> list:
        return [ep for ep in canonical_order(load_episodes(path))
                if ep.won and ep.steps and (ep.policy == cfg.real_policy or cfg.real_data.get(env))]

    eps: list = []
    if source is None:
        from wmgym.training.default import data_paths

        default = data_paths(env)[0]
        if default.is_file():  # the default twin's data, when it holds episodes of the real policy
            eps = won(str(default))
            source = str(default) if eps else None
    if source is None:  # collect with the real policy (at most 2N episodes for N won)
        from wmgym.training.collect import CollectConfig, collect

        source = str(out / env / f"real-collected-{cfg.real_policy.replace(':', '_')}.jsonl")
        collect(CollectConfig(env=env, policy=cfg.real_policy, episodes=2 * cfg.episodes, out=source, workers=1,
                              split="train", seed=0, progress=False))
    eps = eps or won(source)
    if not eps:
        raise ValueError(f"no won {cfg.real_policy} episode in {source}")
    tmp = dest.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    with TrajectoryWriter(tmp) as w:
        for ep in eps[:cfg.episodes]:
            w.write(ep)
    tmp.replace(dest)
    return dest


def synth_episodes(cfg: UtilityConfig, env: str, out: Path) -> tuple[Path, dict[str, Any]]:
    """``out/ENV/synth.jsonl``: the first N episodes the twin judged won, of ``agent`` played in ``WM-ENV``
    (``wmgym synth --keep won``, resumable), and the counts (played, kept)."""
    from wmgym.envs import twin_id
    from wmgym.training.synth import SynthConfig, dropped_path, synth
    from wmgym.training.trajectories import TrajectoryWriter, load_episodes

    dest, raw = out / env / f"synth-n{cfg.episodes}.jsonl", out / env / "synth-all.jsonl"
    meta_path = out / env / f"synth-n{cfg.episodes}.json"
    if dest.is_file() and meta_path.is_file():
        return dest, _read(meta_path)
    played, t0 = 0, time.perf_counter()
    step = cfg.episodes
    kept: list = []
    while True:  # play in chunks of N until N are kept or synth_factor x N are played
        played = min(played + step, cfg.synth_factor * cfg.episodes)
        synth(SynthConfig(env=twin_id(env), agent=cfg.agent, episodes=played, out=str(raw), keep="won",
                          model=cfg.models.get(env), seed=cfg.seed, max_steps=cfg.max_steps, progress=False))
        kept = load_episodes(str(raw)) if raw.is_file() else []
        if len(kept) >= cfg.episodes or played >= cfg.synth_factor * cfg.episodes:
            break
    kept = sorted(kept, key=lambda ep: ep.index)[:cfg.episodes]
    if not kept:
        raise ValueError(f"the twin judged none of {played} {cfg.agent} episodes in {twin_id(env)} won: no "
                         "synthetic data to train on")
    tmp = dest.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    with TrajectoryWriter(tmp) as w:
        for ep in kept:
            w.write(ep)
    tmp.replace(dest)
    dropped = sum(1 for line in dropped_path(raw).read_text().splitlines() if line.strip()) \
        if dropped_path(raw).exists() else 0
    twin_won = len(load_episodes(str(raw)))
    meta = {"agent": cfg.agent, "twin": twin_id(env), "played": twin_won + dropped, "twin_won": twin_won,
            "kept": len(kept),
            "mean_steps": statistics.fmean(len(ep.steps) for ep in kept),
            "seconds": round(time.perf_counter() - t0, 1)}
    _write(meta_path, meta)
    return dest, meta


# ---------------------------------------------------------------------------- training and scoring
def evaluate_dir(cfg: UtilityConfig, env: str, model_dir: Path) -> dict[str, Any]:
    """Greedy real-env success of the policy in ``model_dir`` on the first ``eval_games`` held-out games."""
    from wmgym.training.grpo import AgentGRPOConfig, evaluate, load_policy

    gcfg = AgentGRPOConfig(env=env, model=str(model_dir), out=str(model_dir), max_steps=cfg.max_steps,
                           max_tokens=cfg.max_tokens, seed=EVAL_SEED, progress=False)
    model, tokenizer = load_policy(gcfg)
    t0 = time.perf_counter()
    res = evaluate(model.eval(), tokenizer, gcfg, cfg.eval_games)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    return res


def evaluate_score(cfg: UtilityConfig, env: str, model_dir: Path) -> dict[str, Any]:
    """Real-env success of ``lm:DIR?mode=score`` (the best admissible command by length-normalised
    log-probability: never an invalid command) on the same held-out games, one by one."""
    import gymnasium as gym

    from wmgym.agents import make_agent
    from wmgym.envs import heldout_split

    split = heldout_split(env)
    real = gym.make(env, split=split, max_episode_steps=cfg.max_steps)
    t0, wins, ret = time.perf_counter(), 0, 0.0
    try:
        for k in range(cfg.eval_games):
            agent = make_agent(f"lm:{model_dir}?mode=score", env)
            obs, info = real.reset(seed=EVAL_SEED + k, options={"game": k})
            agent.reset(obs, info, EVAL_SEED + k, env=real)
            done = False
            while not done:
                obs, reward, terminated, truncated, info = real.step(agent.act(obs, info))
                ret += float(reward)
                done = terminated or truncated
            wins += bool(info.get("won"))
    finally:
        real.close()
    n = cfg.eval_games
    return {"split": split, "games": n, "success": wins / n, "return": ret / n,
            "seconds": round(time.perf_counter() - t0, 1)}


def _rescored(cfg: UtilityConfig, env: str, run: Path, res: dict[str, Any]) -> dict[str, Any]:
    """A finished arm's record, its agent scored again when it was scored on another number of held-out games
    than ``eval_games`` asks for now (a rerun with more games narrows the spread without training again)."""
    if res["eval"].get("games") != cfg.eval_games:
        before = res["eval"]
        res["eval"] = evaluate_dir(cfg, env, run)
        res.pop("eval_score", None)
        _write(run / "eval.json", res)
        print(f"{env} {run.parent.name} {run.name}: rescored, real success {before['success']:.3f} on "
              f"{before.get('games')} games -> {res['eval']['success']:.3f} on {cfg.eval_games}", flush=True)
    return res


def _with_score(cfg: UtilityConfig, env: str, run: Path, res: dict[str, Any]) -> dict[str, Any]:
    """Add the score-mode evaluation to a finished arm's record when ``score_eval`` asks for it."""
    if cfg.score_eval and res.get("eval_score", {}).get("games") != cfg.eval_games:
        res["eval_score"] = evaluate_score(cfg, env, run)
        _write(run / "eval.json", res)
    return res


def sft_arm(cfg: UtilityConfig, env: str, arm: str, seed: int, data: dict[str, Path], out: Path) -> dict[str, Any]:
    """Train (or resume) one SFT arm and score it; read back when done."""
    from wmgym.training.agent import AgentConfig, train

    run = out / env / "sft" / f"{arm}-s{seed}"
    done = _read(run / "eval.json")
    if done is not None:
        return _with_score(cfg, env, run, _rescored(cfg, env, run, done))
    files = {"real": [data["real"]], "synth": [data["synth"]], "mixed": [data["real"], data["synth"]],
             "wm-sft": [data["real"]], SCRATCH_ARM: [data["real"]]}[arm]
    twin = cfg.init == "twin" and arm != SCRATCH_ARM
    summary = _read(run / "train.json")
    if summary is None:
        acfg = AgentConfig(data=[str(f) for f in files], out=str(run), model=cfg.twin_dir(env) if twin else "tiny",
                           preset=cfg.preset, lr=cfg.sft_lr, max_steps=cfg.sft_steps, eval_fraction=0.0, seed=seed,
                           batch_tokens=cfg.batch_tokens,
                           warm_start="wm" if arm == "wm-sft" else None,
                           warm_start_steps=(cfg.warm_steps or cfg.sft_steps) if arm == "wm-sft" else 0,
                           save_steps=max(50, cfg.sft_steps // 2), eval_steps=10 ** 6, logging_steps=10,
                           progress=False)
        s = train(acfg)
        summary = {k: s.get(k) for k in ("steps", "warm_start_steps", "action_steps", "train_loss", "train_episodes",
                                         "parameters", "wall_s", "skipped_windows")}
        summary["init"] = acfg.model
        _write(run / "train.json", summary)
    res = {"arm": arm, "seed": seed, "train": summary, "eval": evaluate_dir(cfg, env, run)}
    _write(run / "eval.json", res)
    _with_score(cfg, env, run, res)
    print(f"{env} sft {arm:>7} seed {seed}: real success {res['eval']['success']:.3f} "
          f"({cfg.eval_games} held-out games)", flush=True)
    return res


def rl_arm(cfg: UtilityConfig, env: str, arm: str, seed: int, out: Path, start: dict[str, Any]) -> dict[str, Any]:
    """GRPO from an SFT arm's agent (real env or twin), scored in the real env; read back when done."""
    from wmgym.envs import twin_id
    from wmgym.training.grpo import AgentGRPOConfig, train

    run = out / env / "rl" / f"{arm}-s{seed}"
    done = _read(run / "eval.json")
    if done is not None:
        done["start"] = start["eval"]  # its SFT start, as scored now
        if start.get("eval_score") is not None:
            done["start_score"] = start["eval_score"]
        return _with_score(cfg, env, run, _rescored(cfg, env, run, done))
    sft_arm_name, where = cfg.rl_arms[arm]
    play = env if where == "real" else twin_id(env)
    kwargs = {"model": cfg.models[env]} if where == "twin" and env in cfg.models else {}
    policy, grpo_steps, extra = out / env / "sft" / f"{sft_arm_name}-s{seed}", cfg.grpo_steps, {}
    if arm == RWML_ARM:
        policy, extra = rwml_phase(cfg, env, seed, run, policy)
        grpo_steps = cfg.grpo_steps - cfg.rwml_trade
    if _read(run / "grpo_summary.json") is None:
        train(AgentGRPOConfig(env=play, model=str(policy), out=str(run),
                              steps=grpo_steps, group=cfg.group, games_per_step=cfg.games_per_step,
                              max_steps=cfg.max_steps, max_tokens=cfg.max_tokens, lr=cfg.grpo_lr, seed=seed,
                              save_steps=grpo_steps, progress=False, env_kwargs=kwargs))
    curve = _read(run / "curve.json") or {"steps": []}
    batch = cfg.group * cfg.games_per_step
    steps = [{"step": s["step"], "success": s.get("success"), "reward": s.get("reward"),
              "env_steps": round(s.get("episode_steps", 0.0) * batch)} for s in curve["steps"]]
    grpo_env_steps = sum(s["env_steps"] for s in steps)
    rollout_steps = extra.get("rollouts", {}).get("env_steps", 0)
    res = {"arm": arm, "seed": seed, "grpo_env": play, "start": start["eval"], "curve": steps,
           "grpo_env_steps": grpo_env_steps, "env_steps": grpo_env_steps + rollout_steps,
           "real_env_steps": grpo_env_steps + rollout_steps if where == "real" else 0,
           **extra, "eval": evaluate_dir(cfg, env, run)}
    if start.get("eval_score") is not None:
        res["start_score"] = start["eval_score"]
    _write(run / "eval.json", res)
    _with_score(cfg, env, run, res)
    print(f"{env} rl {arm:>13} seed {seed}: real success {res['start']['success']:.3f} -> "
          f"{res['eval']['success']:.3f} ({res['env_steps']} env steps in {play})", flush=True)
    return res


def rwml_phase(cfg: UtilityConfig, env: str, seed: int, run: Path, sft_dir: Path) -> tuple[Path, dict[str, Any]]:
    """The first two phases of :data:`RWML_ARM`: the SFT agent's real-env rollouts (the episodes of
    ``rwml_trade`` GRPO steps), then RWML on their transitions. Returns the policy GRPO starts from (the RWML
    model; the SFT agent when the pre-pass filter left no transition) and the arm's record of both phases.
    Resumes: collection from the rollouts file, RWML from its checkpoints, a finished RWML from ``rwml.json``."""
    from wmgym.training.collect import CollectConfig, collect
    from wmgym.training.rwml import RWMLConfig
    from wmgym.training.rwml import train as rwml_train
    from wmgym.training.trajectories import load_episodes

    run.mkdir(parents=True, exist_ok=True)
    rollouts, rdir = run / "rollouts.jsonl", run / "rwml"
    n = cfg.rwml_trade * cfg.group * cfg.games_per_step
    # The resolved path: collection resumes the episodes of this policy name (lm:PATH) in the file.
    collect(CollectConfig(env=env, policy=f"lm:{sft_dir.resolve()}", episodes=n, split="train", out=str(rollouts), workers=1,
                          seed=seed, max_steps=cfg.max_steps, progress=False))
    eps = load_episodes(str(rollouts))[:n]
    roll = {"episodes": len(eps), "env_steps": sum(len(ep.steps) for ep in eps),
            "success": sum(bool(ep.won) for ep in eps) / max(1, len(eps))}
    done = _read(run / "rwml.json")
    if done is None:
        rcfg = RWMLConfig(data=[str(rollouts)], model=str(sft_dir), out=str(rdir), reward="binary",
                          max_steps=cfg.rwml_steps, num_generations=cfg.group, prompts_per_step=4,
                          filter_samples=cfg.group, filter_easy=True, filter_unpredictable=False,
                          save_steps=cfg.rwml_steps, seed=seed, progress=False)
        try:  # the pre-pass alone first (cached: the training run reuses its samples)
            pre = rwml_train(dataclasses.replace(rcfg, prepass_only=True))
        except ValueError as e:  # no transition fits the model's context (the tiny tokenizers' long prompts)
            if "no transition" not in str(e):
                raise
            pre = {"transitions": 0, "skipped_too_long": roll["env_steps"], "kept": 0, "error": str(e)}
        keys = ("transitions", "skipped_too_long", "kept", "prepass_mean_reward", "effective_share_before",
                "too_easy_share", "effective_share_of_kept")
        done = {k: pre.get(k) for k in keys}
        if not pre.get("kept"):
            done["skipped"] = (f"RWML skipped ({pre['error']})" if pre.get("error") else
                               "RWML skipped: the pre-pass filter dropped every transition") + \
                ": GRPO starts from the SFT agent"
        else:
            s = rwml_train(rcfg)
            done.update({k: s.get(k) for k in ("steps", "mean_reward_first", "mean_reward_last",
                                               "effective_groups_mean", "wall_s")})
        _write(run / "rwml.json", done)
    policy = sft_dir if done.get("skipped") else rdir
    print(f"{env} rl {RWML_ARM} seed {seed}: {roll['episodes']} rollouts ({roll['env_steps']} env steps, success "
          f"{roll['success']:.3f}); RWML " + (done["skipped"] if done.get("skipped") else
                                               f"{done['steps']} steps on {done['kept']} of {done['transitions']} "
                                               f"transitions, mean reward {fmt(done['mean_reward_last'], 3)}"),
          flush=True)
    return policy, {"rollouts": roll, "rwml": done}


def verifier_section(cfg: UtilityConfig, env: str, out: Path, sft_agent: Path | None) -> dict[str, Any] | None:
    """bench verifier on ``env`` (its declared irreversible actions or :data:`VERBS`), read back when done."""
    from wmgym.benchmarks import verifier
    from wmgym.benchmarks.models import describe_models, load_models
    from wmgym.envs import env_class

    verbs = None if env_class(env).irreversible_actions else VERBS.get(env)
    if verbs is None and not env_class(env).irreversible_actions:
        return None  # nothing irreversible to verify
    folder = out / env / "verifier"
    done = _read(folder / "result.json")
    if done is None:
        agents = list(cfg.verifier_agents) + ([f"lm:{sft_agent}"] if sft_agent is not None else [])
        vcfg = verifier.VerifierConfig(env=env, agents=agents, budgets=list(cfg.budgets), games=cfg.verifier_games,
                                       seed=EVAL_SEED, max_steps=cfg.max_steps, verbs=verbs)
        names = {env: cfg.models.get(env)}
        model = load_models(names)[env]
        verifier.run(vcfg, model, out=str(folder), model_desc=describe_models(names, "hf")[env],
                     argv=["wmgym", "bench", "utility", "(verifier section)"])
        done = _read(folder / "result.json")
    res = done["results"]
    return {"irreversible": verbs or res["irreversible_actions"], "games": res["games"], "split": res["split"],
            "agents": {spec: {b: {k: v for k, v in r.items() if k != "games"} for b, r in per.items()}
                       for spec, per in res["agents"].items()}}


# ---------------------------------------------------------------------------- run
def run_env(cfg: UtilityConfig, env: str, out: Path) -> dict[str, Any]:
    res: dict[str, Any] = {}
    need_sft = "sft" in cfg.sections or "rl" in cfg.sections
    sft: dict[str, list[dict[str, Any]]] = {}
    if need_sft:
        data = {"real": real_episodes(cfg, env, out)}
        arms = cfg.sft_arms if "sft" in cfg.sections else ["real", "wm-sft"]
        if "synth" in arms or "mixed" in arms:
            data["synth"], res["synth_data"] = synth_episodes(cfg, env, out)
        for arm in arms:
            sft[arm] = [sft_arm(cfg, env, arm, s, data, out) for s in cfg.seed_list]
        res["sft"] = {arm: {"success": spread([r["eval"]["success"] for r in runs]),
                            "success_score": spread([r["eval_score"]["success"] for r in runs if "eval_score" in r]),
                            "return": spread([r["eval"]["return"] for r in runs]),
                            "train_episodes": runs[0]["train"]["train_episodes"], "runs": runs}
                      for arm, runs in sft.items()}
        real, syn = res["sft"]["real"]["success"]["mean"], res["sft"].get("synth", {}).get("success", {}).get("mean")
        res["synth_over_real"] = (syn / real) if syn is not None and real else None
        wm = res["sft"]["wm-sft"]["success"]["mean"]
        # None: undefined (no synth arm, or the real agent never wins, so there is nothing to reach 90% of, or
        # neither SFT agent ever wins).
        res["goals"] = {"synth >= 0.9 real": None if syn is None or not real else syn >= 0.9 * real,
                        "wm-sft >= sft": None if not real and not wm else wm >= real}
        if SCRATCH_ARM in res["sft"]:  # the twin's weights as the warm start, against SFT from scratch
            scratch = res["sft"][SCRATCH_ARM]["success"]["mean"]
            res["goals"]["twin-init >= scratch"] = None if not real and not scratch else real >= scratch
    if "rl" in cfg.sections:
        rl = {}
        for arm, (start, _) in cfg.rl_arms.items():
            runs = [rl_arm(cfg, env, arm, s, out, sft[start][i]) for i, s in enumerate(cfg.seed_list)]
            rl[arm] = {"start": spread([r["start"]["success"] for r in runs]),
                       "start_score": spread([r["start_score"]["success"] for r in runs if "start_score" in r]),
                       "success_score": spread([r["eval_score"]["success"] for r in runs if "eval_score" in r]),
                       "success": spread([r["eval"]["success"] for r in runs]),
                       "env_steps": spread([r["env_steps"] for r in runs]),
                       "rollout_success": spread([statistics.fmean(s["success"] or 0.0 for s in r["curve"])
                                                  for r in runs if r["curve"]]),
                       "real_env_steps": spread([r["real_env_steps"] for r in runs]), "runs": runs}
        res["rl"] = rl
        if RWML_ARM in rl:
            a, b = rl[RWML_ARM], rl["sft+grpo"]
            res["rwml_vs_grpo"] = (
                f"{RWML_ARM} {100 * a['success']['mean']:.1f}% after "
                f"({a['env_steps']['mean']:.0f} real env steps: {cfg.rwml_trade} GRPO step(s) of episodes as "
                f"rollouts for {cfg.rwml_steps} RWML steps, then {cfg.grpo_steps - cfg.rwml_trade} GRPO steps) "
                f"vs sft+grpo {100 * b['success']['mean']:.1f}% ({b['env_steps']['mean']:.0f} real env steps, "
                f"{cfg.grpo_steps} GRPO steps); same number of real episodes")
    if "verifier" in cfg.sections:
        agent = out / env / "sft" / f"real-s{cfg.seed}"
        res["verifier"] = verifier_section(cfg, env, out, agent if (agent / "eval.json").is_file() else None)
    return res


def run(cfg: UtilityConfig, *, out: str | None = None, run_name: str | None = None,
        argv: list[str] | None = None) -> BenchmarkRun:
    from wmgym.envs import twin_id

    bench = BenchmarkRun("utility", config=cfg, seeds={"training": cfg.seed_list, "eval_game_k": f"{EVAL_SEED} + k"},
                         out=out, run_name=run_name, argv=argv, envs=[twin_id(e) for e in cfg.envs])
    results: dict[str, Any] = {"envs": {}}
    for env in cfg.envs:
        results["envs"][env] = run_env(cfg, env, bench.path)
    _plots(bench, results)
    bench.finish(results, _markdown(cfg, results, bench.figures), title="utility benchmark")
    print(f"results in {bench.path}")
    return bench


def _plots(bench: BenchmarkRun, results: dict[str, Any]) -> None:
    envs = results["envs"]
    with_sft = [e for e, r in envs.items() if "sft" in r]
    if with_sft:
        arms = [a for a in (*SFT_ARMS, SCRATCH_ARM) if all(a in envs[e]["sft"] for e in with_sft)]
        bar_plot(bench.add_figure("sft_success.png"), with_sft,
                 {a: [100 * (envs[e]["sft"][a]["success"]["mean"] or 0.0) for e in with_sft] for a in arms},
                 title="agent SFT: real-env success on held-out games", ylabel="success (%)", ylim=(0, 101))
    for env, r in envs.items():
        if "rl" in r:
            series = {}
            for arm, a in r["rl"].items():
                n = max((len(x["curve"]) for x in a["runs"]), default=0)
                ys = [statistics.fmean(x["curve"][i]["success"] or 0.0 for x in a["runs"] if len(x["curve"]) > i)
                      for i in range(n)]
                series[f"{arm} (training rollouts)"] = (list(range(1, n + 1)), [100 * y for y in ys])
                series[f"{arm} (real held-out)"] = ([0, n], [100 * (a["start"]["mean"] or 0.0),
                                                             100 * (a["success"]["mean"] or 0.0)])
            line_plot(bench.add_figure(f"rl_curve_{env}.png"), series, xlabel="GRPO step", ylabel="success (%)",
                      title=f"{env}: GRPO success", ylim=(0, 101))
        if r.get("verifier"):
            v = r["verifier"]
            series = {spec: ([int(b) for b in per], [100 * (x["success"].get("rate") or 0.0) for x in per.values()])
                      for spec, per in v["agents"].items()}
            line_plot(bench.add_figure(f"verifier_{env}.png"), series, xlabel="verification budget",
                      ylabel="success (%)", title=f"{env}: success with the verifier", ylim=(0, 101))


def _markdown(cfg: UtilityConfig, results: dict[str, Any], figures: list[str]) -> str:
    start = (f"agents started from the twin's world-model weights (`{SCRATCH_ARM}`: tiny `{cfg.preset}` from scratch)"
             if cfg.init == "twin" else f"tiny `{cfg.preset}` agents from scratch")
    parts = [f"Scale: N = {cfg.episodes} episodes, {cfg.seeds} training seed(s), {start}, "
             f"{cfg.sft_steps} SFT action steps, {cfg.grpo_steps} GRPO steps of {cfg.group} x {cfg.games_per_step} "
             f"episodes, scored by greedy real-env success on {cfg.eval_games} held-out games (at most "
             f"{cfg.max_steps} actions). Cells: mean ± sample std over seeds, in %.", ""]
    for env, r in results["envs"].items():
        parts += [f"## {env}", ""]
        if "synth_data" in r:
            d = r["synth_data"]
            parts += [f"Synthetic data: `{d['agent']}` in {d['twin']}, {d['played']} episodes played, the twin judged "
                      f"{d['twin_won']} won, the first {d['kept']} kept ({d['mean_steps']:.1f} steps each).", ""]
        if "sft" in r:
            rows = [[arm, str(a["train_episodes"]), pm(a["success"]), pm(a["return"], percent=False),
                     ", ".join(f"{100 * v:.0f}" for v in a["success"]["values"]), pm(a.get("success_score"))]
                    for arm, a in r["sft"].items()]
            parts += ["### Agent SFT", "", md_table(["arm", "training episodes", "real success (%)", "real return",
                                                     "per seed (%)", "real success, score mode (%)"], rows), "",
                      f"synth / real success: {fmt(r.get('synth_over_real'), 2)}; goals: "
                      + ", ".join(f"{k}: {fmt(v)}" for k, v in r["goals"].items()), ""]
        if "rl" in r:
            rows = [[arm, a["runs"][0]["grpo_env"], pm(a["start"]), pm(a["success"]),
                     pm(a.get("rollout_success")), f"{a['env_steps']['mean']:.0f}",
                     f"{a['real_env_steps']['mean']:.0f}", pm(a.get("start_score")), pm(a.get("success_score"))]
                    for arm, a in r["rl"].items()]
            parts += ["### GRPO", "", "Rollout success: the training episodes' success as the GRPO env judged it "
                      "(the twin's success marker for the twin arm), mean over steps.", "",
                      md_table(["arm", "GRPO env", "real success before (%)", "after (%)", "rollout success (%)",
                                "env steps", "real env steps", "score mode before (%)", "score mode after (%)"],
                               rows), ""]
            if r.get("rwml_vs_grpo"):
                rw = [x["rwml"] for x in r["rl"][RWML_ARM]["runs"]]
                parts += [f"RWML mid-training: {r['rwml_vs_grpo']}. RWML per seed: "
                          + "; ".join(x.get("skipped") or
                                      (f"{x['kept']} of {x['transitions']} fitting transitions kept ("
                                       f"{x['skipped_too_long']} longer than the context left out), effective groups "
                                       f"{fmt(x.get('effective_share_before'), 2)} before / "
                                       f"{fmt(x.get('effective_groups_mean'), 2)} in training, mean reward "
                                       f"{fmt(x.get('mean_reward_first'), 3)} -> {fmt(x.get('mean_reward_last'), 3)}")
                                      for x in rw), ""]
        if r.get("verifier"):
            v = r["verifier"]
            rows = []
            for spec, per in v["agents"].items():
                for b, x in per.items():
                    rows.append([spec, str(b), _rate(x["success"]),
                                 str(x["verifications"]), str(x["blocked"]), str(x["prevented"]),
                                 str(x["right_blocked"]), str(x["irreversible_real"]), str(x["wrong_real"])])
            parts += ["### Verifier", "", f"Irreversible: {v['irreversible']}, {v['games']} {v['split']} games.", "",
                      md_table(["agent", "budget", "success", "verifications", "blocked", "wrong prevented",
                                "right blocked", "irreversible played", "of them not won"], rows), ""]
    parts += [f"![{f}]({f})" for f in figures]
    return "\n".join(parts)


def _rate(r: dict[str, Any]) -> str:
    return "n/a" if r.get("rate") is None else f"{100 * r['rate']:.1f}% ({r['wins']}/{r['n']})"


def _kv(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        env, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"{what} takes ENV=PATH, got {item!r}")
        out[env] = value
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="wmgym bench utility", description=__doc__.split("\n\n")[0])
    p.add_argument("--env", action="append", default=None, help="real env id (repeatable; default ALFWorld-v0 and "
                   "TextWorld-v0)")
    p.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated: sft,rl,verifier")
    p.add_argument("--episodes", type=int, default=100, help="N real and N synthetic episodes")
    p.add_argument("--seeds", type=int, default=2, help="training seeds per arm")
    p.add_argument("--agent", default="scripted", help="agent played in the twin for the synthetic episodes")
    p.add_argument("--real-policy", default="expert", help="policy of the real episodes")
    p.add_argument("--synth-factor", type=int, default=4, help="play at most this x N twin episodes for N won")
    p.add_argument("--sft-steps", type=int, default=60, help="SFT action steps per arm")
    p.add_argument("--warm-steps", type=int, default=0, help="world-model warm-start steps (0: --sft-steps)")
    p.add_argument("--preset", default="tiny", help="tiny model shape")
    p.add_argument("--init", default="tiny", choices=INITS, help="what the SFT arms start from: tiny (from scratch) "
                   "or twin (the twin world model's weights; adds the from-scratch arm 'scratch')")
    p.add_argument("--sft-lr", type=float, default=None, help="agent SFT peak learning rate (default: "
                   "`wmgym train agent`'s: 2e-3 from scratch, 1e-3 for a tiny twin's weights)")
    p.add_argument("--grpo-steps", type=int, default=3, help="GRPO steps per RL arm")
    p.add_argument("--group", type=int, default=4, help="GRPO episodes per game")
    p.add_argument("--games-per-step", type=int, default=1, help="GRPO games per step")
    p.add_argument("--rwml-trade", type=int, default=1, help="GRPO steps whose episodes the sft+rwml+grpo arm "
                   "spends on rollouts for RWML (0: no such arm)")
    p.add_argument("--rwml-steps", type=int, default=10, help="RWML steps of the sft+rwml+grpo arm")
    p.add_argument("--eval-games", type=int, default=20, help="held-out real games each agent is scored on")
    p.add_argument("--max-steps", type=int, default=20, help="actions per episode at most (eval, GRPO, synth)")
    p.add_argument("--budgets", default="0,2,4,10", help="verification budgets")
    p.add_argument("--verifier-games", type=int, default=20, help="held-out games of the verifier section")
    p.add_argument("--verifier-agents", default="scripted,scripted:0.5", help="comma-separated agent specs")
    p.add_argument("--score-eval", action="store_true", help="also score every agent as lm:DIR?mode=score (the "
                   "best admissible command) on the same games; added to finished arms on a rerun")
    p.add_argument("--model", action="append", default=[], help="ENV=DIR: the twin's world model for ENV")
    p.add_argument("--real-data", action="append", default=[], help="ENV=FILE: real trajectories for ENV")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="results folder; rerun with the same --out to resume")
    p.add_argument("--run-name", default=None)
    args = p.parse_args(argv)
    set_torch_threads()
    cfg = UtilityConfig(envs=args.env or ["ALFWorld-v0", "TextWorld-v0"],
                        sections=[s for s in args.sections.split(",") if s], episodes=args.episodes,
                        seeds=args.seeds, seed=args.seed, agent=args.agent, real_policy=args.real_policy,
                        synth_factor=args.synth_factor, sft_steps=args.sft_steps, warm_steps=args.warm_steps,
                        preset=args.preset, init=args.init, sft_lr=args.sft_lr, grpo_steps=args.grpo_steps,
                        group=args.group,
                        games_per_step=args.games_per_step, rwml_trade=args.rwml_trade,
                        rwml_steps=args.rwml_steps, eval_games=args.eval_games, max_steps=args.max_steps,
                        budgets=[int(b) for b in args.budgets.split(",") if b.strip()],
                        verifier_games=args.verifier_games,
                        verifier_agents=[a for a in args.verifier_agents.split(",") if a], score_eval=args.score_eval,
                        models=_kv(args.model, "--model"), real_data=_kv(args.real_data, "--real-data"))
    run(cfg, out=args.out, run_name=args.run_name,
        argv=None if argv is None else ["wmgym", "bench", "utility", *argv])
    return 0


if __name__ == "__main__":
    sys.exit(main())
