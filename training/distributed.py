"""A pool of env workers as Ray actors: collection and benchmark rollouts beyond one machine.

``wmgym collect ... --ray`` (a private local cluster on this machine) or ``--ray ADDRESS`` (an existing cluster, e.g.
``auto`` on a node of it or ``HEAD_IP:6379``). Install with ``pip install wmgym[dist]`` (plain ``ray``;
``ray[rllib]`` pins an old Gymnasium). See docs/scaling.md for the multi-node recipe.

A :class:`WorkerPool` holds ``workers`` long-lived actors, one CPU each. A job is a module-level function
and its picklable argument (``fn(job)`` runs in an actor), so an actor keeps what the function caches in
its module (its envs, its twin's model) from one job to the next, exactly like a ``multiprocessing`` worker.
Results come back to the driver as they finish; the driver alone writes files, so what a run writes
is the same whichever worker played an episode.

When an actor dies (killed, its node lost), the jobs it held are lost, never half-done: the pool starts a
replacement and runs those jobs again (``max_retries`` times each), or raises :class:`WorkerLost`. A job's
result reaches the driver at most once, so nothing is ever written twice.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

#: ``--ray`` without an address: start a private cluster on this machine (it stops with the run).
LOCAL = "local"
#: Ray's switch between a multi-node cluster and one node on loopback (read when ``ray`` is imported).
_SINGLE_NODE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


class WorkerLost(RuntimeError):
    """An actor died and its job ran out of retries (the results already returned are kept)."""


def _require_ray():
    try:
        import ray
    except ImportError:
        raise ImportError("--ray needs Ray: pip install 'wmgym[dist]' (plain `ray`, not ray[rllib])") from None
    return ray


def init_ray(address: str | None = LOCAL, *, num_cpus: int | None = None) -> bool:
    """Connect to a Ray cluster (``address``) or start a local one; returns whether this call started it.

    The local cluster is private to this process (it stops with it), has no dashboard and lives on loopback:
    Ray otherwise names the node by the machine's network address and binds and dials every port there, so
    local traffic would leave loopback. Ray's switch for a single-node cluster (the one it sets on macOS and
    Windows) keeps every address at 127.0.0.1; it is set in the environment for the processes Ray starts and
    in Ray's constants for this one (``tests/training/test_distributed.py`` checks the node's address).
    Token authentication (on by default in Ray 2.60; the token is kept in ``~/.ray/auth_token``) stays on;
    ``RAY_AUTH_MODE=disabled`` turns it off. A Ray session this process already opened is reused as it is.
    """
    local = address in (None, "", LOCAL)
    if local:
        os.environ.setdefault(_SINGLE_NODE_ENV, "0")
    ray = _require_ray()
    if ray.is_initialized():
        return False
    if local:
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = os.environ[_SINGLE_NODE_ENV] not in ("0", "false", "False")
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
    else:
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    return True


def _actor_class():
    ray = _require_ray()

    class EnvWorker:
        """One long-lived worker process: runs ``fn(job)`` and keeps the module caches ``fn`` fills."""

        def __init__(self) -> None:
            import signal

            signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the driver; the driver stops us
            try:
                import torch

                torch.set_num_threads(1)
            except ImportError:  # pragma: no cover
                pass
            import wmgym  # noqa: F401 - registers the env ids in this process

        def call(self, fn: Callable[[Any], Any], job: Any) -> Any:
            return fn(job)

    return ray.remote(num_cpus=1, max_restarts=0)(EnvWorker)


class WorkerPool:
    """``workers`` Ray actors that run jobs and hand results back as they finish.

    Args:
        workers: actors to start (one CPU each).
        address: :data:`LOCAL` (a private cluster on this machine) or a Ray address (``auto``, ``HOST:6379``).
        max_retries: times a job whose actor died is run again on a replacement (0: raise at once).
        num_cpus: CPUs of a local cluster (default: ``workers``).
    """

    def __init__(self, workers: int, address: str | None = LOCAL, *, max_retries: int = 2,
                 num_cpus: int | None = None):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.started_ray = init_ray(address, num_cpus=num_cpus or workers)
        self.workers, self.max_retries = workers, max_retries
        self._cls = _actor_class()
        self.actors = [self._cls.remote() for _ in range(workers)]
        self.lost: list[dict[str, Any]] = []
        """One record per dead actor: which job it held and whether that job was run again."""

    def imap_unordered(self, fn: Callable[[Any], Any], jobs: Iterable[Any]) -> Iterator[Any]:
        """Run ``fn(job)`` for every job on the actors (one job in flight per actor); yield results as they come."""
        ray = _require_ray()
        from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

        queue = list(enumerate(jobs))[::-1]  # popped from the end: jobs start in the order given
        attempts: dict[int, int] = {}
        flight: dict[Any, tuple[int, Any, int]] = {}  # ref -> (actor slot, job, job number)

        def submit(slot: int) -> None:
            number, job = queue.pop()
            flight[self.actors[slot].call.remote(fn, job)] = (slot, job, number)

        for slot in range(len(self.actors)):
            if queue:
                submit(slot)
        while flight:
            done, _ = ray.wait(list(flight), num_returns=1)
            ref = done[0]
            slot, job, number = flight.pop(ref)
            try:
                result = ray.get(ref)
            except (ActorDiedError, ActorUnavailableError, RayActorError) as e:
                tries = attempts.get(number, 0)
                again = tries < self.max_retries
                self.lost.append({"job": number, "error": type(e).__name__, "retried": again})
                try:  # an unreachable actor may still be running: its answer would be ignored, so stop it
                    ray.kill(self.actors[slot], no_restart=True)
                except Exception:  # noqa: BLE001 - already gone
                    pass
                self.actors[slot] = self._cls.remote()  # a fresh process for the dead one's slot
                if not again:
                    raise WorkerLost(f"a Ray worker died running job {number} ({type(e).__name__}) and it was "
                                     f"retried {tries} time(s) (max_retries={self.max_retries}); the results "
                                     f"returned so far are kept, rerun to resume") from e
                attempts[number] = tries + 1
                queue.append((number, job))
                submit(slot)
                continue
            if queue:
                submit(slot)
            yield result

    def run_on(self, fn: Callable[[Any], Any], jobs: dict[int, Any]) -> dict[int, Any]:
        """Run ``fn(job)`` on the actor of each slot of ``jobs`` (``{slot: job}``), all at once; ``{slot: result}``.

        For state an actor keeps from one call to the next (the envs a GRPO rollout steps on one actor). A slot
        whose actor died is left out of the result and gets a fresh actor (its state is gone: the caller rebuilds
        it); :attr:`lost` records it. Errors raised by ``fn`` reach the caller.
        """
        ray = _require_ray()
        from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

        refs = {slot: self.actors[slot].call.remote(fn, job) for slot, job in jobs.items()}
        out: dict[int, Any] = {}
        for slot, ref in refs.items():
            try:
                out[slot] = ray.get(ref)
            except (ActorDiedError, ActorUnavailableError, RayActorError) as e:
                self.lost.append({"slot": slot, "error": type(e).__name__, "retried": True})
                try:
                    ray.kill(self.actors[slot], no_restart=True)
                except Exception:  # noqa: BLE001 - already gone
                    pass
                self.actors[slot] = self._cls.remote()
        return out

    def close(self) -> None:
        """Stop the actors, and the local cluster if this pool started it."""
        ray = _require_ray()
        if not ray.is_initialized():
            return
        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        self.actors = []
        if self.started_ray:
            ray.shutdown()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def measure(env: str = "TextWorld-v0", policy: str = "expert", episodes: int = 40, max_steps: int | None = None,
            worker_counts: tuple[int, ...] = (1, 2), repeats: int = 1) -> dict[str, Any]:
    """Episodes/s of collection in this process, and on 1 and 2 local Ray actors, on the same episodes.

    Each pool first plays the episodes once (warm: actors started, envs made, games cached) and is then
    timed on the same list; Ray's per-episode overhead is the 1-actor time per episode minus this process's.
    """
    import dataclasses
    import tempfile
    import time

    from wmgym.training.collect import CollectConfig, _collect_one, collect

    cfg = CollectConfig(env=env, policy=policy, episodes=episodes, max_steps=max_steps, progress=False)
    with tempfile.TemporaryDirectory() as tmp:  # prepares the games (and times nothing)
        collect(dataclasses.replace(cfg, out=f"{tmp}/warm.jsonl"))
    jobs = [(cfg, k) for k in range(episodes)]

    def timed(run: Callable[[], Any]) -> float:
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - t0)
        return best

    list(map(_collect_one, jobs))  # warm this process's env cache too
    local_s = timed(lambda: list(map(_collect_one, jobs)))
    out: dict[str, Any] = {"env": env, "policy": policy, "episodes": episodes, "cpus": os.cpu_count(),
                           "load_avg_1min": os.getloadavg()[0], "local": {"seconds": local_s,
                                                                         "episodes_per_s": episodes / local_s}}
    for n in worker_counts:
        t0 = time.perf_counter()
        with WorkerPool(n, LOCAL, num_cpus=max(worker_counts)) as pool:
            list(pool.imap_unordered(_collect_one, jobs))  # warm
            start_s = time.perf_counter() - t0
            s = timed(lambda: list(pool.imap_unordered(_collect_one, jobs)))
            # The floor of Ray's cost per job: a round trip of a job that does nothing.
            noop = timed(lambda: list(pool.imap_unordered(abs, range(200)))) / 200
        out[f"ray_{n}"] = {"seconds": s, "episodes_per_s": episodes / s, "startup_and_warm_s": start_s,
                           "noop_job_ms": 1000 * noop}
    out["ray_overhead_ms_per_episode"] = 1000 * (out["ray_1"]["seconds"] - local_s) / episodes
    return out


def measure_grpo(env: str = "WM-TextWorld-v0", games: int = 2, group: int = 4, max_steps: int = 5,
                 workers: int = 2, repeats: int = 2) -> dict[str, Any]:
    """Wall time of one GRPO rollout (``games`` x ``group`` episodes of a tiny random policy) with the envs in this
    process and on ``workers`` local Ray actors (``RayEnvPool``), each warmed once, on the same episodes (checked)."""
    import tempfile
    import time

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from wmgym.agents.lm import AGENT_SYSTEM
    from wmgym.training.grpo import AgentGRPOConfig, Rollout, hf_generator
    from wmgym.training.tiny import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        build_tiny_model(tmp, [AGENT_SYSTEM, "go east", "take key", "open chest", "look", "Nothing happens."] * 20,
                         vocab_size=300, initializer_range=0.3)
        model, tok = AutoModelForCausalLM.from_pretrained(tmp), AutoTokenizer.from_pretrained(tmp)
        prompts = [f"train/{g:05d}" for g in range(games) for _ in range(group)]
        kw = dict(env=env, model=tmp, group=group, max_steps=max_steps, max_new_tokens=8, max_tokens=2048)
        out: dict[str, Any] = {"env": env, "episodes": len(prompts), "cpus": os.cpu_count(),
                               "load_avg_1min": os.getloadavg()[0]}
        played = {}
        for name, extra in (("local", {}), (f"ray_{workers}", {"ray": LOCAL, "workers": workers})):
            rollout = Rollout(AgentGRPOConfig(**kw, **extra), tok)
            gen = hf_generator(model, rollout.fmt, temperature=1.0)
            try:
                torch.manual_seed(0)
                rollout.play(prompts, gen)  # warm: envs made, a twin's model loaded
                best = float("inf")
                for _ in range(repeats):
                    torch.manual_seed(0)
                    t0 = time.perf_counter()
                    played[name] = rollout.play(prompts, gen)
                    best = min(best, time.perf_counter() - t0)
                out[name] = {"rollout_s": best, "env_steps": sum(len(ep.actions) for ep in rollout.episodes)}
            finally:
                rollout.pool.close()
        out["same_rollout"] = played["local"] == played[f"ray_{workers}"]
    return out


if __name__ == "__main__":
    import argparse
    import json

    p = argparse.ArgumentParser(prog="python -m wmgym.training.distributed",
                                description="measure collection episodes/s in-process and on 1 and 2 Ray actors "
                                            "(--grpo: a GRPO rollout's wall time, envs here or on 2 actors)")
    p.add_argument("--env", default="TextWorld-v0")
    p.add_argument("--policy", default="expert")
    p.add_argument("--episodes", type=int, default=40)
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--repeats", type=int, default=1, help="timed passes per setting (the fastest is kept)")
    p.add_argument("--grpo", action="store_true", help="time a GRPO rollout of --env (real or twin) with its envs "
                   "here and on 2 Ray actors instead")
    a = p.parse_args()
    import wmgym  # noqa: F401

    if a.grpo:
        print(json.dumps(measure_grpo(a.env, repeats=max(a.repeats, 1)), indent=2))
    else:
        print(json.dumps(measure(a.env, a.policy, a.episodes, a.max_steps, repeats=a.repeats), indent=2))
