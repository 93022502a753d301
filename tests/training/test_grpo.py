"""Agent GRPO (``wmgym.training.grpo``): the rollout's token streams and masks on a real env and a twin, the run
with its checkpoints, curve and resume (through the CLI), and that a policy learns an action the reward favours."""

from __future__ import annotations

import json

import gymnasium as gym
import pytest

from wmgym.agents.lm import AGENT_SYSTEM, agent_messages, parse_reply
from wmgym.envs.base import EngineReset, EngineStep, TextEnv

#: Text the tiny policies' tokenizers are trained on.
_POLICY_TEXTS = [AGENT_SYSTEM, "go to cabinet 1", "take spraybottle 1 from cabinet 1", "open drawer 2", "look",
                 "You are in the middle of a room. Your task is to: put a spraybottle in toilet.", "Nothing happens."]


@pytest.fixture(scope="module")
def random_policy(tmp_path_factory):
    """A randomly initialised tiny Qwen2 policy with the ChatML template."""
    from wmgym.training.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("policy"), _POLICY_TEXTS * 20, vocab_size=400,
                            initializer_range=0.3)


def _load(path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)


def _segments(mask: list[int]) -> list[tuple[int, int, int]]:
    """``(value, start, end)`` runs of equal values in ``mask``."""
    runs, start = [], 0
    for k in range(1, len(mask) + 1):
        if k == len(mask) or mask[k] != mask[start]:
            runs.append((mask[start], start, k))
            start = k
    return runs


def _check_streams(rollout, out, tokenizer, group: int) -> None:
    """The rollout output is aligned and its mask is 1 exactly on the generated action tokens."""
    fmt = rollout.fmt
    n = len(rollout.episodes)
    for key in ("prompt_ids", "completion_ids", "logprobs", "env_mask", "episode_won", "episode_return"):
        assert len(out[key]) == n, key
    for k, ep in enumerate(rollout.episodes):
        ids, mask, logps = out["completion_ids"][k], out["env_mask"][k], out["logprobs"][k]
        assert len(ids) == len(mask) == len(logps) > 0
        # The prompt is the chat template's rendering of the system turn and the first observation.
        assert tokenizer.decode(out["prompt_ids"][k]) == fmt.render(agent_messages(ep.observations[:1], []))
        # Mask-1 runs are exactly the generated replies, one per action, in order; the action played is each
        # reply's first line.
        ones = [ids[a:b] for v, a, b in _segments(mask) if v == 1]
        assert ones == ep.action_ids and len(ones) == len(ep.actions)
        for reply, action in zip(ones, ep.actions):
            assert parse_reply(tokenizer.decode(reply, skip_special_tokens=True)) == action
        # Mask-0 runs between replies carry the next observation as a user turn and the assistant header.
        zeros = [tokenizer.decode(ids[a:b]) for v, a, b in _segments(mask) if v == 0]
        for j, text in enumerate(zeros[:len(ep.actions) - 1]):
            assert ep.observations[j + 1] in text and text.endswith("<|im_start|>assistant\n")
        # Every sequence ends on a closed turn; sampled tokens have log-probabilities, template tokens 0.0.
        assert ids[-1] in fmt.end_ids
        assert all(lp <= 0.0 for lp, m in zip(logps, mask) if m) and all(lp == 0.0 for lp, m in zip(logps, mask)
                                                                          if not m)
    # Each group of episodes plays one game.
    for g in range(0, n, group):
        assert len({ep.observations[0] for ep in rollout.episodes[g:g + group]}) == 1


