"""SFT data: labels only on assistant turns, windows of long chats, mixes with missing envs."""

from __future__ import annotations

import gymnasium as gym
import pytest

from wmgym.training.data import (IGNORE_INDEX, MIXES, build_examples, check_mix, group_by_env, mix_sample,
                                 parse_mix, tokenize_chat, turn_windows, windows)
from wmgym.training.tiny import build_tiny
from wmgym.worldmodels.protocol import SUCCESS_MARKER, episode_messages


@pytest.fixture(scope="module")
def chats(textworld_expert_episodes):
    return [episode_messages(e) for e in textworld_expert_episodes]


@pytest.fixture(scope="module")
def tokenizer(chats):
    return build_tiny(chats, "tiny-s")[1]


def _assistant_text(messages, eos="<|im_end|>"):
    return "".join(m["content"] + eos for m in messages if m["role"] == "assistant")


def test_labels_cover_exactly_the_assistant_turns(tokenizer, chats):
    for messages in chats:
        chat = tokenize_chat(tokenizer, messages)
        labelled = [t for t in chat.labels if t != IGNORE_INDEX]
        # Every supervised token is an observation token (marker and end-of-turn included) ...
        assert tokenizer.decode(labelled) == _assistant_text(messages)
        assert SUCCESS_MARKER.strip() in tokenizer.decode(labelled)
        # ... and system and user tokens carry zero loss weight.
        for start, end in zip(chat.turn_starts, chat.turn_starts[1:] + [len(chat.input_ids)]):
            user_end = next(i for i in range(start, end) if chat.labels[i] != IGNORE_INDEX)
            user_text = tokenizer.decode(chat.input_ids[start:user_end])
            assert "user" in user_text and "assistant" in user_text  # the whole user block and the header
        system = chat.labels[: chat.turn_starts[0]]
        assert system and all(t == IGNORE_INDEX for t in system)
        assert messages[0]["content"] in tokenizer.decode(chat.input_ids[: chat.turn_starts[0]])


def test_labels_with_another_chat_template(tokenizer, chats):
    """Any template works, not only ChatML (the spans are found by rendering prefixes)."""
    other = tokenizer.__class__(tokenizer_object=tokenizer.backend_tokenizer, eos_token="<|endoftext|>")
    other.chat_template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}<|im_end|>\n\n{{ m['content'] }}"
                           "<|endoftext|>{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant<|im_end|>"
                           "\n\n{% endif %}")
    messages = chats[1]
    chat = tokenize_chat(other, messages)
    labelled = other.decode([t for t in chat.labels if t != IGNORE_INDEX])
    assert labelled == _assistant_text(messages, "<|endoftext|>")


def test_long_chats_are_windowed_and_each_turn_supervised_once(tokenizer, chats):
    messages = chats[1]  # the 5-step episode
    chat = tokenize_chat(tokenizer, messages)
    turn_len = max(b - a for a, b in zip(chat.turn_starts, chat.turn_starts[1:] + [len(chat.input_ids)]))
    limit = chat.turn_starts[0] + 2 * turn_len  # room for about two turns after the system prompt
    parts, skipped = windows(chat, limit)
    assert skipped == 0 and len(parts) > 1
    assert all(len(p["input_ids"]) <= limit for p in parts)
    got = "".join(tokenizer.decode([t for t in p["labels"] if t != IGNORE_INDEX]) for p in parts)
    assert got == _assistant_text(messages)
    # Each window starts with the system prompt; later windows keep history as unlabelled context.
    for p in parts:
        assert p["input_ids"][: chat.turn_starts[0]] == chat.input_ids[: chat.turn_starts[0]]
    assert parts[-1]["first_step"] > 0
    # A limit below system prompt + one turn skips the turns, and says so.
    parts, skipped = windows(chat, chat.turn_starts[0] + 2)
    assert parts == [] and skipped == len(messages) // 2


