"""Collect trajectories by rolling agents in real envs.

``wmgym collect --env TextWorld-v0 --policy expert --episodes 100 --out tw.jsonl --workers 2``

The policy is an agent spec (:mod:`wmgym.agents.factory`), made with privileged access: the expert and
its kin read the engine. Episode ``k`` of a run plays game :func:`game_index` ``(k, n)`` of the split's ``n``
games with seed ``seed + k``: by default game ``k mod n`` (so a run covers distinct games first). Splits that list
their games grouped (SciWorld's: 30 tasks in contiguous blocks) would then give a short run the first few groups
only, so ``spread=True`` (``--spread``) plays game ``(k * s) mod n`` instead, ``s`` the integer nearest
``n / golden ratio`` that is coprime to ``n``: a permutation of the ``n`` games for ``k < n`` (distinct games first,
as before; ``k >= n`` wraps as ``k mod n`` does), and any prefix of it is spread evenly over the split (the
golden-ratio sequence leaves no large gap: the first 60 of SciWorld's 3,592 train games leave none over 97 games, so
every block of ``n / 30`` holds one). The file does not record the order; a run resumed with the other setting would
mix the two (each episode records its ``game_id``). Episodes are written one JSON
line each, atomically, in whatever order workers finish them; rerunning with
the same ``--out`` skips the indices already in the file, so an interrupted run
(even ``kill -9``) resumes losing at most the episodes in flight.

``ray`` (``--ray [ADDRESS]``) runs the workers as Ray actors (:mod:`wmgym.training.distributed`), on a
private local cluster or an existing one; the driver still writes the one file, with the same rule.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import gymnasium as gym

from wmgym.agents import Agent, make_agent, parse_spec, play
from wmgym.training.trajectories import Episode, Step, TrajectoryWriter, read_episodes, repair


@dataclasses.dataclass
class CollectConfig:
    """Settings of one collection run."""

    env: str = "TextWorld-v0"
    """Registered id of a real env."""
    policy: str = "expert"
    """An agent spec: expert | random | noisy-expert:EPS | explore | scripted[:EPS], optionally +score:P (see
    :mod:`wmgym.agents.factory`; react needs model settings collection does not take); its name is recorded
    as each episode's ``policy``."""
    episodes: int = 10
    """How many episodes the file should hold for this (env, policy, split)."""
    out: str = "trajectories.jsonl"
    """Trajectory file (JSON Lines); appended to and resumed from."""
    workers: int = 1
    """Parallel worker processes."""
    split: str = "train"
    seed: int = 0
    """Episode k uses seed + k."""
    max_steps: int | None = None
    """Step limit per episode (default: the env's registered limit)."""
    format: str = "wmgym"
    """The env's ``format``: ``wmgym`` or ``word2world`` (Word2World's strings, for its checkpoints and data
    layout); each episode records it."""
    progress: bool = True
    ray: str | None = None
    """Run the workers as Ray actors: ``"local"`` (a private cluster on this machine) or a cluster address
    (``auto``, ``HOST:6379``); None: processes of this machine."""
    spread: bool = False
    """Episode k plays game ``(k * s) mod n`` (spread over the split, see :func:`game_index`) instead of ``k mod n``."""

    def __post_init__(self) -> None:
        if self.episodes < 0:
            raise ValueError(f"episodes must be >= 0, got {self.episodes}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        make_agent(self.policy, self.env, privileged=True)  # fail now, not in a worker, on a bad policy

    def policy_name(self) -> str:
        """The name the policy's episodes record (the spec's canonical form)."""
        return parse_spec(self.policy, privileged=True).name


#: The golden ratio: multiples of ``n / _PHI`` modulo ``n`` leave the most even gaps of any step.
_PHI = (1 + 5 ** 0.5) / 2


@functools.lru_cache(maxsize=64)
def spread_step(n: int) -> int:
    """The step ``s`` of the spread game order over ``n`` games: the integer nearest ``n / golden ratio`` that is
    coprime to ``n`` (so ``k * s mod n`` visits every game once in ``n`` episodes); the nearer one first, the
    smaller one on a tie."""
    if n < 1:
        raise ValueError(f"a split needs at least one game, got n={n}")
    if n <= 2:
        return 1
    target = n / _PHI
    for c in sorted(range(1, n), key=lambda c: (abs(c - target), c)):
        if math.gcd(c, n) == 1:
            return c
    raise AssertionError("unreachable: 1 is coprime to every n")


def game_index(k: int, n: int, spread: bool = False) -> int:
    """The game episode ``k`` of a run plays among a split's ``n`` games: ``k mod n``, or with ``spread`` the
    golden-ratio order ``(k * spread_step(n)) mod n`` (see the module docstring). The one home of this mapping:
    the local and Ray collectors (both run :func:`_collect_one`) and ``wmgym synth`` use it."""
    if n < 1:
        raise ValueError(f"a split needs at least one game, got n={n}")
    return (k % n) * spread_step(n) % n if spread else k % n


def run_episode(env: gym.Env, agent: Agent, *, seed: int | None = None, options: dict | None = None,
                env_id: str = "", index: int = 0) -> Episode:
    """Play one episode of ``agent`` in ``env`` (:func:`wmgym.agents.play`) and return it as an
    :class:`Episode`."""
    out = play(env, agent, seed=seed, options=options)
    obs, info = out["observations"][0], out["infos"][0]
    episode = Episode(env_id=env_id, game_id=info["game_id"], seed=seed, split=info.get("split", ""),
                      policy=agent.name, init_context=info["init_context"], task=info["task"],
                      initial_observation=obs, index=index, format=info.get("format", "wmgym"))
    for k, action in enumerate(out["actions"]):
        episode.steps.append(Step(action=action, observation=out["observations"][k + 1], reward=out["rewards"][k],
                                  terminated=out["terminated"][k], truncated=out["truncated"][k],
                                  action_valid=bool(out["infos"][k + 1].get("action_valid", True))))
    episode.won = out["won"]
    return episode


_worker_envs: dict[tuple[str, int | None, str], gym.Env] = {}


def _worker_init() -> None:
    # Die with the parent: a killed collector must not leave orphans stepping games.
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:  # pragma: no cover - non-Linux
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _collect_one(job: tuple[CollectConfig, int]) -> Episode:
    cfg, k = job
    import wmgym  # noqa: F401 - registers ids in spawned workers

    key = (cfg.env, cfg.max_steps, cfg.format)
    if key not in _worker_envs:
        kw = {} if cfg.max_steps is None else {"max_episode_steps": cfg.max_steps}
        if cfg.format != "wmgym":  # only then: envs without the kwarg keep working as before
            kw["format"] = cfg.format
        _worker_envs[key] = gym.make(cfg.env, split=cfg.split, **kw)
    env = _worker_envs[key]
    n = env.unwrapped.num_games(cfg.split)
    agent = make_agent(cfg.policy, cfg.env, privileged=True)
    ep = run_episode(env, agent, seed=cfg.seed + k, options={"game": game_index(k, n, cfg.spread), "split": cfg.split},
                     env_id=cfg.env, index=k)
    return ep


def done_indices(cfg: CollectConfig) -> set[int]:
    """Episode indices of this (env, policy, split) already in ``cfg.out``."""
    if not os.path.exists(cfg.out):
        return set()
    repair(cfg.out)
    name = cfg.policy_name()
    return {ep.index for ep in read_episodes(cfg.out)
            if ep.env_id == cfg.env and ep.policy == name and ep.split == cfg.split and ep.format == cfg.format}


def collect(cfg: CollectConfig, *, pool=None) -> int:
    """Run (or resume) a collection; returns the number of episodes written now.

    ``pool`` (a :class:`~wmgym.training.distributed.WorkerPool`, left open) runs the episodes instead of
    the pool ``cfg`` asks for: tests hold it to kill its actors.
    """
    import wmgym  # noqa: F401

    from tqdm import tqdm

    done = done_indices(cfg)
    todo = [k for k in range(cfg.episodes) if k not in done]
    if not todo:
        return 0
    env_cls = gym.spec(cfg.env)  # raises Gymnasium's error with suggestions for unknown ids
    probe = gym.make(env_cls.id, split=cfg.split)
    n = probe.unwrapped.num_games(cfg.split)
    # Generate the games once, with a progress bar, before playing (a no-op for envs that generate none).
    probe.unwrapped.prepare_games(cfg.split, sorted({game_index(k, n, cfg.spread) for k in todo}), workers=cfg.workers,
                                  progress=cfg.progress)
    probe.close()

    written = 0
    bar = tqdm(total=cfg.episodes, initial=len(done), desc=f"collecting {cfg.env} ({cfg.policy})",
               unit="ep", disable=not cfg.progress)
    with TrajectoryWriter(cfg.out) as writer:
        try:
            with episode_results(_collect_one, [(cfg, k) for k in todo], pool, cfg.ray, cfg.workers) as results:
                for episode in results:
                    writer.write(episode)
                    written += 1
                    bar.update()
        finally:
            bar.close()
    return written


@contextlib.contextmanager
def episode_results(fn: Callable[[Any], Any], jobs: list, pool: Any = None, ray: str | None = None,
                    workers: int = 1) -> Iterator[Iterable[Any]]:
    """``fn`` over ``jobs``, results in the order they finish: on ``pool`` (a caller's), on ``workers`` Ray actors
    (``ray``: ``"local"`` or a cluster address), in this process (one worker), or on a fork pool. A pool started
    here is stopped on exit, so an interrupted run leaves no worker behind (collect and synth share this)."""
    own: Any = None
    if pool is not None:
        results: Iterable[Any] = pool.imap_unordered(fn, jobs)
    elif ray is not None:
        from wmgym.training.distributed import WorkerPool

        own = WorkerPool(workers, ray)
        results = own.imap_unordered(fn, jobs)
    elif workers == 1:
        results = map(fn, jobs)
    else:
        import multiprocessing as mp

        own = mp.get_context("fork").Pool(workers, initializer=_worker_init)
        results = own.imap_unordered(fn, jobs)
    try:
        yield results
    finally:
        if hasattr(own, "terminate"):
            own.terminate()
            own.join()
        elif own is not None:
            own.close()