def test_rollout_masks_exactly_the_actions_on_a_real_env(random_policy):
    from wmgym.training.grpo import AgentGRPOConfig, Rollout, hf_generator

    model, tok = _load(random_policy)
    cfg = AgentGRPOConfig(env="ALFWorld-v0", model=str(random_policy), group=2, max_steps=3, max_new_tokens=6,
                          max_tokens=1024)
    rollout = Rollout(cfg, tok)
    try:
        out = rollout.play(["train/00000", "train/00000", "train/00001", "train/00001"],
                           hf_generator(model, rollout.fmt, temperature=1.0))
    finally:
        rollout.pool.close()
    assert all(len(ep.actions) == 3 and ep.end == "max_steps" for ep in rollout.episodes)
    _check_streams(rollout, out, tok, group=2)
    assert rollout.last["episodes"] == 4 and rollout.last["episode_steps"] == 3.0
    # Two games: the groups' first observations differ.
    assert rollout.episodes[0].observations[0] != rollout.episodes[2].observations[0]


def test_rollout_on_a_twin_and_the_token_cap(random_policy, tiny_model_dir):
    from wmgym.training.grpo import AgentGRPOConfig, Rollout, hf_generator

    model, tok = _load(random_policy)
    cfg = AgentGRPOConfig(env="WM-ALFWorld-v0", model=str(random_policy), group=2, max_steps=4, max_new_tokens=6,
                          max_tokens=1024, env_kwargs={"model": str(tiny_model_dir), "max_new_tokens": 12})
    rollout = Rollout(cfg, tok)
    gen = hf_generator(model, rollout.fmt, temperature=1.0)
    try:
        out = rollout.play(["train/00002", "train/00002"], gen)
        _check_streams(rollout, out, tok, group=2)
        # A cap just above the first prompt and two replies: episodes stop before a turn that does not fit.
        first = len(out["prompt_ids"][0])
        rollout.cfg.max_tokens = first + 2 * 6 + 30
        out = rollout.play(["train/00002", "train/00002"], gen)
    finally:
        rollout.pool.close()
    for ep, p, c in zip(rollout.episodes, out["prompt_ids"], out["completion_ids"]):
        assert len(p) + len(c) <= rollout.cfg.max_tokens
        assert ep.end == "max_tokens" and len(ep.actions) < 4
    _check_streams(rollout, out, tok, group=2)


def test_config_errors(random_policy):
    from wmgym.training.grpo import AgentGRPOConfig, parse_env_args, parse_game

    with pytest.raises(ValueError, match="registered wmgym ids.*ALFWorld-v0"):
        AgentGRPOConfig(env="NoSuchEnv-v0", model=str(random_policy))
    with pytest.raises(ValueError, match="valid: \\['won', 'return'\\]"):
        AgentGRPOConfig(env="ALFWorld-v0", model=str(random_policy), reward="score")
    with pytest.raises(ValueError, match="group must be >= 2"):
        AgentGRPOConfig(env="ALFWorld-v0", model=str(random_policy), group=1)
    with pytest.raises(ValueError, match="micro_batch must divide"):
        AgentGRPOConfig(env="ALFWorld-v0", model=str(random_policy), group=4, games_per_step=2, micro_batch=3)
    with pytest.raises(ValueError, match="--model DIR"):
        AgentGRPOConfig(env="ALFWorld-v0")
    assert parse_game("valid_unseen/00012") == ("valid_unseen", 12)
    with pytest.raises(ValueError, match="SPLIT/INDEX"):
        parse_game("a kitchen")
    assert parse_env_args(["model=runs/wm", "max_new_tokens=16"]) == {"model": "runs/wm", "max_new_tokens": 16}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_env_args(["model"])


