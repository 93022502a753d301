"""Synthetic trajectories: an agent played in a twin, its episodes written as trajectories.

``wmgym synth --env WM-ALFWorld-v0 --agent scripted:0.2 --episodes 200 --out synth.jsonl --keep won``

The twin (``WM-<id>``, its embedded default world model or ``--model DIR``) plays the part of the real env, so
this is collection with the world model as the engine: Word2World trains agents on such episodes, keeping those
the twin judged successful (``--keep won``: the twin's success marker). Episode ``k`` plays game ``k mod n`` of
the split with seed ``seed + k``, as ``wmgym collect`` does, and each line is an ordinary episode (same writer,
same format: ``wmgym show``, ``train agent`` and ``train sft`` read it) with ``synthetic: true``, the twin's
id as ``env_id`` and the world model's directory or name as ``world_model``.

Agents: the observation-only ones (``random``, ``scripted[:EPS]``, ``react``, ``lm:DIR``); a twin has no engine
for the expert to read.

Resuming: rerunning with the same ``--out`` skips the indices already played for this (twin, agent, split,
format, world model): those in the file, and those ``--keep won`` dropped, which are listed in
``OUT.dropped`` (one JSON line each, appended atomically like the episodes). A run killed at any point loses at
most the episodes in flight and writes none twice.

``ray`` (``--ray [ADDRESS] --workers N``) plays the episodes on the Ray actors of
:class:`~wmgym.training.distributed.WorkerPool`, as ``wmgym collect --ray`` does: each actor loads the twin once,
the driver alone writes ``out`` and ``OUT.dropped``, so the files, the episodes for given seeds and the resume rule
are those of the single-process path (a dead actor's episode is played again on a replacement, or the run stops
with ``WorkerLost`` and a rerun resumes).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import gymnasium as gym

from wmgym.agents import make_agent, parse_spec
from wmgym.envs import real_id
from wmgym.training.collect import episode_results, game_index, run_episode
from wmgym.training.trajectories import Episode, TrajectoryWriter, read_episodes, repair

#: Values of ``--keep``.
KEEPS = ("all", "won")


@dataclasses.dataclass
class SynthConfig:
    """Settings of one synthetic collection."""

    env: str = "WM-ALFWorld-v0"
    """A twin id (``WM-<id>``)."""
    agent: str = "scripted"
    """An observation-only agent spec (random, scripted[:EPS], react, lm:DIR)."""
    episodes: int = 10
    """Episodes to play (indices 0..N-1); with ``keep="won"`` the file holds the won ones."""
    out: str = "synth.jsonl"
    """Trajectory file (JSON Lines); appended to and resumed from."""
    keep: str = "all"
    """``all`` episodes, or only those the twin judged ``won``."""
    model: str | None = None
    """The twin's world model (a directory or hub id; default: the env's embedded default twin)."""
    split: str = "train"
    seed: int = 0
    """Episode k uses seed + k."""
    max_steps: int | None = None
    """Step limit per episode (default: the env's registered limit)."""
    format: str = "wmgym"
    """The env's ``format`` (``word2world`` needs a model trained on those strings)."""
    workers: int = 1
    """Parallel worker processes (each loads the world model)."""
    progress: bool = True
    ray: str | None = None
    """Play on Ray actors (``workers`` of them): ``"local"`` (a private cluster on this machine) or a cluster address
    (``auto``, ``HOST:6379``); None: processes of this machine."""

    def __post_init__(self) -> None:
        import wmgym  # noqa: F401 - registers ids

        gym.spec(self.env)  # unknown ids: Gymnasium's error with suggestions
        if real_id(self.env) == self.env:
            raise ValueError(f"synth plays a twin, and {self.env!r} is a real env; use WM-{self.env} (or "
                             f"`wmgym collect` for real episodes)")
        if self.keep not in KEEPS:
            raise ValueError(f"unknown --keep {self.keep!r}; valid: {list(KEEPS)}")
        if self.episodes < 0 or self.workers < 1:
            raise ValueError(f"episodes must be >= 0 and workers >= 1, got {self.episodes} and {self.workers}")
        parse_spec(self.agent)  # an engine-reading spec fails here, naming the observation-only ones

    def agent_name(self) -> str:
        return parse_spec(self.agent).name

    def world_model(self) -> str:
        """What the episodes record as ``world_model`` (and resuming matches on)."""
        if self.model is None:
            from wmgym.worldmodels.loading import default_model_dir

            return str(default_model_dir(real_id(self.env)))
        path = Path(self.model).expanduser()
        return str(path.resolve()) if path.exists() else str(self.model)

    def matches(self, d: dict[str, Any]) -> bool:
        """Whether an episode (or dropped record) ``d`` belongs to this run's sequence of indices."""
        return (d.get("env_id") == self.env and d.get("policy") == self.agent_name() and d.get("split") == self.split
                and d.get("format", "wmgym") == self.format and d.get("world_model") == self.world_model())


def dropped_path(out: str | os.PathLike) -> Path:
    """Where ``--keep won`` lists the indices it played and did not keep."""
    return Path(str(out) + ".dropped")


def done_indices(cfg: SynthConfig) -> set[int]:
    """Indices of this run already played: written to ``out`` or listed in ``out.dropped``."""
    done: set[int] = set()
    if os.path.exists(cfg.out):
        repair(cfg.out)
        done |= {ep.index for ep in read_episodes(cfg.out) if cfg.matches(dataclasses.asdict(ep))}
    side = dropped_path(cfg.out)
    if side.exists():
        repair(side)
        for line in side.read_text(encoding="utf-8").splitlines():
            if line.strip():
                d = json.loads(line)
                if cfg.matches(d):
                    done.add(int(d["index"]))
    return done


_worker_envs: dict[tuple, gym.Env] = {}


def _synth_one(job: tuple[SynthConfig, int]) -> Episode:
    cfg, k = job
    import wmgym  # noqa: F401 - registers ids in spawned workers

    key = (cfg.env, cfg.model, cfg.max_steps, cfg.format, cfg.split)
    if key not in _worker_envs:
        kw: dict[str, Any] = {} if cfg.max_steps is None else {"max_episode_steps": cfg.max_steps}
        if cfg.model is not None:
            kw["model"] = cfg.model
        if cfg.format != "wmgym":
            kw["format"] = cfg.format
        _worker_envs[key] = gym.make(cfg.env, split=cfg.split, **kw)
    env = _worker_envs[key]
    n = env.unwrapped.num_games(cfg.split)
    agent = make_agent(cfg.agent, cfg.env)
    ep = run_episode(env, agent, seed=cfg.seed + k, options={"game": game_index(k, n), "split": cfg.split}, env_id=cfg.env,
                     index=k)
    ep.synthetic, ep.world_model = True, cfg.world_model()
    return ep


def synth(cfg: SynthConfig, *, pool=None) -> dict[str, int]:
    """Run (or resume) a synthetic collection; returns counts of this call: ``played``, ``kept``, ``won``.

    ``pool`` (a :class:`~wmgym.training.distributed.WorkerPool`, left open) plays the episodes instead of the pool
    ``cfg`` asks for: tests hold it to kill its actors.
    """
    from tqdm import tqdm

    done = done_indices(cfg)
    todo = [k for k in range(cfg.episodes) if k not in done]
    counts = {"played": 0, "kept": 0, "won": 0}
    if not todo:
        return counts
    probe = gym.make(real_id(cfg.env), split=cfg.split)  # the real env: games, without loading the model
    n = probe.unwrapped.num_games(cfg.split)
    probe.unwrapped.prepare_games(cfg.split, sorted({game_index(k, n) for k in todo}), workers=cfg.workers,
                                  progress=cfg.progress)
    probe.close()
    bar = tqdm(total=cfg.episodes, initial=len(done), desc=f"synth {cfg.env} ({cfg.agent})", unit="ep",
               disable=not cfg.progress)
    side = dropped_path(cfg.out)
    if side.exists():
        repair(side)
    world_model = cfg.world_model()  # the driver's name for it: what resuming matches, whichever node played
    with TrajectoryWriter(cfg.out) as writer:
        fd = os.open(side, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) if cfg.keep == "won" else -1
        try:
            with episode_results(_synth_one, [(cfg, k) for k in todo], pool, cfg.ray, cfg.workers) as results:
                for ep in results:
                    ep.world_model = world_model
                    counts["played"] += 1
                    counts["won"] += ep.won
                    if cfg.keep == "all" or ep.won:
                        writer.write(ep)
                        counts["kept"] += 1
                    else:
                        record = {"env_id": ep.env_id, "policy": ep.policy, "split": ep.split, "format": ep.format,
                                  "world_model": ep.world_model, "index": ep.index, "game_id": ep.game_id,
                                  "won": ep.won, "steps": ep.num_steps}
                        os.write(fd, (json.dumps(record) + "\n").encode("utf-8"))
                        os.fsync(fd)
                    bar.update()
        finally:
            if fd >= 0:
                os.close(fd)
            bar.close()
    return counts
