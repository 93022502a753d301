"""RWML and agent GRPO data-parallel on 2 CPU processes (``torchrun --nproc_per_node 2 -m wmgym.cli train ...``,
gloo): each rank generates for its own prompts (GRPO: plays its own games, a group's episodes on one rank), the
rewards and the curve cover both ranks, rank 0 alone writes the model, curve and summary, and a run resumes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from wmgym.agents.lm import AGENT_SYSTEM
from wmgym.training.trajectories import Episode, Step, TrajectoryWriter

pytestmark = pytest.mark.slow

_POLICY_TEXTS = [AGENT_SYSTEM, "go to cabinet 1", "take spraybottle 1 from cabinet 1", "open drawer 2", "look",
                 "You are in the middle of a room. Your task is to: put a spraybottle in toilet.", "Nothing happens."]


def _torchrun(argv: list[str], home: str, port_offset: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "WMGYM_HOME": home, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    port = str(29500 + (os.getpid() * 2 + port_offset) % 2000)
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "--master_addr", "127.0.0.1", "--master_port", port, "-m", "wmgym.cli", *argv],
                         env=env, timeout=300, capture_output=True, text=True)
    assert run.returncode == 0, (run.stdout[-2000:], run.stderr[-4000:])
    return run


def test_grpo_runs_data_parallel_on_two_cpu_processes(tmp_path, wmgym_home):
    """2 ranks x 2 games x a group of 2 per step on ALFWorld-v0: 8 episodes a step in the curve, the ranks' games
    disjoint, one model and curve written by rank 0 (~35 s)."""
    from wmgym.training.tiny import build_tiny_model

    policy = build_tiny_model(tmp_path / "policy", _POLICY_TEXTS * 20, vocab_size=400, initializer_range=0.3)
    out = tmp_path / "run"
    run = _torchrun(["train", "grpo", "--env", "ALFWorld-v0", "--model", str(policy), "--out", str(out),
                     "--group", "2", "--games-per-step", "2", "--max-steps", "2", "--max-new-tokens", "6",
                     "--max-tokens", "1024", "--save-steps", "2", "--lr", "1e-3", "--no-progress", "--steps", "2"],
                    wmgym_home, 0)
    assert run.stdout.count("step 2/2:") == 1  # rank 0 alone prints the curve lines
    curve = json.loads((out / "curve.json").read_text())
    assert [s["step"] for s in curve["steps"]] == [1, 2]
    for s in curve["steps"]:
        assert s["episodes"] == 8 and s["episode_steps"] == 2.0  # both ranks' episodes: 2 x 2 games x 2
        rank0, rank1 = s["rank_games"]
        assert len(rank0) == len(rank1) == 2 and not set(rank0) & set(rank1)  # each rank its own games
    summary = json.loads((out / "grpo_summary.json").read_text())
    assert summary["processes"] == 2 and summary["steps"] == 2
    assert (out / "checkpoint-2" / "trainer_state.json").exists()
    assert (out / "model.safetensors").exists() and not list(out.glob("*.tmp"))


def _episodes(n_games: int = 4, steps: int = 3) -> list[Episode]:
    actions = ["open fridge", "go north", "take key from box", "inventory", "look"]
    return [Episode(env_id="TextWorld-v0", game_id=f"g{g}", seed=g, split="train", policy="expert",
                    init_context="You are in a kitchen. There is a fridge and a table.", task="eat the apple",
                    initial_observation="You are in a kitchen.",
                    steps=[Step(actions[(g + t) % len(actions)], "Nothing happens.", 0.0, False, False)
                           for t in range(steps)])
            for g in range(n_games)]


def test_rwml_runs_data_parallel_on_two_cpu_processes_and_resumes(tmp_path, tiny_model_dir, wmgym_home):
    """1 step on 2 ranks (pre-pass cached by rank 0), then a resumed run to step 2: each step 2 ranks x 2 prompts
    x 2 completions, the ranks' prompts disjoint, one model and summary (~50 s)."""
    data = tmp_path / "nothing.jsonl"
    with TrajectoryWriter(data) as w:
        for ep in _episodes():
            w.write(ep)
    out = tmp_path / "run"
    argv = ["train", "rwml", "--data", str(data), "--model", str(tiny_model_dir), "--out", str(out),
            "--reward", "continuous", "--prompts-per-step", "2", "--num-generations", "2",
            "--max-completion-length", "6", "--filter-samples", "2", "--no-filter-unpredictable", "--save-steps", "1",
            "--no-progress"]
    _torchrun([*argv, "--max-steps", "1"], wmgym_home, 1)
    assert len(json.loads((out / "prepass.json").read_text())["samples"]) == 12
    first = json.loads((out / "rwml_summary.json").read_text())
    assert first["processes"] == 2 and first["steps"] == 1 and first["completions_sampled"] == 8
    assert first["prompts_per_rank"] == [2, 2] and first["prompts_on_several_ranks"] == 0
    run = _torchrun([*argv, "--max-steps", "2"], wmgym_home, 2)
    assert run.stdout.count("pre-pass: reusing") == 2  # both ranks read rank 0's cache
    summary = json.loads((out / "rwml_summary.json").read_text())
    assert summary["resumed_from"].endswith("checkpoint-1") and summary["steps"] == 2
    assert [h["step"] for h in summary["history"]] == [1, 2] and summary["completions_sampled"] == 16
    assert summary["prompts_per_rank"] == [2, 2] and summary["prompts_on_several_ranks"] == 0
    assert (out / "model.safetensors").exists() and not list(out.glob("*.tmp"))
