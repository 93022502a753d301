"""`wmgym collect`: agents rolled into trajectory files, parallel workers, and resuming after kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from wmgym.training.collect import CollectConfig, collect, game_index, spread_step
from wmgym.training.trajectories import read_episodes


def test_expert_wins_textworld(tmp_path):
    out = tmp_path / "expert.jsonl"
    assert collect(CollectConfig(env="TextWorld-v0", policy="expert", episodes=4, out=str(out), progress=False)) == 4
    eps = list(read_episodes(out))
    assert sorted(e.index for e in eps) == [0, 1, 2, 3]
    assert all(e.won for e in eps), [(e.game_id, e.steps[-1].observation) for e in eps if not e.won]
    assert all(e.steps[-1].terminated for e in eps)
    # Rerunning with the same file writes nothing new.
    assert collect(CollectConfig(env="TextWorld-v0", policy="expert", episodes=4, out=str(out), progress=False)) == 0


def test_score_queries_are_true_transitions_that_show_the_turn_count(tmp_path):
    """``+score:P`` types TextWorld's score command between the expert's actions: the expert plays the same game
    (the query changes neither the state nor the turn count), and each answer gives the score so far and the
    turn count that the winning banner then prints."""
    import re

    plain, probed = tmp_path / "plain.jsonl", tmp_path / "probed.jsonl"
    for policy, out in (("expert", plain), ("expert+score:0.5", probed)):
        collect(CollectConfig(env="TextWorld-v0", policy=policy, episodes=4, out=str(out), progress=False))
    plain_eps = {e.index: e for e in read_episodes(plain)}
    queries = 0
    for ep in read_episodes(probed):
        assert ep.policy == "expert+score:0.5" and ep.won
        actions = [s.action for s in ep.steps]
        assert [a for a in actions if a != "score"] == [s.action for s in plain_eps[ep.index].steps]
        assert all(not (a == b == "score") for a, b in zip(actions, actions[1:]))
        turns, score = 1, 0.0
        for step in ep.steps:
            if step.action == "score":
                queries += 1
                m = re.fullmatch(r"You have so far scored (\d+) out of a possible \d+, in (\d+) turns?\.",
                                 step.observation)
                assert m, step.observation
                assert (int(m.group(1)), int(m.group(2))) == (score, turns)
                assert step.reward == 0
            else:
                turns, score = turns + 1, score + step.reward
        assert ep.steps[-1].observation.endswith(f"in {turns} turns.")
    assert queries >= 4


def _count_lines(path) -> int:
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


@pytest.mark.slow
def test_kill_9_then_resume_loses_nothing(tmp_path, wmgym_home):
    out = tmp_path / "random.jsonl"
    n = 14
    cmd = [sys.executable, "-m", "wmgym.cli", "collect", "--env", "TextWorld-v0", "--policy", "random",
           "--episodes", str(n), "--out", str(out), "--workers", "2", "--quiet", "--seed", "5"]
    env = {**os.environ, "WMGYM_HOME": wmgym_home}
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    deadline = time.time() + 300
    while _count_lines(out) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "collector finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the collector and its workers, mid-run
    proc.wait()
    written_before = _count_lines(out)
    assert 0 < written_before < n

    subprocess.run(cmd, env=env, check=True, timeout=600)
    eps = list(read_episodes(out))
    assert sorted(e.index for e in eps) == list(range(n))  # exact count, no duplicates
    assert out.read_bytes().endswith(b"\n")
    for line in out.read_text().splitlines():  # every line is a whole episode
        assert line.startswith("{") and line.endswith("}")


def test_spread_order_is_a_permutation_whose_prefixes_cover_the_split():
    """SciWorld's train split: 3,592 games in 30 task blocks. ``k mod n`` gives 60 episodes one block of n/30;
    the spread order gives every block one by the 60th episode, and is still each game once per n episodes."""
    import math

    n = 3592
    assert spread_step(n) == 2219 and math.gcd(2219, n) == 1  # round(n / golden ratio) = 2220 shares 4 with n
    order = [game_index(k, n, spread=True) for k in range(n)]
    assert sorted(order) == list(range(n))
    assert [game_index(k, n, spread=True) for k in range(n, n + 5)] == order[:5]  # k >= n wraps as k mod n does
    assert [game_index(k, n) for k in range(n + 2)] == [*range(n), 0, 1]  # the default order is unchanged

    def blocks(games):
        return {g * 30 // n for g in games}  # block i holds games [i n / 30, (i + 1) n / 30)

    assert blocks(order[:60]) == set(range(30))  # prefixes only grow, so every m >= 60 covers them too
    assert blocks(range(60)) == {0}
    for size in (1, 2, 3, 10, 1819, 2500):  # small and real split sizes: a permutation each
        assert sorted(game_index(k, size, spread=True) for k in range(size)) == list(range(size))
    with pytest.raises(ValueError, match="n=0"):
        game_index(0, 0, spread=True)


def test_spread_collection_plays_the_spread_games_and_resumes(tmp_path):
    """``spread=True`` (and ``wmgym collect --spread``) records the spread order's games; a resumed run plays
    only the missing indices, on the games of those indices."""
    from wmgym.cli import main

    out = tmp_path / "spread.jsonl"
    cfg = dict(env="TextWorld-v0", policy="random", out=str(out), progress=False, max_steps=2)
    assert collect(CollectConfig(episodes=2, spread=True, **cfg)) == 2
    assert main(["collect", "--env", "TextWorld-v0", "--policy", "random", "--episodes", "4", "--out", str(out),
                 "--max-steps", "2", "--quiet", "--spread"]) == 0
    eps = sorted(read_episodes(out), key=lambda e: e.index)
    import gymnasium as gym

    n = gym.make("TextWorld-v0").unwrapped.num_games("train")  # 2,500
    assert [e.index for e in eps] == [0, 1, 2, 3]  # resumed: no index twice
    assert [e.game_id for e in eps] == [f"train/{game_index(k, n, spread=True):05d}" for k in range(4)]
    assert [e.game_id for e in eps] == ["train/00000", "train/01547", "train/00594", "train/02141"]
    assert collect(CollectConfig(episodes=4, spread=True, **cfg)) == 0
