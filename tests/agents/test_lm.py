"""The agent chat format and ``lm:DIR``: a policy LM that generates its action or scores the admissible commands."""

from __future__ import annotations

import gymnasium as gym
import pytest

from wmgym.agents import make_agent, parse_spec, play
from wmgym.agents.lm import AGENT_SYSTEM, LMAgent, agent_messages, parse_reply

_TEXTS = ["You are in the middle of a room. You see a cabinet 1, a countertop 1 and a fridge 1.",
          "go to cabinet 1", "open fridge 1", "take apple 1 from countertop 1", "look", "inventory",
          "You arrive at cabinet 1. On the cabinet 1, you see a mug 1.", "Nothing happens."] * 10


@pytest.fixture(scope="module")
def agent_dir(tmp_path_factory):
    from wmgym.training.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("lm-agent"), _TEXTS, vocab_size=400, initializer_range=0.3)


def test_agent_messages_prompt_and_training_chat():
    obs, acts = ["o0", "o1", "o2"], ["a0", "a1"]
    prompt = agent_messages(obs, acts)
    assert prompt == [{"role": "system", "content": AGENT_SYSTEM}, {"role": "user", "content": "o0"},
                      {"role": "assistant", "content": "a0"}, {"role": "user", "content": "o1"},
                      {"role": "assistant", "content": "a1"}, {"role": "user", "content": "o2"}]
    full = agent_messages(obs, acts + ["a2"])
    assert full == prompt + [{"role": "assistant", "content": "a2"}]
    assert agent_messages(["o0"], []) == prompt[:2]


def test_agent_messages_max_turns_keeps_the_first_exchange_and_the_last_ones():
    obs, acts = [f"o{i}" for i in range(6)], [f"a{i}" for i in range(5)]
    contents = [m["content"] for m in agent_messages(obs, acts, max_turns=2)]
    assert contents == [AGENT_SYSTEM, "o0", "a0", "o3", "a3", "o4", "a4", "o5"]
    contents = [m["content"] for m in agent_messages(obs[:5], acts, max_turns=2)]  # a training chat
    assert contents == [AGENT_SYSTEM, "o0", "a0", "o3", "a3", "o4", "a4"]
    assert [m["content"] for m in agent_messages(obs, acts, max_turns=0)] == [AGENT_SYSTEM, "o0", "a0", "o5"]
    assert agent_messages(obs, acts, max_turns=10) == agent_messages(obs, acts)
    roles = [m["role"] for m in agent_messages(obs, acts, max_turns=1)]
    assert roles == ["system"] + ["user", "assistant"] * 2 + ["user"]


def test_agent_messages_refuses_bad_counts():
    with pytest.raises(ValueError, match="at least one observation"):
        agent_messages([], [])
    with pytest.raises(ValueError, match="2 observations and 4 actions"):
        agent_messages(["a", "b"], ["x"] * 4)
    with pytest.raises(ValueError, match="max_turns"):
        agent_messages(["a"], [], max_turns=-1)


def test_parse_reply_takes_the_first_line():
    assert parse_reply("\n  go to cabinet 1 \nthen more") == "go to cabinet 1"
    assert parse_reply("") == ""
    assert len(parse_reply("x" * 999)) == 200


def test_lm_specs_parse_and_bad_options_are_named(agent_dir):
    spec = parse_spec(f"lm:{agent_dir}?mode=score&max_turns=4")
    assert spec.kind == "lm" and spec.name == f"lm:{agent_dir}?mode=score&max_turns=4" and not spec.privileged
    with pytest.raises(ValueError, match="valid options"):
        make_agent(f"lm:{agent_dir}?temperature=1", "ALFWorld-v0")
    with pytest.raises(ValueError, match="valid modes"):
        make_agent(f"lm:{agent_dir}?mode=beam", "ALFWorld-v0")
    with pytest.raises(ValueError, match="must be an integer"):
        make_agent(f"lm:{agent_dir}?max_turns=many", "ALFWorld-v0")
    with pytest.raises(ValueError, match="model directory"):
        make_agent("lm:", "ALFWorld-v0")


def test_scores_are_the_mean_log_probability_of_command_and_end_of_turn(agent_dir):
    """The batched scoring on the prompt's cache equals a plain forward pass over prompt + command."""
    import torch

    agent = LMAgent(agent_dir, mode="score")
    agent.reset("You are in the middle of a room.", {}, 0)
    prompt = agent.prompt_ids()
    commands = ["go to cabinet 1", "look", "take apple 1 from countertop 1"]
    scores = agent.score(prompt, commands)
    end = agent.tokenizer.convert_tokens_to_ids("<|im_end|>")
    for command, score in zip(commands, scores):
        cand = agent.tokenizer(command, add_special_tokens=False)["input_ids"] + [end]
        with torch.no_grad():
            logits = agent.model(input_ids=torch.tensor([prompt + cand])).logits[0]
        logp = torch.log_softmax(logits[len(prompt) - 1:-1].float(), -1)
        want = logp.gather(-1, torch.tensor(cand).unsqueeze(-1)).mean().item()
        assert score == pytest.approx(want, abs=1e-4)


@pytest.mark.parametrize("mode", ["generate", "score"])
def test_lm_agent_plays_an_alfworld_episode(agent_dir, mode):
    env = gym.make("ALFWorld-v0", max_episode_steps=4)
    spec = f"lm:{agent_dir}" + ("?mode=score" if mode == "score" else "")
    agent = make_agent(spec, "ALFWorld-v0")
    assert isinstance(agent, LMAgent) and agent.name == spec and agent.mode == mode
    out = play(env, agent, seed=0, options={"game": 0})
    env.close()
    assert out["steps"] == 4 and len(agent.actions) == 4
    assert agent.observations == out["observations"][:4]  # what the env returned, in order
    assert set(agent.choices) == {mode}
    if mode == "score":  # only admissible commands are played
        for action, info in zip(out["actions"], out["infos"]):
            assert action in info["admissible_commands"]


def test_score_mode_generates_where_the_env_lists_no_commands(agent_dir):
    agent = LMAgent(agent_dir, mode="score", max_new_tokens=4)
    agent.reset("You are in the middle of a room.", {"admissible_commands": []}, 0)
    assert isinstance(agent.act("You are in the middle of a room.", {"admissible_commands": []}), str)
    assert agent.choices == ["generate"]


def test_agents_of_one_model_share_the_weights_until_the_directory_is_saved_again(agent_dir):
    import os

    a, b = LMAgent(agent_dir), LMAgent(agent_dir, mode="score")
    assert a.model is b.model
    weights = next(agent_dir.glob("*.safetensors"))
    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # as a new save would
    assert LMAgent(agent_dir).model is not a.model