@pytest.mark.slow
def test_grpo_run_writes_checkpoints_and_curve_and_resumes(random_policy, tmp_path):
    """Two GRPO steps on ALFWorld-v0 through the CLI, then a third resumed from the checkpoint (~30 s)."""
    from wmgym.cli import main

    out = tmp_path / "run"
    argv = ["train", "grpo", "--env", "ALFWorld-v0", "--model", str(random_policy), "--out", str(out),
            "--group", "2", "--games-per-step", "2", "--max-steps", "2", "--max-new-tokens", "6",
            "--max-tokens", "1024", "--save-steps", "1", "--lr", "1e-3", "--no-progress", "--eval-games", "2"]
    assert main([*argv, "--steps", "2"]) == 0
    assert (out / "checkpoint-2" / "trainer_state.json").exists()
    curve = json.loads((out / "curve.json").read_text())
    assert [s["step"] for s in curve["steps"]] == [1, 2]
    for s in curve["steps"]:
        assert s["episodes"] == 4 and s["episode_steps"] == 2.0 and 0.0 <= s["reward"] <= 1.0
        assert 0.0 <= s["nonuniform_groups"] <= 1.0 and "loss" in s
    assert curve["eval_before"]["games"] == 2 and curve["eval_after"]["split"] == "valid_unseen"
    # The final directory is an lm:DIR agent that plays with the whole history, as GRPO trained it.
    from wmgym.agents import make_agent
    from wmgym.agents.base import play

    meta = json.loads((out / "wmgym.json").read_text())
    assert meta["config"]["max_turns"] is None and meta["grpo"]["steps"] == 2
    env = gym.make("ALFWorld-v0")
    try:
        episode = play(env, make_agent(f"lm:{out}", "ALFWorld-v0"), seed=0, max_steps=2)
    finally:
        env.close()
    assert episode["steps"] == 2
    # Resume: a longer run in the same --out continues from checkpoint-2 and keeps the curve's first two steps.
    assert main([*argv, "--steps", "3"]) == 0
    summary = json.loads((out / "grpo_summary.json").read_text())
    assert summary["resumed_from"].endswith("checkpoint-2") and summary["steps"] == 3
    curve2 = json.loads((out / "curve.json").read_text())
    assert [s["step"] for s in curve2["steps"]] == [1, 2, 3]
    assert curve2["steps"][:2] == curve["steps"]
    assert curve2["eval_before"] == curve["eval_before"]


class ChoiceEnv(TextEnv):
    """One decision: ``yes`` wins, anything else loses (four games that differ only in their room number)."""

    def _num_games(self, split: str) -> int:
        return 4

    def _engine_reset(self, split: str, index: int) -> EngineReset:
        obs = f"Room {index}. Say yes or no."
        return EngineReset(observation=obs, task="say yes", game_id=f"{split}/{index}", init_context=obs,
                           admissible_commands=["no", "yes"])

    def _engine_step(self, action: str) -> EngineStep:
        won = action.strip().lower() == "yes"
        return EngineStep(observation="You win." if won else "You lose.", reward=float(won), won=won, lost=not won,
                          admissible_commands=["no", "yes"])


@pytest.fixture
def choice_env():
    env_id = "GrpoChoiceTest-v0"
    gym.register(id=env_id, entry_point=ChoiceEnv, max_episode_steps=5, disable_env_checker=True)
    yield env_id
    del gym.registry[env_id]


def _p_yes(path, room: int = 0) -> float:
    """The policy's probability of the reply ``yes`` (and the end of turn) in room ``room``."""
    import torch

    from wmgym.training.grpo import ChatFormat

    model, tok = _load(path)
    fmt = ChatFormat(tok)
    prompt = fmt.prompt_ids(f"Room {room}. Say yes or no.")
    reply = fmt.ids("yes") + [fmt.close_id]
    ids = torch.tensor([prompt + reply])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0, len(prompt) - 1:-1].float(), -1)
    return float(logp.gather(-1, torch.tensor(reply).unsqueeze(-1)).sum().exp())


