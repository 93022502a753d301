"""Shared test setup: an isolated WMGYM_HOME and one torch thread per process."""

from __future__ import annotations

import os
import tempfile

# Set before wmgym is imported anywhere so every cache path lands in the test home.
# Reuse a suite-wide home across runs only when WMGYM_TEST_HOME says so (keeps games cached locally).
_HOME = os.environ.get("WMGYM_TEST_HOME") or tempfile.mkdtemp(prefix="wmgym-test-home-")
os.environ["WMGYM_HOME"] = _HOME
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass

import pytest  # noqa: E402

import wmgym  # noqa: E402,F401 - registers every id


@pytest.fixture(scope="session")
def wmgym_home() -> str:
    """The WMGYM_HOME the whole test session uses."""
    return _HOME


# ---------------------------------------------------------------- tiny world models (worldmodels helper)
#: Text the tiny models' tokenizers are trained on (TextWorld-like prose and commands).
_TINY_TEXTS = [
    "You are in a kitchen. There is a fridge and a table. On the table you see an apple.",
    "open fridge", "You open the fridge, revealing a carrot.", "take key from box", "go north", "inventory",
    "You are carrying: a key, a lamp.", "Nothing happens.", "You eat the apple. Not bad. [SUCCESS]",
    "Task: eat the apple\nInitial state (hidden from the player):\n- You are in the kitchen.\n- The door is closed.",
] * 20


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A randomly initialised tiny Qwen2 world model with a ChatML template, saved as an HF directory.

    The wide initialisation makes greedy outputs varied, so cache/batch equality tests compare real text.
    """
    from wmgym.training.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-wm"), _TINY_TEXTS, vocab_size=400, initializer_range=0.3)


@pytest.fixture(scope="session")
def textworld_expert_episodes(wmgym_home):
    """Two won expert episodes of TextWorld-v0 (games 0 and 2 of the train split: 1 and 5 steps)."""
    import gymnasium as gym

    from wmgym.agents import make_agent
    from wmgym.training.collect import run_episode

    env = gym.make("TextWorld-v0")
    expert = make_agent("expert", "TextWorld-v0", privileged=True)
    episodes = [run_episode(env, expert, seed=g, options={"game": g}, env_id="TextWorld-v0", index=g)
                for g in (0, 2)]
    env.close()
    return episodes


@pytest.fixture(scope="session")
def trained_textworld_model_dir(tmp_path_factory, textworld_expert_episodes):
    """A tiny world model trained (100 full-batch steps, ~20 s) until it reproduces the two expert episodes."""
    from wmgym.worldmodels.protocol import episode_messages
    from wmgym.training.tiny import build_tiny_model, fit_tiny_model

    chats = [episode_messages(e) for e in textworld_expert_episodes]
    texts = [m["content"] for chat in chats for m in chat]
    path = build_tiny_model(tmp_path_factory.mktemp("tw-wm"), texts, vocab_size=1000, hidden_size=64,
                            intermediate_size=128)
    losses = fit_tiny_model(path, chats, steps=100, lr=1e-2)
    assert losses[-1] < 0.1 * losses[0]
    return path
