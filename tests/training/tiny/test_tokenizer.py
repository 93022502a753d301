"""The tiny preset's tokenizers: entity pieces, numbered turns, and the refusal of unknown settings."""

from __future__ import annotations

import pytest

from wmgym.training import tiny


def _pieces(tok, text: str) -> list[str]:
    return [tok.decode([i]) for i in tok(text)["input_ids"]]


def test_entity_phrases_put_every_listed_item_two_tokens_behind_its_key(alf_lines):
    tok = tiny.train_tokenizer(alf_lines * 3, tiny.get_preset("tiny-phrases"))
    assert _pieces(tok, "On the countertop 1, you see a candle 2, a candle 1, and a soapbar 1.") == [
        "On the", " countertop 1", ", you see a", " candle 2", ", a", " candle 1", ", and a", " soapbar 1", "."]
    # the word preset cuts the same sentence into words: the receptacle is 5 tokens before the first item
    word_tok = tiny.train_tokenizer(alf_lines * 3, tiny.get_preset("tiny"))
    words = _pieces(word_tok, "On the countertop 1, you see a candle 2")
    assert words[words.index(" candle 2") - 5] == " countertop 1"
    # anything still round-trips, unseen words and entities included
    for text in ("The fridge 12 is open. In it, you see a zebra 7.\n\n- Ünïcode 3, tabs\tand  spaces", ""):
        assert tok.decode(tok(text)["input_ids"]) == text


def test_turn_numbers_give_each_user_header_one_token_and_no_label(tmp_path):
    """``tiny-turns`` numbers the user turns in its template; each header is one token, the labels still cover
    only the observations, and a saved tokenizer renders the same chat."""
    from transformers import AutoTokenizer

    from wmgym.training.data import IGNORE_INDEX, tokenize_chat

    def chat(n):
        msgs = [{"role": "system", "content": "Task: eat the apple."}]
        for k in range(n):
            msgs += [{"role": "user", "content": "look"},
                     {"role": "assistant", "content": f"You scored 0, in {k + 2} turns."}]
        return msgs

    chats = [chat(n) for n in (3, 5, 12, 12)]  # a header becomes a token where it occurs twice (min_frequency)
    tok = tiny.train_tokenizer(tiny.chat_texts(chats, turn_numbers=True), tiny.get_preset("tiny-turns"))
    text = tok.apply_chat_template(chats[2], tokenize=False)
    assert "<|im_start|>user 1\nlook" in text and "<|im_start|>user 12\nlook" in text
    pieces = [tok.decode([i]) for i in tok(text)["input_ids"]]
    assert [p for p in pieces if p.startswith("user")] == [f"user {k}" for k in range(1, 13)]
    longer = tok.apply_chat_template(chat(14), tokenize=False)  # turns past the training data still round-trip
    assert "<|im_start|>user 14\n" in longer and tok.decode(tok(longer)["input_ids"]) == longer
    tc = tokenize_chat(tok, chats[2])
    labelled = tok.decode([t for t in tc.labels if t != IGNORE_INDEX])
    assert labelled == "".join(f"You scored 0, in {k + 2} turns.<|im_end|>" for k in range(12))
    tiny.save_tokenizer(tok, tmp_path / "tok")
    assert AutoTokenizer.from_pretrained(tmp_path / "tok").apply_chat_template(chats[1], tokenize=False) == \
        tok.apply_chat_template(chats[1], tokenize=False)
    # the plain preset keeps ChatML's unnumbered headers
    plain = tiny.train_tokenizer(tiny.chat_texts(chats), tiny.get_preset("tiny"))
    assert "<|im_start|>user\nlook" in plain.apply_chat_template(chats[0], tokenize=False)


def test_tiny_count_headers_carry_the_count_the_text_prints_in_the_same_tokens():
    """``tiny-count`` numbers the user turns from 2 with digits as their own tokens: after k commands the game
    says "in k + 1 turns", and the k-th header's number is those very tokens (a copy, not a mapping)."""
    from wmgym.training.data import IGNORE_INDEX, tokenize_chat

    def chat(n):
        msgs = [{"role": "system", "content": "Task: eat the apple."}]
        for k in range(1, n + 1):
            msgs += [{"role": "user", "content": "look"},
                     {"role": "assistant", "content": f"You scored 0 out of a possible 1, in {k + 1} turns."}]
        return msgs

    chats = [chat(n) for n in (3, 5, 12, 12)]
    tok = tiny.build_tokenizer(chats, "tiny-count")
    text = tok.apply_chat_template(chats[2], tokenize=False)
    assert "<|im_start|>user 2\nlook" in text and "<|im_start|>user 13\nlook" in text
    ids = tok(text)["input_ids"]
    pieces = [tok.decode([i]) for i in ids]
    headers = [k for k, p in enumerate(pieces) if p == "user"]
    counts = [k for k, p in enumerate(pieces) if p == " turns"]
    assert len(headers) == len(counts) == 12
    for h, c in zip(headers, counts):
        number = ids[h + 1:pieces.index("\n", h)]
        assert ids[c - len(number):c] == number and tok.decode(number).strip().isdigit()
    tc = tokenize_chat(tok, chats[2])  # the labels still cover only the observations
    assert tok.decode([t for t in tc.labels if t != IGNORE_INDEX]).count("<|im_end|>") == 12
    with pytest.raises(ValueError, match="first_turn=-1"):
        tiny.TinyPreset(turn_numbers=True, first_turn=-1)


def test_a_twin_with_numbered_turns_prompts_with_the_number_of_the_current_command(tmp_path):
    """The twin renders its prompt with the saved template, so the model reads the command's number in play as
    it did in training (a fresh, untrained model: this is about the prompt, not the prediction)."""
    import gymnasium as gym

    import wmgym  # noqa: F401
    from wmgym.worldmodels.protocol import build_messages

    chats = [[{"role": "system", "content": "Task: look."}, {"role": "user", "content": "look"},
              {"role": "assistant", "content": "You see nothing."}, {"role": "user", "content": "look"},
              {"role": "assistant", "content": "You see nothing."}]] * 2
    model, tok = tiny.build_tiny(chats, "tiny-turns")
    model.save_pretrained(tmp_path / "m")
    tiny.save_tokenizer(tok, tmp_path / "m")
    twin = gym.make("WM-TextWorld-v0", model=str(tmp_path / "m"), max_new_tokens=4)
    twin.reset(seed=0, options={"game": 0})
    twin.step("look")
    twin.step("inventory")
    wm, handle = twin.unwrapped.world_model, twin.unwrapped.handle
    prompt = tok.decode(wm.chat_ids(build_messages(twin.unwrapped.init_context, wm.history(handle), "go north")))
    assert [line for line in prompt.split("\n") if line.startswith("<|im_start|>user")] == [
        "<|im_start|>user 1", "<|im_start|>user 2", "<|im_start|>user 3"]
    assert prompt.endswith("<|im_start|>user 3\ngo north<|im_end|>\n<|im_start|>assistant\n")
    twin.close()


def test_unknown_pretokenizer_is_refused_with_the_valid_ones():
    with pytest.raises(ValueError, match="entity-phrases"):
        tiny.TinyPreset(pretokenizer="bytes")
