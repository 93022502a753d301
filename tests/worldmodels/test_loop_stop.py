"""Stopping a generation that repeats itself (GenerationSettings.stop_loops): a prefix of the cap's text, sooner."""

from __future__ import annotations

import pytest

from wmgym.worldmodels.hf_decode import looping

# Which chats send the tiny model into a loop depends on the CPU's float kernels (a twin trained from one recipe
# differs across machines of one kind): the list holds chats that looped on an AVX512 machine (the first four) and
# on an AVX2-only one ("", "look look look", "open", "take"). The chats between them never looped; they keep each
# looping chat at the index, and so with the actions, it looped with.
CONTEXTS = ["Task: eat the apple\n- You are in the kitchen.", "You are in a hall.", "go", "A cellar. It is dark.",
            "north", "You see a box.", "-= Kitchen =-", "", "look look look", "open", "You are carrying: a key.",
            "The end.", "take"]
ACTIONS = ["look", "open fridge", "go north", "take key from box", "inventory", "eat apple", "examine stove"]


def test_looping_needs_three_copies_of_a_span_of_four_tokens_or_more():
    line = [5, 6, 7, 8, 9, 10, 11, 12]  # one 8-token line
    assert looping([1, 2, 3] + line * 3)
    assert not looping([1, 2, 3] + line * 2), "two copies are not a loop"
    assert not looping(line * 3 + [1]), "the copies must end the text"
    assert not looping([4] * 23) and looping([4] * 24), "a repeated token counts at 24 tokens (6 x 4)"
    assert not looping([1, 2] * 11), "a 2-token span is never a period (legitimate lists such as '1, 2, 1, 2')"
    assert looping([9] * 5 + [1, 2, 3, 4, 5, 6] * 4)


@pytest.mark.parametrize("batched", [False, True], ids=["one-by-one", "step_batch"])
def test_a_looping_observation_stops_early_as_a_prefix_of_the_capped_one(trained_textworld_model_dir, batched):
    """The tiny model trained on TextWorld expert episodes loops on chats unlike its data: with ``stop_loops`` (the default) a looping observation ends
    early, flagged as cut like one at the cap, and its tokens are the first tokens of what decoding on would have
    given (at the cap, or at an end-of-turn token after the copies); an observation that does not loop is the same
    either way."""
    from wmgym.worldmodels.hf import HFWorldModel

    runs = {}
    for stop in (True, False):
        wm = HFWorldModel(str(trained_textworld_model_dir), max_new_tokens=200, stop_loops=stop)
        handles = [wm.start(c) for c in CONTEXTS]
        steps = []
        for t in range(3):
            actions = [ACTIONS[(t + i) % len(ACTIONS)] for i in range(len(CONTEXTS))]
            steps += wm.step_batch(handles, actions) if batched else [wm.step(h, a) for h, a in zip(handles, actions)]
        runs[stop] = steps
    looped, cut = 0, set()  # episodes whose history a cut changed: their later steps differ, as they should
    n = len(CONTEXTS)
    for k, (on, off) in enumerate(zip(runs[True], runs[False])):
        episode = k % n
        if episode in cut:
            continue
        if on.extra["looped"]:
            looped += 1
            cut.add(episode)
            assert on.extra["completion_tokens"] < off.extra["completion_tokens"]
            assert off.extra["token_ids"][:on.extra["completion_tokens"]] == on.extra["token_ids"]
            assert "repeated itself" in on.parse_error, "flagged as cut, like an observation at the token cap"
            assert bool(off.parse_error) == (off.extra["completion_tokens"] == 200)
        else:
            assert on.extra["token_ids"] == off.extra["token_ids"]
        assert not off.extra["looped"]
    assert looped >= 2, "the model should loop on some chats, or the stop goes untested"
