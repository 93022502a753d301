"""Scale-out: collection and benchmark rollouts on a real local Ray cluster, killed actors and
drivers, and SFT data-parallel over 2 CPU processes (torchrun, gloo)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

ray = pytest.importorskip("ray")

from wmgym.training.collect import CollectConfig, collect  # noqa: E402
from wmgym.training.distributed import LOCAL, WorkerLost, WorkerPool, init_ray  # noqa: E402
from wmgym.training.trajectories import read_episodes  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    """One private Ray cluster for the module: 2 CPUs on this machine (Ray's token auth as configured)."""
    assert init_ray(LOCAL, num_cpus=2)
    yield ray
    ray.shutdown()


def _contents(path) -> list[str]:
    """Every episode's full JSON, order-insensitive (workers finish in any order)."""
    return sorted(e.to_json() for e in read_episodes(path))


def _lines(path) -> int:
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


def _kill_when(path, lines: int, kill, timeout: float = 300) -> threading.Thread:
    """Call ``kill()`` from a thread as soon as ``path`` holds ``lines`` episodes (mid-run)."""
    def watch():
        deadline = time.time() + timeout
        while _lines(path) < lines and time.time() < deadline:
            time.sleep(0.005)
        kill()

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    return t


def test_local_cluster_is_private_and_small(cluster):
    nodes = [n for n in ray.nodes() if n["Alive"]]
    assert len(nodes) == 1 and ray.cluster_resources()["CPU"] == 2
    assert nodes[0]["NodeManagerAddress"] == ray.util.get_node_ip_address() == "127.0.0.1"  # on loopback only


def test_ray_collection_writes_the_same_episodes_as_one_machine(cluster, tmp_path):
    kw = dict(env="TextWorld-v0", policy="noisy-expert:0.3", episodes=6, seed=3, max_steps=12, progress=False)
    local, remote = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    assert collect(CollectConfig(out=str(local), **kw)) == 6
    assert collect(CollectConfig(out=str(remote), workers=2, ray=LOCAL, **kw)) == 6
    assert _contents(remote) == _contents(local)
    assert len({(e.game_id, e.policy, e.seed) for e in read_episodes(remote)}) == 6
    # The resume rule is the single-machine one: nothing left to do.
    assert collect(CollectConfig(out=str(remote), workers=2, ray=LOCAL, **kw)) == 0


def test_killed_actor_loses_its_episode_then_resuming_completes_without_duplicates(cluster, tmp_path):
    kw = dict(env="TextWorld-v0", policy="random", episodes=10, seed=7, max_steps=30, progress=False)
    out, ref = tmp_path / "killed.jsonl", tmp_path / "ref.jsonl"
    pool = WorkerPool(2, LOCAL, max_retries=0)
    try:
        watcher = _kill_when(out, 1, lambda: ray.kill(pool.actors[0], no_restart=True))
        with pytest.raises(WorkerLost, match="max_retries=0"):
            collect(CollectConfig(out=str(out), workers=2, **kw), pool=pool)
        watcher.join()
    finally:
        pool.close()
    assert pool.lost and pool.lost[0]["retried"] is False
    first = [e.index for e in read_episodes(out)]
    assert 0 < len(first) < 10 and len(set(first)) == len(first)

    assert collect(CollectConfig(out=str(out), workers=2, ray=LOCAL, **kw)) == 10 - len(first)
    assert sorted(e.index for e in read_episodes(out)) == list(range(10))  # none lost, none twice
    collect(CollectConfig(out=str(ref), **kw))
    assert _contents(out) == _contents(ref)


@pytest.mark.slow
def test_killed_actor_is_replaced_and_its_episode_played_again(cluster, tmp_path):
    kw = dict(env="TextWorld-v0", policy="random", episodes=8, seed=11, max_steps=30, progress=False)
    out = tmp_path / "retried.jsonl"
    pool = WorkerPool(2, LOCAL, max_retries=1)
    try:
        watcher = _kill_when(out, 1, lambda: ray.kill(pool.actors[1], no_restart=True))
        assert collect(CollectConfig(out=str(out), workers=2, **kw), pool=pool) == 8
        watcher.join()
    finally:
        pool.close()
    assert [r["retried"] for r in pool.lost] == [True]
    assert sorted(e.index for e in read_episodes(out)) == list(range(8))


def test_job_errors_reach_the_driver(cluster):
    with WorkerPool(1, LOCAL) as pool:
        with pytest.raises(Exception, match="invalid literal"):
            list(pool.imap_unordered(int, ["12", "twelve"]))


@pytest.mark.slow
def test_kill_9_of_the_ray_driver_then_resume(tmp_path, wmgym_home):
    """``wmgym collect --ray`` killed with its whole cluster (kill -9 of the process group) resumes exactly."""
    out = tmp_path / "k9.jsonl"
    cmd = [sys.executable, "-m", "wmgym.cli", "collect", "--env", "TextWorld-v0", "--policy", "random",
           "--episodes", "8", "--out", str(out), "--workers", "2", "--quiet", "--seed", "5", "--max-steps", "30",
           "--ray"]
    env = {**os.environ, "WMGYM_HOME": wmgym_home}
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    deadline = time.time() + 300
    while _lines(out) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    assert proc.poll() is None, "collector finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the private cluster it started
    proc.wait()
    before = _lines(out)
    assert 0 < before < 8
    subprocess.run(cmd, env=env, check=True, timeout=600)
    assert sorted(e.index for e in read_episodes(out)) == list(range(8))


def test_consistency_rows_on_ray_equal_the_single_process_ones(cluster, tmp_path):
    from wmgym.benchmarks import consistency

    args = ["--split", "train", "--game-list", "0,2,3", "--agents", "scripted:0.3,random", "--max-steps", "8",
            "--real-only"]
    assert consistency.main([*args, "--out", str(tmp_path / "one")]) == 0
    assert consistency.main([*args, "--ray", "--workers", "2", "--out", str(tmp_path / "ray")]) == 0
    one, dist = ((json.loads((tmp_path / d / "result.json").read_text())["results"]["envs"]["TextWorld-v0"])
                 for d in ("one", "ray"))
    for spec in ("scripted:0.3", "random"):
        assert dist["agents"][spec]["games"] == one["agents"][spec]["games"]
        assert dist["agents"][spec]["real"] == one["agents"][spec]["real"]


@pytest.mark.slow
def test_sft_runs_data_parallel_on_two_cpu_processes(tmp_path, textworld_expert_episodes, wmgym_home):
    """``torchrun --nproc_per_node 2 -m wmgym.cli train sft``: two gloo ranks, each step reads two batches."""
    from wmgym.training.trajectories import TrajectoryWriter

    data = tmp_path / "tw.jsonl"
    with TrajectoryWriter(data) as w:
        for ep in textworld_expert_episodes:
            w.write(ep)
    sft = ["-m", "wmgym.cli", "train", "sft", "--data", str(data), "--preset", "tiny-s", "--max-steps", "4",
           "--save-steps", "1000", "--eval-fraction", "0", "--max-length", "2048", "--batch-tokens", "1024",
           "--logging-steps", "1", "--no-progress"]
    env = {**os.environ, "WMGYM_HOME": wmgym_home, "OMP_NUM_THREADS": "1"}
    one, two = tmp_path / "one", tmp_path / "two"
    subprocess.run([sys.executable, *sft, "--out", str(one)], env=env, check=True, timeout=300)
    port = str(29500 + os.getpid() % 1000)
    run = subprocess.run(["torchrun", "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", port,
                          *sft, "--out", str(two)], env=env, timeout=300, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("saved the world model") == 2  # both ranks ran the command
    s1, s2 = (json.loads((d / "sft_summary.json").read_text()) for d in (one, two))
    assert s1["steps"] == s2["steps"] == 4
    # Data parallel: the ranks read different batches, so 4 steps saw twice the tokens of one process.
    assert s2["tokens_seen_this_run"] == pytest.approx(2 * s1["tokens_seen_this_run"], rel=0.35)
    assert (two / "model.safetensors").exists()


# ---------------------------------------------------------------- agent-utility rollouts on the same pool
def _synth_files(out) -> tuple[list[str], list[str]]:
    """A synth run's episodes and ``--keep won`` dropped records, order-insensitive."""
    from wmgym.training.synth import dropped_path

    side = dropped_path(out)
    dropped = sorted(side.read_text().splitlines()) if side.exists() else []
    return _contents(out), dropped


@pytest.mark.slow
def test_synth_on_ray_writes_the_same_episodes_and_dropped_list(cluster, trained_textworld_model_dir, tmp_path):
    """``wmgym synth --ray --workers 2 --keep won``: the kept episodes and the dropped list of one process, also when
    an actor dies (before its first episode: the episode is played on a replacement) and when the run is resumed
    with more episodes (every index once, in the file or the dropped list)."""
    from wmgym.training.synth import SynthConfig, synth

    def cfg(out, **kw):
        return SynthConfig(env="WM-TextWorld-v0", agent="scripted:0.3", out=str(out), keep="won",
                           model=str(trained_textworld_model_dir), max_steps=2, seed=1, progress=False, **kw)

    local, remote = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    counts = synth(cfg(local, episodes=4))
    assert counts["played"] == 4 and 0 < counts["kept"] < 4  # both kinds: the dropped list is exercised
    pool = WorkerPool(2, LOCAL, max_retries=1)
    try:
        ray.kill(pool.actors[0], no_restart=True)
        first = synth(cfg(remote, episodes=2, workers=2), pool=pool)
        assert first["played"] == 2 and [r["retried"] for r in pool.lost] == [True]
        rest = synth(cfg(remote, episodes=4, workers=2), pool=pool)  # resumed: only the new indices
        assert rest["played"] == 2 and first["kept"] + rest["kept"] == counts["kept"]
    finally:
        pool.close()
    assert _synth_files(remote) == _synth_files(local)  # none lost, none twice, the dropped list whole
    assert all(e.synthetic and e.world_model == str(trained_textworld_model_dir.resolve())
               for e in read_episodes(remote))
    assert synth(cfg(remote, episodes=4, workers=2, ray=LOCAL))["played"] == 0  # the resume rule: nothing left


@pytest.fixture(scope="module")
def tiny_policy(tmp_path_factory):
    """A randomly initialised tiny Qwen2 policy with the ChatML template."""
    from wmgym.agents.lm import AGENT_SYSTEM
    from wmgym.training.tiny import build_tiny_model

    texts = [AGENT_SYSTEM, "go east", "take key", "open chest", "look", "Nothing happens.", "You are in a kitchen."]
    return build_tiny_model(tmp_path_factory.mktemp("policy"), texts * 20, vocab_size=300, initializer_range=0.3)


def test_grpo_rollout_with_envs_on_ray_actors_equals_the_local_one(cluster, tiny_policy):
    """``wmgym train grpo --ray --workers 2``: the rollout function steps the envs on the actors and returns the
    local rollout's ids, masks, log-probs and rewards for the same seed; an actor killed mid-rollout is replaced and
    its envs rebuilt by replay, with the same result."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from wmgym.training.grpo import AgentGRPOConfig, RayEnvPool, Rollout, hf_generator

    model, tok = AutoModelForCausalLM.from_pretrained(tiny_policy), AutoTokenizer.from_pretrained(tiny_policy)
    prompts = ["train/00000", "train/00000", "train/00001", "train/00001"]
    kw = dict(env="TextWorld-v0", model=str(tiny_policy), group=2, max_steps=3, max_new_tokens=6, max_tokens=1024)

    def play(rollout, kill_at: int | None = None):
        gen = hf_generator(model, rollout.fmt, temperature=1.0)
        calls = []

        def generate(contexts, n):
            calls.append(1)
            if len(calls) == kill_at:  # the envs of actor 0 are mid-episode
                ray.kill(rollout.pool.workers.actors[0], no_restart=True)
            return gen(contexts, n)

        torch.manual_seed(0)
        return rollout.play(prompts, generate)

    local = Rollout(AgentGRPOConfig(**kw), tok)
    try:
        want = play(local)
    finally:
        local.pool.close()
    remote = Rollout(AgentGRPOConfig(**kw, ray=LOCAL, workers=2), tok)
    try:
        assert isinstance(remote.pool, RayEnvPool) and remote.pool.num_games("train") > 1
        got = play(remote)
        assert got == want
        assert [ep.actions for ep in remote.episodes] == [ep.actions for ep in local.episodes]
        assert play(remote, kill_at=2) == want
        assert [r["slot"] for r in remote.pool.workers.lost] == [0]
    finally:
        remote.pool.close()
    assert sum(len(ep.actions) for ep in local.episodes) > 4  # the episodes went past their first step
