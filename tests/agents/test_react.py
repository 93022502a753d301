"""The ReAct agent: reply parsing and a real OpenAI-compatible HTTP server (its local-model path plays in
tests/benchmarks/test_consistency.py)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest


def test_parse_action_hand_made():
    from wmgym.agents.react import parse_action

    assert parse_action("Thought: the key opens it.\nAction: unlock box with key") == "unlock box with key"
    assert parse_action("Action: go north\nThought: hm\naction:  take apple 1 from table 1.  ") == \
        "take apple 1 from table 1"
    assert parse_action("> open fridge\n") == "open fridge"
    assert parse_action("`look`") == "look"
    assert parse_action("") == "look"
    assert parse_action("Thought: nothing to do") == "look"
    assert len(parse_action("Action: " + "x" * 999)) == 200


def test_react_needs_a_model():
    from wmgym.agents.react import ReActAgent

    with pytest.raises(ValueError, match="--agent-model"):
        ReActAgent()
    with pytest.raises(ValueError, match="not a local directory"):
        ReActAgent(model="no/such-model")


@pytest.mark.slow
def test_react_over_http_against_wmgym_serve(tmp_path, trained_textworld_model_dir):
    pytest.importorskip("wmgym.worldmodels.server")
    import gymnasium as gym

    from wmgym.agents import play
    from wmgym.agents.react import ReActAgent

    proc = subprocess.Popen([sys.executable, "-m", "wmgym.cli", "serve", "--model", str(trained_textworld_model_dir),
                             "--port", "0", "--served-model-name", "tw-agent", "--max-new-tokens", "16"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = ""
        for line in proc.stdout:
            if "serving" in line:
                break
        m = re.search(r"http://[\d.]+:(\d+)/v1", line)
        assert m, f"server did not start: {line!r}"
        agent = ReActAgent(model="tw-agent", url=f"http://127.0.0.1:{m.group(1)}/v1", max_tokens=12)
        env = gym.make("TextWorld-v0", max_episode_steps=3)
        out = play(env, agent, seed=0, options={"game": 0})
        env.close()
        assert out["steps"] >= 1 and len(agent.replies) == out["steps"]
        assert all(isinstance(a, str) and a for a in out["actions"])
        bad = ReActAgent(model="no-such-model", url=f"http://127.0.0.1:{m.group(1)}/v1")
        bad.reset("x", {}, 0)
        with pytest.raises(RuntimeError, match=r"answered HTTP 4\d\d"):
            bad.act("x", {})
    finally:
        proc.terminate()
        proc.wait(timeout=20)
