"""The chat protocol: message layout, marker parsing, and the exact tokens a ChatML template gives."""

from __future__ import annotations

import pytest

from wmgym.worldmodels.protocol import SUCCESS_MARKER, build_messages, parse_observation, target_text


def test_build_messages_layout():
    msgs = build_messages("ctx", [("open box", "You open it."), ("eat apple", "Yum." + SUCCESS_MARKER)], "look")
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert msgs[0]["content"] == "ctx" and msgs[4]["content"] == "Yum. [SUCCESS]" and msgs[-1]["content"] == "look"
    assert build_messages("ctx", [])[-1]["role"] == "system"


@pytest.mark.parametrize("text, observation, success, error", [
    ("You eat the apple. [SUCCESS]", "You eat the apple.", True, None),
    ("  You open the box.\n", "You open the box.", False, None),
    ("Done. [SUCCESS] and then some chatter", "Done.", True, None),  # Word2World cuts at the marker
    ("", "", False, "empty generation"),
    ("   \n", "", False, "empty generation"),
    ("bell\x07 rings", "bell\ufffd rings", False, None),  # control bytes stay inside the observation space
])
def test_parse_observation(text, observation, success, error):
    parsed = parse_observation(text)
    assert (parsed.observation, parsed.success, parsed.parse_error) == (observation, success, error)


def test_parse_truncated_is_flagged():
    parsed = parse_observation("You walk and walk and walk", truncated=True)
    assert parsed.observation == "You walk and walk and walk"
    assert "max_new_tokens" in parsed.parse_error


def test_target_text_round_trips():
    for won in (False, True):
        parsed = parse_observation(target_text("You win.", won))
        assert parsed.observation == "You win." and parsed.success is won


def test_hf_prompt_is_the_chat_template_token_for_token(tiny_model_dir):
    """The saved Qwen2-architecture model's template gives ChatML, and the backend feeds exactly those ids."""
    from transformers import AutoTokenizer

    from wmgym.worldmodels import load_world_model

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    wm = load_world_model(tiny_model_dir, max_new_tokens=8)
    h = wm.start("Task: eat the apple")
    wm.step(h, "open fridge")
    wm.observe(h, "take apple", "You take the apple.")
    wm.replace_last(h, "You take the red apple.")
    step = wm.step(h, "eat apple")
    history = wm.history(h)
    messages = build_messages("Task: eat the apple", history[:-1], "eat apple")
    expected = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
    # ChatML, rendered by hand: the template is Qwen's layout.
    chatml = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    assert tok(chatml + "<|im_start|>assistant\n", add_special_tokens=False)["input_ids"] == list(expected)
    fed = wm._episodes[h].cached_ids  # what the cache holds: the prompt, then the generated tokens but the last
    n = step.extra["prompt_tokens"]
    assert n == len(expected) and fed[:n] == list(expected)
    assert fed[n:] == step.extra["token_ids"][:-1]
