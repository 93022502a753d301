"""A policy language model as an agent: the agent chat format, and :class:`LMAgent`, which plays it.

``wmgym bench consistency --env ALFWorld-v0 --agents lm:runs/agent`` or, in Python,
``make_agent("lm:runs/agent?mode=score", "ALFWorld-v0")``.

The agent chat (what ``wmgym train agent`` trains on, and what GRPO rolls out) is the world-model chat turned
around: the env speaks as the user, the agent answers as the assistant::

    system:    AGENT_SYSTEM                 (a fixed instruction, the same for every env)
    user:      observation_0                (what reset returned; never init_context, which the agent cannot see)
    assistant: action_0
    user:      observation_1                (what step returned)
    assistant: action_1
    ...

:func:`agent_messages` builds it: with one more observation than actions it ends on a user turn (a prompt: the
next action is to be generated); with as many, on an assistant turn (a whole training chat). Observations are
exactly the strings the env returns to the agent, so an agent trained on a real env's trajectories reads a twin's
observations the same way.

:class:`LMAgent` loads any HF causal-LM directory with a chat template (the tiny models ``wmgym train agent``
writes are ChatML) and acts in one of two modes:

- ``generate`` (the default): greedy decoding of one reply, cut at the end of turn, first line. It reads only
  the observations, so it plays any env, including envs without admissible commands (WebShop's free-text
  search) and twins, where it acts exactly as it would on the same observations in the real env (what
  ``bench consistency`` needs for WM / W2R / CR). That is why it is the default.
- ``score``: where ``info["admissible_commands"]`` is not empty, every command is scored by its
  length-normalised log-probability (tokens of the command and the end of turn, divided by their number) and
  the best one is played; elsewhere it generates. It never plays an invalid command, which helps a small model
  that knows roughly what to do but misspells it. It reads the list the env reports at every step: the live list
  in a real env, but a twin's list is the one of its reset for the whole episode, so a scoring agent is weaker in
  a twin for reasons unrelated to the twin's dynamics; compare sim and real with ``generate``.

The prompt is recomputed at every step (no cache kept across steps): simple and right for the small models this
agent is trained as on CPU; a long history can be bounded with ``max_turns`` (a trained directory's
``wmgym.json`` says which value it was trained with, and that is the default).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: The agent chat's fixed system turn.
AGENT_SYSTEM = "You are an agent in a text game. Reply with one action."
#: Modes of :class:`LMAgent`.
MODES = ("generate", "score")
#: Longest action kept from a generated reply (characters).
MAX_ACTION_CHARS = 200
#: Models loaded in this process, by (path, weights' mtime, device, trust_remote_code): agents of one model share
#: the weights.
_LOADED: dict[tuple[str, int, str, bool], tuple[Any, Any]] = {}


def agent_messages(observations: list[str], actions: list[str], max_turns: int | None = None) -> list[dict[str, str]]:
    """The agent chat of an episode so far (see the module docstring).

    Args:
        observations: what reset and each step returned to the agent, in order.
        actions: the actions played; ``len(observations) == len(actions) + 1`` gives a prompt ending on the
            user turn of the latest observation, ``len(observations) == len(actions)`` a training chat ending on
            the last action.
        max_turns: keep only the system turn, the first exchange (the first observation, which states the task
            in most envs, and the action played on it) and the last ``max_turns`` exchanges (observation, action)
            before the current observation; ``None``: the whole history. Roles still alternate.

    Raises:
        ValueError: on counts that fit neither form, no observation, or a negative ``max_turns``.
    """
    if not observations:
        raise ValueError("agent_messages needs at least one observation (the one reset returned)")
    if len(observations) not in (len(actions), len(actions) + 1):
        raise ValueError(f"agent_messages needs as many observations as actions (a training chat) or one more (a "
                         f"prompt); got {len(observations)} observations and {len(actions)} actions")
    if max_turns is not None and max_turns < 0:
        raise ValueError(f"max_turns must be >= 0 or None, got {max_turns}")
    exchanges = [(str(o), str(a)) for o, a in zip(observations, actions)]
    if max_turns is not None and len(exchanges) > 1 + max_turns:
        exchanges = exchanges[:1] + (exchanges[len(exchanges) - max_turns:] if max_turns else [])
    messages = [{"role": "system", "content": AGENT_SYSTEM}]
    for obs, action in exchanges:
        messages += [{"role": "user", "content": obs}, {"role": "assistant", "content": action}]
    if len(observations) == len(actions) + 1:
        messages.append({"role": "user", "content": str(observations[-1])})
    return messages


def parse_reply(reply: str) -> str:
    """The action in a generated reply: its first non-empty line, stripped, at most :data:`MAX_ACTION_CHARS`."""
    line = next((ln.strip() for ln in reply.splitlines() if ln.strip()), "")
    return line[:MAX_ACTION_CHARS]


def trained_max_turns(path: str | Path) -> int | None:
    """The ``max_turns`` a ``wmgym train agent`` directory was trained with (``None``: whole episodes, or a
    directory that is no such run)."""
    meta = Path(path) / "wmgym.json"
    if not meta.is_file():
        return None
    try:
        value = json.loads(meta.read_text()).get("config", {}).get("max_turns")
    except (ValueError, AttributeError):
        return None
    return int(value) if value else None


class LMAgent:
    """An HF causal LM playing from the agent chat (see the module docstring).

    Args:
        path: a local HF model directory with a chat template (or a hub id, when online).
        mode: ``generate`` (default: observations only, any env, comparable in twin and real) or ``score``
            (the best admissible command by length-normalised log-probability; generation where the env lists
            none).
        max_new_tokens: the longest generated reply.
        max_turns: history bound of :func:`agent_messages` (default: what the directory was trained with).
        name: the agent's name (recorded as ``policy``; default ``lm:PATH`` plus ``?mode=score`` in score mode).
        device: torch device (default: CUDA when there is one, else CPU).
    """

    privileged = False

    def __init__(self, path: str | Path, mode: str = "generate", max_new_tokens: int = 48,
                 max_turns: int | None = None, name: str | None = None, device: str | None = None,
                 trust_remote_code: bool = False):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if mode not in MODES:
            raise ValueError(f"unknown lm agent mode {mode!r}; valid modes: {list(MODES)}")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        self.path, self.mode, self.max_new_tokens = str(path), mode, int(max_new_tokens)
        self.max_turns = trained_max_turns(path) if max_turns is None else max_turns
        self.name = name or (f"lm:{self.path}" + ("?mode=score" if mode == "score" else ""))
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        local = Path(self.path)
        # The weights' times are in the key: a directory trained again in this process is loaded again.
        stamp = max((f.stat().st_mtime_ns for f in local.glob("*.safetensors")), default=0) if local.is_dir() else 0
        key = (str(local.resolve()) if local.exists() else self.path, stamp, self.device, trust_remote_code)
        if key not in _LOADED:  # collection and benchmarks build an agent per episode: load the weights once
            tokenizer = AutoTokenizer.from_pretrained(self.path, trust_remote_code=trust_remote_code)
            if tokenizer.chat_template is None:
                raise ValueError(f"lm agent model {self.path} has no chat template; train one with `wmgym train "
                                 "agent` or use an instruct/chat model")
            model = AutoModelForCausalLM.from_pretrained(self.path, use_safetensors=True, dtype=torch.float32,
                                                         trust_remote_code=trust_remote_code).to(self.device)
            _LOADED[key] = (tokenizer, model.eval())
        self.tokenizer, self.model = _LOADED[key]
        end = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        unk = getattr(self.tokenizer, "unk_token_id", None)
        self.end_ids = sorted({i for i in (end, self.tokenizer.eos_token_id) if isinstance(i, int) and i != unk})
        if not self.end_ids:
            raise ValueError(f"cannot tell where a reply of {self.path} ends: no <|im_end|> or eos token")
        self.observations: list[str] = []
        self.actions: list[str] = []
        #: How each action of the episode was chosen: ``generate`` or ``score``.
        self.choices: list[str] = []

    # ------------------------------------------------------------------ protocol
    def reset(self, observation: str, info: dict[str, Any], seed: int | None, env: Any = None) -> None:
        self.observations, self.actions, self.choices = [observation], [], []

    def act(self, observation: str, info: dict[str, Any]) -> str:
        if self.actions:  # the first observation came with reset
            self.observations.append(observation)
        prompt = self.prompt_ids()
        commands = list(info.get("admissible_commands") or [])
        if self.mode == "score" and commands:
            scores = self.score(prompt, commands)
            action, how = commands[max(range(len(commands)), key=scores.__getitem__)], "score"
        else:
            action, how = parse_reply(self.generate(prompt)), "generate"
        self.actions.append(action)
        self.choices.append(how)
        return action

    # ------------------------------------------------------------------ model
    def messages(self) -> list[dict[str, str]]:
        """The prompt chat for the next action."""
        return agent_messages(self.observations, self.actions, self.max_turns)

    def prompt_ids(self) -> list[int]:
        text = self.tokenizer.apply_chat_template(self.messages(), tokenize=False, add_generation_prompt=True)
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def generate(self, prompt: list[int]) -> str:
        """The greedy reply to ``prompt`` (token ids), up to the end of turn or ``max_new_tokens``."""
        import torch

        ids = torch.tensor([prompt], device=self.device)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.end_ids[0]
        with torch.no_grad():
            out = self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                      max_new_tokens=self.max_new_tokens, eos_token_id=self.end_ids,
                                      pad_token_id=pad)
        return self.tokenizer.decode(out[0, len(prompt):], skip_special_tokens=True)

    def score(self, prompt: list[int], commands: list[str]) -> list[float]:
        """Mean log-probability of each command's tokens and the end of turn after ``prompt``: the prompt runs
        once, and the commands in one batch on its cached keys and values."""
        import torch

        end = self.end_ids[0]
        cands = [list(self.tokenizer(c, add_special_tokens=False)["input_ids"]) + [end] for c in commands]
        width = max(len(c) for c in cands)
        batch = torch.tensor([c + [end] * (width - len(c)) for c in cands], device=self.device)
        from transformers.cache_utils import DynamicCache

        from wmgym.worldmodels.kvcache import cache_kwarg

        key, cache = cache_kwarg(self.model), DynamicCache()
        with torch.no_grad():
            first = self.model(input_ids=torch.tensor([prompt], device=self.device), use_cache=True, **{key: cache})
            cache.batch_repeat_interleave(len(cands))
            # Right padding: attention is causal, so no command token sees the pads after it.
            rest = self.model(input_ids=batch, use_cache=True, **{key: cache}).logits
            logits = torch.cat([first.logits[:, -1:].expand(len(cands), -1, -1), rest[:, :-1]], dim=1)
            logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, batch.unsqueeze(-1)).squeeze(-1)
        return [float(logp[i, :len(c)].mean()) for i, c in enumerate(cands)]