def test_curriculum_windows(tokenizer, chats):
    """Short turn windows (no system prompt) cover every turn once."""
    messages = chats[1]
    chat = tokenize_chat(tokenizer, messages)
    parts = turn_windows(chat, 2)
    assert len(parts) == -(-len(chat.turn_starts) // 2)
    assert "".join(tokenizer.decode([t for t in p["labels"] if t != IGNORE_INDEX]) for p in parts) \
        == _assistant_text(messages)
    assert all(messages[0]["content"] not in tokenizer.decode(p["input_ids"]) for p in parts)


def test_schedule_runs_the_curriculum_phases_first(tmp_path):
    from wmgym.training.sft import SFTConfig
    from wmgym.training.sft_batches import schedule

    data = tmp_path / "d.jsonl"
    data.write_text("")

    def ex(tag, n):
        return [{"input_ids": [tag] * 10, "labels": [tag] * 10} for _ in range(n)]

    cfg = SFTConfig(data=[str(data)], out="y", batch_tokens=20, curriculum=0.2)
    batches = schedule(ex(3, 40), [(ex(1, 7), 0.2), (ex(2, 5), 0.3)], cfg, 50)
    tags = [b[0]["input_ids"][0] for b in batches]
    assert tags == [1] * 10 + [2] * 15 + [3] * 25  # short windows repeat as needed; then the chats
    assert all({e["input_ids"][0] for e in b} == {t} for b, t in zip(batches, tags))
    assert schedule(ex(3, 40), [(ex(1, 7), 0.2), (ex(2, 5), 0.3)], cfg, 50) == batches  # fixed by the seed
    assert [b[0]["input_ids"][0] for b in schedule(ex(3, 40), [([], 0.2), ([], 0.3)], cfg, 10)] == [3] * 10


def test_build_examples_counts(tokenizer, textworld_expert_episodes):
    examples, stats = build_examples(tokenizer, textworld_expert_episodes, max_length=4096)
    assert stats["chats"] == 2 and stats["examples"] == 2 and stats["skipped_turns"] == 0
    assert 0 < stats["label_tokens"] < stats["tokens"]
    assert {e["env_id"] for e in examples} == {"TextWorld-v0"}


def test_parse_mix():
    assert parse_mix("mix3") == {e: pytest.approx(1 / 3) for e in MIXES["mix3"]}
    assert set(parse_mix("MIX5")) == set(MIXES["mix5"]) and len(MIXES["mix4"]) == 4
    assert parse_mix("ALFWorld-v0=3,TextWorld-v0=1") == {"ALFWorld-v0": 0.75, "TextWorld-v0": 0.25}
    for bad, needle in [("mix9", "mix3"), ("TextWorld-v0", "ENV=WEIGHT"), ("TextWorld-v0=x", "'x'"),
                        ("TextWorld-v0=-1", ">= 0"), ("TextWorld-v0=0", "positive")]:
        with pytest.raises(ValueError, match=needle):
            parse_mix(bad)


def test_missing_envs_of_a_mix_are_named(textworld_expert_episodes):
    by_env = group_by_env(textworld_expert_episodes)
    with pytest.raises(ValueError) as err:
        check_mix(parse_mix("mix5"), by_env)
    for env in MIXES["mix5"]:
        if env == "TextWorld-v0":
            assert f"{env}:" not in str(err.value)
            continue
        assert env in str(err.value)
        registered = env in gym.registry
        assert ("not registered" in str(err.value).split(env)[1].split(";")[0]) != registered
    report = check_mix(parse_mix("mix5"), by_env, allow_missing=True)
    assert report.weights == {"TextWorld-v0": 1.0}
    assert set(report.missing) == set(MIXES["mix5"]) - {"TextWorld-v0"}
    assert "MISSING" in str(report)


def test_mix_sample_follows_weights():
    items = {"A": list(range(10)), "B": list(range(100, 190))}
    out = mix_sample(items, {"A": 0.5, "B": 0.5}, seed=1)
    assert len(out) == 100
    assert sum(x < 100 for x in out) == 50  # A repeated 5 times
    assert len({x for x in out if x >= 100}) == 50  # B subsampled without repeats