@pytest.mark.slow
def test_grpo_learns_the_rewarded_action(choice_env, tmp_path):
    """A policy fitted to say yes or no half the time learns to say yes, the winning reply (~30 s).

    The start is a tiny model trained on both replies equally, so groups of 8 episodes hold wins and losses
    from the first step; GRPO's group-relative advantage then pushes the probability of "yes" up."""
    from wmgym.training.grpo import AgentGRPOConfig, train
    from wmgym.training.tiny import build_tiny_model, fit_tiny_model

    chats = [agent_messages([f"Room {i}. Say yes or no."], [a]) for i in range(4) for a in ("yes", "no")]
    start = build_tiny_model(tmp_path / "start", [m["content"] for c in chats for m in c] * 10, vocab_size=300)
    fit_tiny_model(start, chats, steps=60, lr=3e-3)
    before = _p_yes(start)
    assert 0.2 < before < 0.8  # both replies are likely: the groups are not uniform
    # 20 steps at 1e-3 end near P(yes) = 0.91 for seeds 0, 1 and 2 (at 3e-3 seed 1 collapsed to replies that are
    # neither yes nor no).
    cfg = AgentGRPOConfig(env=choice_env, model=str(start), out=str(tmp_path / "run"), steps=20, group=8,
                          games_per_step=2, max_steps=2, max_new_tokens=4, max_tokens=256, save_steps=100,
                          lr=1e-3, progress=False)
    summary = train(cfg)
    after = _p_yes(tmp_path / "run")
    rewards = [s["reward"] for s in json.loads((tmp_path / "run" / "curve.json").read_text())["steps"]]
    assert summary["steps"] == 20 and len(rewards) == 20
    assert after > max(0.8, before + 0.3), (before, after)
    assert sum(rewards[-5:]) / 5 > sum(rewards[:3]) / 3, rewards


def test_lora_run_saves_a_merged_model_and_vllm_plumbs_through(choice_env, random_policy, tmp_path):
    """--lora trains adapters and saves them merged (a plain HF directory lm:DIR loads); --vllm reaches TRL's
    config with the reply's end tokens as vLLM's stop tokens (vLLM itself needs a GPU: not run here)."""
    from wmgym.training.grpo import AgentGRPOConfig, ChatFormat, grpo_args, train

    cfg = AgentGRPOConfig(env=choice_env, model=str(random_policy), out=str(tmp_path / "lora"), steps=1, group=2,
                          games_per_step=1, max_steps=1, max_new_tokens=3, max_tokens=256, lora=True, lora_r=4,
                          progress=False)
    assert cfg.lr == 1e-4
    summary = train(cfg)
    assert summary["steps"] == 1 and summary["lora"]
    assert (tmp_path / "lora" / "model.safetensors").exists()
    assert not (tmp_path / "lora" / "adapter_config.json").exists()
    from wmgym.agents.lm import LMAgent

    agent = LMAgent(tmp_path / "lora", max_new_tokens=3)
    agent.reset("Room 0. Say yes or no.", {}, seed=0)
    assert isinstance(agent.act("Room 0. Say yes or no.", {}), str)

    _, tok = _load(random_policy)
    end_ids = ChatFormat(tok).end_ids
    vcfg = AgentGRPOConfig(env=choice_env, model=str(random_policy), out=str(tmp_path / "v"), vllm=True,
                           vllm_mode="server")
    args = grpo_args(vcfg, False, end_ids)
    assert args.use_vllm and args.vllm_mode == "server" and args.generation_kwargs == {"stop_token_ids": end_ids}
    assert args.num_generations == 4 and args.per_device_train_batch_size * args.gradient_accumulation_steps == 8
    assert not grpo_args(cfg, False, end_ids).use_vllm


def test_an_action_with_a_control_character_is_malformed(choice_env):
    """A sampled policy types control characters now and then ("cook\\x0e"); jericho's frotz crashed the whole
    TextWorld process on one. The base class answers such an action as malformed, without the engine."""
    env = gym.make(choice_env)
    env.reset(seed=0, options={"game": 1})
    obs, reward, terminated, truncated, info = env.step("yes\x0e")
    assert info["action_valid"] is False and obs == ChoiceEnv.invalid_action_text and not terminated
    assert env.step("yes")[4]["won"]
