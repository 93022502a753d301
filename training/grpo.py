"""GRPO of a policy LM over episodes of any registered env, real or twin, with TRL's ``GRPOTrainer``.

``wmgym train grpo --env ALFWorld-v0 --model runs/agent --out runs/agent-grpo --steps 50``

The agent plays the agent chat of :mod:`wmgym.agents.lm` (the env as the user, the agent as the assistant);
the final directory is an ordinary HF model that ``lm:DIR`` plays.

How one GRPO step maps onto TRL (the reasoning behind the layout):

- **A prompt is a game.** The dataset has one row per game of the training split, and its ``prompt`` is the
  game's name, ``"SPLIT/INDEX"`` (``"train/00042"``), not the rendered first observation. TRL hands
  ``rollout_func`` only the prompts (no other column), so the prompt must say which game to reset; and
  rendering the first observation of every game up front would reset thousands of games (ALFWorld has 2,420)
  before the first step. The rollout resets the game itself and builds the real prompt from what reset returned.
- **A group is G episodes of one game.** ``num_generations = G`` (``--group``): TRL's sampler repeats each row
  G times in a row, so the rollout plays G episodes of the same game from the same seed
  (``seed + INDEX``; they differ only by the agent's sampling), and the group-relative advantage compares
  episodes of one game with each other. ``--games-per-step`` B games make one generation batch of G*B episodes,
  one optimizer step (``gradient_accumulation_steps`` = G*B / ``--micro-batch``).
- **An episode is one completion.** ``prompt_ids`` are the tokens of the first prompt (system, first
  observation, the assistant header); ``completion_ids`` everything after: each action's generated tokens, then
  the template's tokens closing that turn and opening the next (the next observation as a user turn, the next
  assistant header). ``env_mask`` (TRL's name) is 1 exactly on the generated tokens (the action and the end-of-turn
  token the model emitted), 0 on observation and template tokens, so the loss and the KL are on the agent's own
  tokens only. The episode is one growing token stream: each action is generated from the stream's exact tokens,
  so the trainer's log-probabilities are computed on exactly the context the action was sampled in (no
  re-tokenisation drift). The text between two actions comes from the tokenizer's own chat template (rendered
  around a sentinel action), so any template works, numbered ones too.
- **Length.** An episode ends at the env's termination or truncation, after ``--max-steps`` actions, or when the
  next turn would not fit ``--max-tokens`` (prompt + completion, with room for a whole reply): then it stops
  *before* that observation, so every sequence ends on an action and is never cut mid-turn. The history is not
  windowed: a windowed history is a different context at every step, which one completion per episode cannot
  represent. The saved model records ``max_turns: null`` in ``wmgym.json`` so ``lm:DIR`` plays it with the whole
  history too, as it was trained.
- **Log-probabilities.** Sampling returns each generated token's log-probability under the sampling
  distribution (0.0 on mask-0 tokens). Without vLLM TRL does not need them: with one generation per optimizer
  step (``num_iterations = 1``) it takes the old policy's log-probabilities as the current ones detached. With
  ``--vllm`` they are vLLM's and feed TRL's importance-sampling correction between vLLM and the trained model.
- **Reward.** ``--reward won`` (1.0 when the episode is won) or ``return`` (the sum of the env's rewards), read by
  the reward function from extra fields the rollout returns (``episode_won``, ``episode_return``,
  ``episode_steps``), which TRL forwards to reward functions.
- **Batching.** The G*B episodes step in lockstep: one batched, left-padded ``generate`` per step for every
  episode still running (greedy ``temperature 0`` in the held-out evaluation), then each env steps. Envs are
  made once and reused; a twin's envs share one loaded world model.
- **vLLM** (``--vllm``, GPU): ``GRPOConfig(use_vllm=True, vllm_mode=--vllm-mode)``; TRL syncs the weights before
  each rollout and the rollout generates through ``trainer.vllm_generation`` (``max_completion_length`` set to
  ``--max-new-tokens`` for each call, ``stop_token_ids`` the reply's end tokens). Not exercised on this CPU
  machine: the flag is plumbed through and the call follows TRL 1.16's ``VLLMGeneration.generate``; in
  ``server`` mode with several processes each process must call it as often as the others, which episodes of
  different lengths do not guarantee, so use ``colocate``.
- **Checkpoints** every ``--save-steps`` (safetensors, optimizer, RNG, the sampler's place); a run restarted with
  the same ``--out`` resumes from the newest finished one, as SFT does, and keeps its curve up to that step.

Written to ``--out``: ``checkpoint-N/``, ``curve.json`` (per step: mean reward, success, the share of groups whose
episodes did not all get the same reward (the only ones that teach anything), episode length in steps and action
tokens, loss; held-out success before and after when ``--eval-games`` > 0), ``grpo_summary.json`` and the final
model.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from pathlib import Path
from typing import Any, Callable

#: Episode rewards ``--reward`` can name.
REWARDS = ("won", "return")
#: A prompt names its game as ``SPLIT/INDEX``.
GAME_RE = re.compile(r"^(?P<split>[^/]+)/(?P<index>\d+)$")
#: Stands in for an action when the chat template renders the text between two actions.
SENTINEL = "\x00wmgym-action\x00"
#: Fields set from Python only, not flags of ``wmgym train grpo``.
PYTHON_ONLY = ("env_kwargs", "lora_alpha", "lora_dropout", "lora_targets", "save_total_limit", "warmup",
               "logging_steps")


@dataclasses.dataclass
class AgentGRPOConfig:
    """Settings of one GRPO run (the CLI flags mirror these fields, less :data:`PYTHON_ONLY`)."""

    env: str = ""
    """Registered env id to play, real or twin (e.g. ALFWorld-v0, WM-ALFWorld-v0)."""
    model: str = ""
    """The starting policy: an HF causal-LM directory with a chat template (e.g. from `wmgym train agent`)."""
    out: str = "runs/grpo"
    """Output directory: checkpoints, curve.json and the final model."""
    steps: int = 50
    """Optimizer steps (one generation batch of group x games-per-step episodes each)."""
    group: int = 4
    """Episodes per game in one step (GRPO's group, TRL's num_generations): advantages compare these."""
    games_per_step: int = 2
    """Games per step."""
    micro_batch: int = 0
    """Episodes per forward/backward pass (0: all of the step's; must divide group x games-per-step)."""
    max_steps: int = 20
    """Actions per episode at most (the env's own step limit applies too)."""
    max_new_tokens: int = 32
    """Tokens per generated action at most."""
    max_tokens: int = 2048
    """Prompt + completion tokens per episode at most: an episode stops before a turn that would not fit."""
    reward: str = "won"
    """won: 1.0 for a won episode, else 0.0 | return: the sum of the env's rewards."""
    split: str = "train"
    """Split whose games are played."""
    games: int = 0
    """Play only the first this many games of the split (0: all)."""
    eval_games: int = 0
    """Held-out games on which greedy success is measured before and after training (0: none)."""
    eval_split: str | None = None
    """Split of the held-out games (default: the env's held-out split)."""
    lora: bool = False
    """Train LoRA adapters (peft) instead of all weights; merged into the saved model."""
    lora_r: int = 16
    """LoRA rank."""
    lr: float | None = None
    """Learning rate (default 1e-4 with LoRA, 1e-5 full)."""
    temperature: float = 1.0
    """Sampling temperature of the rollouts."""
    beta: float = 0.0
    """KL coefficient against the starting model (0: no reference model, TRL's default)."""
    save_steps: int = 10
    """Checkpoint every this many steps."""
    seed: int = 0
    """Seed of the data order, the sampling and each game's reset (seed + game index)."""
    resume: bool = True
    """Continue from the newest checkpoint in --out when there is one."""
    vllm: bool = False
    """Generate with vLLM (GPU; TRL's use_vllm) instead of transformers' generate."""
    vllm_mode: str = "colocate"
    """colocate (vLLM in the training process) | server (a `trl vllm-serve` process)."""
    bf16: bool | None = None
    """bf16 (default: where the hardware has it)."""
    threads: int = 1
    """Torch CPU threads."""
    report_to: str = "none"
    """none | tensorboard | any transformers integration name."""
    trust_remote_code: bool = False
    """Allow custom model code from a hub repo."""
    progress: bool = True
    """Progress bars."""
    ray: str | None = None
    """Step the envs on Ray actors (--workers of them; generation stays here, batched): local (a private cluster on
    this machine) or a cluster address (auto, HOST:6379); none: in this process."""
    workers: int = 1
    """Ray actors holding the envs (with --ray); episode k's env lives on actor k mod workers."""
    # PYTHON_ONLY
    env_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Keyword arguments of gym.make (a twin's model=, a real env's game_files=, ...)."""
    lora_alpha: int = 32
    """LoRA scaling numerator."""
    lora_dropout: float = 0.05
    """Dropout on the LoRA path."""
    lora_targets: str = "all-linear"
    """Modules to adapt (comma-separated names, or all-linear)."""
    save_total_limit: int = 2
    """Checkpoints kept."""
    warmup: float = 0.0
    """LR warmup as a fraction of the steps."""
    logging_steps: int = 1
    """Log every this many steps."""

    def __post_init__(self) -> None:
        import gymnasium as gym

        import wmgym  # noqa: F401 - registers the ids

        if not self.env:
            raise ValueError("give the env to play (--env ID)")
        if self.env not in gym.registry:
            from wmgym.envs import registered_ids

            raise ValueError(f"unknown env {self.env!r}; registered wmgym ids: {registered_ids()}")
        self.model, self.out = str(self.model or ""), str(self.out)
        if not self.model:
            raise ValueError("give the starting policy (--model DIR: an HF causal LM with a chat template, e.g. "
                             "from `wmgym train agent`)")
        if self.reward not in REWARDS:
            raise ValueError(f"unknown reward {self.reward!r}; valid: {list(REWARDS)}")
        for name in ("steps", "group", "games_per_step", "max_steps", "max_new_tokens", "save_steps", "threads",
                     "workers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.group < 2:
            raise ValueError(f"group must be >= 2 episodes per game (GRPO compares them), got {self.group}")
        batch = self.group * self.games_per_step
        if self.micro_batch < 0 or (self.micro_batch and batch % self.micro_batch):
            raise ValueError(f"micro_batch must divide group x games_per_step = {batch}, got {self.micro_batch}")
        if self.max_tokens < self.max_new_tokens + 16:
            raise ValueError(f"max_tokens ({self.max_tokens}) leaves no room for a prompt and a "
                             f"{self.max_new_tokens}-token reply")
        if self.games < 0 or self.eval_games < 0:
            raise ValueError("games and eval_games must be >= 0")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0 (GRPO samples), got {self.temperature}")
        if self.vllm_mode not in ("colocate", "server"):
            raise ValueError(f"vllm_mode must be colocate or server, got {self.vllm_mode!r}")
        if self.lr is None:
            self.lr = 1e-4 if self.lora else 1e-5


def parse_env_args(items: list[str]) -> dict[str, Any]:
    """``gym.make`` keyword arguments from ``KEY=VALUE`` strings (VALUE as JSON when it parses, else a string)."""
    kwargs: dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"--env-arg takes KEY=VALUE, got {item!r}")
        try:
            kwargs[key.strip()] = json.loads(value)
        except ValueError:
            kwargs[key.strip()] = value
    return kwargs


# ---------------------------------------------------------------------------- episodes
@dataclasses.dataclass
class Episode:
    """One episode as a token stream: ``prompt_ids`` then ``completion_ids`` (with ``mask`` and ``logprobs``)."""

    game: str
    prompt_ids: list[int] = dataclasses.field(default_factory=list)
    completion_ids: list[int] = dataclasses.field(default_factory=list)
    mask: list[int] = dataclasses.field(default_factory=list)
    logprobs: list[float] = dataclasses.field(default_factory=list)
    observations: list[str] = dataclasses.field(default_factory=list)
    actions: list[str] = dataclasses.field(default_factory=list)
    #: The generated token ids of each action (end-of-turn included where the model emitted it).
    action_ids: list[list[int]] = dataclasses.field(default_factory=list)
    rewards: list[float] = dataclasses.field(default_factory=list)
    won: bool = False
    done: bool = False
    #: Why it ended: terminated | truncated | max_steps | max_tokens.
    end: str = ""

    @property
    def ret(self) -> float:
        return float(sum(self.rewards))

    def extend(self, ids: list[int], mask: int, logprobs: list[float] | None = None) -> None:
        self.completion_ids += ids
        self.mask += [mask] * len(ids)
        self.logprobs += list(logprobs) if logprobs is not None else [0.0] * len(ids)


def parse_game(prompt: Any) -> tuple[str, int]:
    """``(split, index)`` of a prompt ``"SPLIT/INDEX"`` (see the module docstring)."""
    if isinstance(prompt, list):  # a conversational prompt: the name is the last message's content
        prompt = prompt[-1]["content"]
    m = GAME_RE.match(str(prompt).strip())
    if not m:
        raise ValueError(f"a GRPO prompt names a game as 'SPLIT/INDEX' (e.g. 'train/00042'), got {prompt!r}")
    return m["split"], int(m["index"])


def game_prompts(split: str, indices: list[int]) -> list[str]:
    """The prompts naming games ``indices`` of ``split``."""
    return [f"{split}/{i:05d}" for i in indices]


class ChatFormat:
    """Token ids of the agent chat under a tokenizer's chat template (see the module docstring)."""

    def __init__(self, tokenizer: Any):
        if getattr(tokenizer, "chat_template", None) is None:
            raise ValueError("the policy's tokenizer has no chat template; use a chat model or one from "
                             "`wmgym train agent`")
        self.tok = tokenizer
        end = tokenizer.convert_tokens_to_ids("<|im_end|>")
        unk = getattr(tokenizer, "unk_token_id", None)
        #: Tokens that end a generated reply (as :class:`~wmgym.agents.lm.LMAgent` stops).
        self.end_ids = sorted({i for i in (end, tokenizer.eos_token_id) if isinstance(i, int) and i != unk})
        if not self.end_ids:
            raise ValueError("cannot tell where a reply ends: the tokenizer has no <|im_end|> or eos token")
        # What the template writes right after an assistant turn's content (ChatML: <|im_end|>).
        from wmgym.agents.lm import agent_messages

        closing = self.render(agent_messages(["o"], [SENTINEL]), generation_prompt=False).split(SENTINEL, 1)[1]
        self.close_id: int | None = None
        self.close_text = ""
        for i in self.end_ids:
            text = tokenizer.convert_ids_to_tokens(i)
            if closing.startswith(text):
                self.close_id, self.close_text = i, text
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.end_ids[0]

    def render(self, messages: list[dict[str, str]], generation_prompt: bool = True) -> str:
        return self.tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)

    def ids(self, text: str) -> list[int]:
        return list(self.tok(text, add_special_tokens=False)["input_ids"])

    def prompt_ids(self, observation: str) -> list[int]:
        """The first prompt: system, the first observation, the assistant header."""
        from wmgym.agents.lm import agent_messages

        return self.ids(self.render(agent_messages([observation], [])))

    def between(self, observations: list[str], actions: list[str], closed: bool) -> list[int]:
        """Tokens after the last action's generated tokens up to the next assistant header: the end of its turn
        (unless the model ``closed`` it with the template's own end token), the next observation's user turn and
        the assistant header, rendered by the template with every earlier turn in place."""
        from wmgym.agents.lm import agent_messages

        text = self.render(agent_messages(observations, actions[:-1] + [SENTINEL])).split(SENTINEL, 1)[1]
        if closed and self.close_text and text.startswith(self.close_text):
            text = text[len(self.close_text):]
        return self.ids(text)


Generator = Callable[[list[list[int]], int], list[tuple[list[int], list[float]]]]


def hf_generator(model: Any, fmt: ChatFormat, temperature: float, top_p: float = 1.0, top_k: int = 0) -> Generator:
    """Batched, left-padded ``model.generate``: ``(contexts, max_new_tokens) -> [(token ids, log-probs)]``, each
    cut after its first end-of-turn token; ``temperature`` 0 decodes greedily. The log-probabilities are those of
    the distribution sampled from (after temperature and top-k/top-p)."""
    import torch

    def generate(contexts: list[list[int]], max_new_tokens: int) -> list[tuple[list[int], list[float]]]:
        device = next(model.parameters()).device
        width = max(len(c) for c in contexts)
        ids = torch.tensor([[fmt.pad_id] * (width - len(c)) + c for c in contexts], device=device)
        attn = torch.tensor([[0] * (width - len(c)) + [1] * len(c) for c in contexts], device=device)
        sample = temperature > 0
        kw: dict[str, Any] = {"do_sample": sample}
        if sample:
            kw.update(temperature=temperature, top_p=top_p, top_k=top_k or None)
        else:
            kw.update(temperature=None, top_p=None, top_k=None)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                out = model.generate(input_ids=ids, attention_mask=attn, max_new_tokens=max_new_tokens,
                                     eos_token_id=fmt.end_ids, pad_token_id=fmt.pad_id, output_scores=True,
                                     return_dict_in_generate=True, **kw)
        finally:
            model.train(was_training)
        new = out.sequences[:, width:]
        scores = torch.stack(out.scores, dim=1).float()  # (B, T, V), as sampled from
        logps = torch.log_softmax(scores, dim=-1).gather(-1, new.unsqueeze(-1)).squeeze(-1)
        results = []
        for row, lp in zip(new.tolist(), logps.tolist()):
            n = next((k + 1 for k, t in enumerate(row) if t in fmt.end_ids), len(row))
            results.append((row[:n], lp[:n]))
        return results

    return generate


def vllm_generator(trainer: Any) -> Generator:
    """Generation through TRL's ``trainer.vllm_generation`` (GPU; see the module docstring)."""

    def generate(contexts: list[list[int]], max_new_tokens: int) -> list[tuple[list[int], list[float]]]:
        vg = trainer.vllm_generation
        old = vg.max_completion_length
        vg.max_completion_length = max_new_tokens
        try:
            _, completions, logprobs, _ = vg.generate(prompts=contexts, images=None, num_generations=1)
        finally:
            vg.max_completion_length = old
        return [(list(ids), [float("nan") if lp[0] is None else float(lp[0]) for lp in lps])
                for ids, lps in zip(completions, logprobs)]

    return generate


class EnvPool:
    """Envs of one id, made once and reused across rollouts (a twin's share one loaded world model).

    :func:`play_episodes` drives it through ``reset_many`` / ``step_many`` (env ``k`` plays episode ``k``), which
    :class:`RayEnvPool` implements on Ray actors."""

    def __init__(self, env_id: str, env_kwargs: dict[str, Any] | None = None):
        self.env_id, self.kwargs, self.envs = env_id, dict(env_kwargs or {}), []

    def get(self, n: int) -> list[Any]:
        import gymnasium as gym

        import wmgym  # noqa: F401 - registers the ids

        while len(self.envs) < n:
            self.envs.append(gym.make(self.env_id, **self.kwargs))
        return self.envs[:n]

    def num_games(self, split: str) -> int:
        return self.get(1)[0].unwrapped.num_games(split)

    def reset_many(self, resets: list[tuple[int, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
        """Reset env ``k`` with ``resets[k]`` (seed, options); the ``(observation, info)`` of each."""
        return [env.reset(seed=seed, options=options) for env, (seed, options) in zip(self.get(len(resets)), resets)]

    def step_many(self, actions: list[tuple[int, str]]) -> list[tuple]:
        """Step env ``k`` with each ``(k, action)``; the ``step`` tuple of each, in order."""
        return [self.envs[k].step(action) for k, action in actions]

    def close(self) -> None:
        for env in self.envs:
            env.close()
        self.envs = []


#: In a Ray actor: the envs of :class:`RayEnvPool` it holds, by (pool id, env index).
_actor_envs: dict[tuple[str, int], Any] = {}


def _env_ops(job: tuple[str, str, dict[str, Any], list[tuple]]) -> list[Any]:
    """Run a :class:`RayEnvPool`'s operations on the envs this actor holds (in a Ray actor)."""
    import gymnasium as gym

    import wmgym  # noqa: F401 - registers the ids

    pool_id, env_id, kwargs, ops = job
    out: list[Any] = []
    for op in ops:
        kind, k = op[0], op[1]
        key = (pool_id, k)
        if kind == "close":
            env = _actor_envs.pop(key, None)
            if env is not None:
                env.close()
            out.append(None)
            continue
        if key not in _actor_envs:
            _actor_envs[key] = gym.make(env_id, **kwargs)
        env = _actor_envs[key]
        if kind == "reset":
            out.append(env.reset(seed=op[2], options=op[3]))
        elif kind == "step":
            out.append(env.step(op[2]))
        elif kind == "replay":  # rebuild a lost env: reset as before, then the actions it had taken
            env.reset(seed=op[2], options=op[3])
            for action in op[4]:
                env.step(action)
            out.append(None)
        elif kind == "num_games":
            out.append(env.unwrapped.num_games(op[2]))
        else:  # pragma: no cover - a programming error
            raise ValueError(f"unknown env operation {kind!r}")
    return out


class RayEnvPool:
    """:class:`EnvPool`'s interface with the envs on the actors of a
    :class:`~wmgym.training.distributed.WorkerPool` (``--ray``): env ``k`` lives on actor ``k mod workers``, made
    there once and reused (a twin's envs on one actor share its loaded world model). One ``reset_many`` /
    ``step_many`` is one call per actor, all actors at once, so the envs of a lockstep step run in parallel while
    the policy generates in the driver, batched.

    An actor that dies is replaced and its envs rebuilt by replaying each episode's reset and actions so far (exact
    for deterministic envs: the real envs, and twins that decode greedily), ``max_retries`` times per call;
    then :class:`~wmgym.training.distributed.WorkerLost` (the GRPO step fails; the run resumes from its last
    checkpoint).
    """

    def __init__(self, env_id: str, env_kwargs: dict[str, Any] | None = None, *, workers: int = 1,
                 address: str | None = "local", max_retries: int = 2):
        import uuid

        from wmgym.training.distributed import WorkerPool

        self.env_id, self.kwargs, self.max_retries = env_id, dict(env_kwargs or {}), max_retries
        self.workers = WorkerPool(workers, address)
        self.id = uuid.uuid4().hex
        self.made: set[int] = set()
        #: Env k's episode so far: its reset's (seed, options) and its actions (what a rebuild replays).
        self.history: dict[int, tuple[int | None, dict[str, Any], list[str]]] = {}

    def slot(self, k: int) -> int:
        return k % self.workers.workers

    def _run(self, ops: list[tuple]) -> list[Any]:
        """Run ``ops`` (each names its env as ``op[1]``) on their actors; the results in the order of ``ops``."""
        from wmgym.training.distributed import WorkerLost

        by_slot: dict[int, list[int]] = {}
        for i, op in enumerate(ops):
            by_slot.setdefault(self.slot(op[1]), []).append(i)
        results: list[Any] = [None] * len(ops)
        todo = {slot: [ops[i] for i in idx] for slot, idx in by_slot.items()}
        for attempt in range(self.max_retries + 1):
            done = self.workers.run_on(_env_ops, {s: (self.id, self.env_id, self.kwargs, o) for s, o in todo.items()})
            for slot, values in done.items():
                for i, value in zip(by_slot[slot], values):
                    if i >= 0:  # -1: a replay's (no result)
                        results[i] = value
            lost = [s for s in todo if s not in done]
            if not lost:
                return results
            # A fresh actor holds none of the lost one's envs: replay those that are mid-episode, then the ops.
            for s in lost:
                fresh = {op[1] for op in todo[s] if op[0] == "reset"}
                replays = [("replay", k, *self.history[k]) for k in sorted(self.history)
                           if self.slot(k) == s and k not in fresh]
                todo[s] = replays + [op for op in todo[s] if op[0] != "replay"]
                by_slot[s] = [-1] * len(replays) + [i for i in by_slot[s] if i >= 0]
            todo = {s: todo[s] for s in lost}
        raise WorkerLost(f"the Ray worker(s) holding envs {sorted(k for k in self.history if self.slot(k) in todo)} "
                         f"died {self.max_retries + 1} time(s) in one call; rerun to resume from the last checkpoint")

    def num_games(self, split: str) -> int:
        return self._run([("num_games", 0, split)])[0]

    def reset_many(self, resets: list[tuple[int, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
        out = self._run([("reset", k, seed, options) for k, (seed, options) in enumerate(resets)])
        for k, (seed, options) in enumerate(resets):
            self.history[k] = (seed, options, [])
        self.made |= set(range(len(resets)))
        return out

    def step_many(self, actions: list[tuple[int, str]]) -> list[tuple]:
        out = self._run([("step", k, action) for k, action in actions])
        for k, action in actions:
            self.history[k][2].append(action)
        return out

    def close(self) -> None:
        try:
            if self.made:
                self._run([("close", k) for k in sorted(self.made)])
        finally:
            self.made, self.history = set(), {}
            self.workers.close()


def play_episodes(pool: EnvPool | RayEnvPool, games: list[str], fmt: ChatFormat, generate: Generator, *,
                  max_steps: int, max_new_tokens: int, max_tokens: int, seed: int = 0) -> list[Episode]:
    """Play one episode per entry of ``games`` (``"SPLIT/INDEX"``; repeats play the same game again), all in
    lockstep with one batched generation per step (see the module docstring)."""
    from wmgym.agents.lm import parse_reply

    resets = []
    for game in games:
        split, index = parse_game(game)
        resets.append((seed + index, {"game": index, "split": split}))
    episodes = []
    for game, (obs, info) in zip(games, pool.reset_many(resets)):
        ep = Episode(game=game, prompt_ids=fmt.prompt_ids(obs), observations=[obs])
        if len(ep.prompt_ids) + max_new_tokens > max_tokens:
            raise ValueError(f"the first prompt of {pool.env_id} game {game} is {len(ep.prompt_ids)} tokens: raise "
                             f"--max-tokens above {len(ep.prompt_ids) + max_new_tokens}")
        episodes.append(ep)
    while True:
        live = [k for k, ep in enumerate(episodes) if not ep.done]
        if not live:
            return episodes
        replies = generate([episodes[k].prompt_ids + episodes[k].completion_ids for k in live], max_new_tokens)
        actions = [parse_reply(fmt.tok.decode(ids, skip_special_tokens=True)) for ids, _ in replies]
        stepped = pool.step_many(list(zip(live, actions)))  # every live env at once (in parallel on Ray actors)
        for k, (ids, logps), action, result in zip(live, replies, actions, stepped):
            ep = episodes[k]
            ep.extend(ids, 1, logps)
            ep.action_ids.append(list(ids))
            obs, reward, terminated, truncated, info = result
            ep.actions.append(action)
            ep.observations.append(obs)
            ep.rewards.append(float(reward))
            ep.won = bool(info.get("won", False))
            closed = bool(ids) and ids[-1] == fmt.close_id
            end = ("terminated" if terminated else "truncated" if truncated
                   else "max_steps" if len(ep.actions) >= max_steps else "")
            if not end:
                nxt = fmt.between(ep.observations, ep.actions, closed)
                if len(ep.prompt_ids) + len(ep.completion_ids) + len(nxt) + max_new_tokens > max_tokens:
                    end = "max_tokens"
                else:
                    ep.extend(nxt, 0)
            if end:
                ep.done, ep.end = True, end
                if not (ids and ids[-1] in fmt.end_ids):  # cut at max_new_tokens: close the turn (not trained)
                    ep.extend([fmt.close_id if fmt.close_id is not None else fmt.end_ids[0]], 0)


def episode_stats(episodes: list[Episode], rewards: list[float], group: int) -> dict[str, float]:
    """Mean reward, success, share of groups (consecutive ``group`` episodes) with unequal rewards, mean steps and
    generated tokens per episode."""
    n = len(episodes)
    groups = [rewards[i:i + group] for i in range(0, n, group)]
    return {
        "reward": sum(rewards) / n,
        "success": sum(ep.won for ep in episodes) / n,
        "return": sum(ep.ret for ep in episodes) / n,
        "nonuniform_groups": sum(max(g) != min(g) for g in groups) / len(groups),
        "episode_steps": sum(len(ep.actions) for ep in episodes) / n,
        "action_tokens": sum(sum(ep.mask) for ep in episodes) / n,
        "completion_tokens": sum(len(ep.completion_ids) for ep in episodes) / n,
        "episodes": n,
    }


def episode_reward(ep: Episode, kind: str) -> float:
    return float(ep.won) if kind == "won" else ep.ret


class Rollout:
    """TRL's ``rollout_func``: one episode per prompt (TRL repeats each game's prompt ``group`` times)."""

    def __init__(self, cfg: AgentGRPOConfig, tokenizer: Any):
        self.cfg, self.fmt = cfg, ChatFormat(tokenizer)
        self.pool: EnvPool | RayEnvPool = (
            EnvPool(cfg.env, cfg.env_kwargs) if cfg.ray is None
            else RayEnvPool(cfg.env, cfg.env_kwargs, workers=cfg.workers, address=cfg.ray))
        #: Stats of the latest rollout (what the curve records for the step it trains).
        self.last: dict[str, float] = {}
        #: The latest rollout's episodes.
        self.episodes: list[Episode] = []

    def generator(self, trainer: Any) -> Generator:
        if getattr(trainer, "use_vllm", False):
            return vllm_generator(trainer)
        args = trainer.args
        model = trainer.accelerator.unwrap_model(trainer.model)
        return hf_generator(model, self.fmt, args.temperature, args.top_p, args.top_k)

    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, Any]:
        out = self.play(prompts, self.generator(trainer))
        if trainer.accelerator.num_processes > 1:
            self.gather_stats()
        return out

    def gather_stats(self) -> None:
        """Under ``torchrun``: make :attr:`last` the stats of every process's episodes (TRL hands each process its
        own whole groups, so the gathered list is still ``group`` episodes of one game at a time), with each
        process's games under ``rank_games``. A collective: every process calls it once per rollout."""
        from accelerate.utils import gather_object

        cfg = self.cfg
        light = [dataclasses.replace(ep, prompt_ids=[], completion_ids=[0] * len(ep.completion_ids), logprobs=[],
                                     observations=[], action_ids=[]) for ep in self.episodes]
        episodes = gather_object(light)
        rewards = [episode_reward(ep, cfg.reward) for ep in episodes]
        games = gather_object([sorted({ep.game for ep in self.episodes})])
        rollout_s = max(gather_object([self.last["rollout_s"]]))
        self.last = {**episode_stats(episodes, rewards, cfg.group), "rollout_s": rollout_s, "rank_games": games}

    def play(self, prompts: list[Any], generate: Generator) -> dict[str, Any]:
        """Play one episode per prompt with ``generate`` and return TRL's rollout output (the episodes themselves
        stay in :attr:`episodes`, for tests and inspection)."""
        cfg = self.cfg
        t0 = time.time()
        episodes = play_episodes(self.pool, [f"{s}/{i:05d}" for s, i in map(parse_game, prompts)], self.fmt,
                                 generate, max_steps=cfg.max_steps,
                                 max_new_tokens=cfg.max_new_tokens, max_tokens=cfg.max_tokens, seed=cfg.seed)
        self.episodes = episodes
        rewards = [episode_reward(ep, cfg.reward) for ep in episodes]
        self.last = {**episode_stats(episodes, rewards, cfg.group), "rollout_s": time.time() - t0}
        return {
            "prompt_ids": [ep.prompt_ids for ep in episodes],
            "completion_ids": [ep.completion_ids for ep in episodes],
            "logprobs": [ep.logprobs for ep in episodes],
            "env_mask": [ep.mask for ep in episodes],
            "episode_won": [float(ep.won) for ep in episodes],
            "episode_return": [ep.ret for ep in episodes],
            "episode_steps": [len(ep.actions) for ep in episodes],
        }


def reward_function(kind: str) -> Callable[..., list[float]]:
    """The reward function TRL calls, reading the rollout's extra fields."""

    def episode_reward_fn(prompts=None, completions=None, episode_won=None, episode_return=None, **kw) -> list[float]:
        values = episode_won if kind == "won" else episode_return
        return [float(v) for v in values]

    episode_reward_fn.__name__ = f"episode_{kind}"
    return episode_reward_fn


# ---------------------------------------------------------------------------- evaluation
def evaluate(model: Any, tokenizer: Any, cfg: AgentGRPOConfig, n_games: int,
             pool: EnvPool | RayEnvPool | None = None, batch: int = 16) -> dict[str, Any]:
    """Greedy success (and mean return) of ``model`` on the first ``n_games`` held-out games."""
    from wmgym.envs import heldout_split

    split = cfg.eval_split or heldout_split(cfg.env)
    fmt = ChatFormat(tokenizer)
    own = pool is None
    pool = pool or EnvPool(cfg.env, cfg.env_kwargs)
    gen = hf_generator(model, fmt, temperature=0.0)
    games = game_prompts(split, list(range(n_games)))
    episodes: list[Episode] = []
    try:
        for i in range(0, len(games), batch):
            episodes += play_episodes(pool, games[i:i + batch], fmt, gen, max_steps=cfg.max_steps,
                                      max_new_tokens=cfg.max_new_tokens, max_tokens=cfg.max_tokens, seed=cfg.seed)
    finally:
        if own:
            pool.close()
    return {"split": split, "games": n_games, "success": sum(ep.won for ep in episodes) / max(1, n_games),
            "return": sum(ep.ret for ep in episodes) / max(1, n_games),
            "episode_steps": sum(len(ep.actions) for ep in episodes) / max(1, n_games)}


# ---------------------------------------------------------------------------- curve
class Curve:
    """``OUT/curve.json``: the run's per-step stats, rewritten atomically after every step."""

    def __init__(self, out: str | Path, resume_step: int | None):
        self.path = Path(out) / "curve.json"
        #: Only rank 0 of a ``torchrun`` run writes the file (every rank keeps the same data).
        self.writer = int(os.environ.get("RANK", "0")) == 0
        self.data: dict[str, Any] = {"steps": []}
        if resume_step is not None and self.path.exists():
            self.data = json.loads(self.path.read_text())
            self.data["steps"] = [s for s in self.data.get("steps", []) if s["step"] <= resume_step]
            self.data.pop("eval_after", None)

    def write(self) -> None:
        if not self.writer:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, default=str))
        os.replace(tmp, self.path)


def curve_callback(curve: Curve, rollout: Rollout, log_every: bool = True):
    """A callback adding each optimizer step's rollout stats (and TRL's loss) to the curve."""
    from transformers import TrainerCallback

    class CurveCallback(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            curve.data["steps"].append({"step": state.global_step, **rollout.last})
            curve.write()
            if log_every and state.is_world_process_zero:
                s = rollout.last
                print(f"step {state.global_step}/{state.max_steps}: reward {s.get('reward', 0):.3f}, success "
                      f"{s.get('success', 0):.3f}, non-uniform groups {s.get('nonuniform_groups', 0):.2f}, "
                      f"{s.get('episode_steps', 0):.1f} steps/episode, {s.get('rollout_s', 0):.1f} s rollout",
                      flush=True)

        def on_log(self, args, state, control, logs=None, **kw):
            if not logs or not curve.data["steps"]:
                return
            last = curve.data["steps"][-1]
            if last["step"] == state.global_step and "loss" in logs:
                last["loss"] = float(logs["loss"])
                curve.write()

    return CurveCallback()


# ---------------------------------------------------------------------------- training
def load_policy(cfg: AgentGRPOConfig) -> tuple[Any, Any]:
    """The starting policy and its tokenizer (LoRA-wrapped with ``--lora``)."""
    from wmgym.training.sft import add_lora, load_pretrained

    if not Path(cfg.model).exists() and os.environ.get("HF_HUB_OFFLINE") == "1":
        raise FileNotFoundError(f"policy model {cfg.model!r} is not a local directory (and the hub is offline)")
    model, tokenizer = load_pretrained(cfg.model, cfg.trust_remote_code, require_chat_template=False)
    if cfg.lora:
        model = add_lora(model, cfg)
    return model, tokenizer


def grpo_args(cfg: AgentGRPOConfig, use_bf16: bool, end_ids: list[int] | None = None) -> Any:
    """TRL's ``GRPOConfig`` for this run: one generation batch of group x games episodes per optimizer step
    (``end_ids``: the tokens that end a reply, where vLLM is to stop)."""
    import torch
    from trl import GRPOConfig

    batch = cfg.group * cfg.games_per_step
    micro = cfg.micro_batch or batch
    os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(Path(cfg.out) / "runs"))
    # Off: the policies trained here are small; transformers 5 renamed the flag (the old name warns).
    checkpointing = {("activation_checkpointing" if "activation_checkpointing" in GRPOConfig.__dataclass_fields__
                      else "gradient_checkpointing"): False}
    vllm_stop = {"generation_kwargs": {"stop_token_ids": list(end_ids)}} if cfg.vllm and end_ids else {}
    return GRPOConfig(
        **vllm_stop, output_dir=cfg.out, max_steps=cfg.steps, per_device_train_batch_size=micro,
        gradient_accumulation_steps=batch // micro, num_generations=cfg.group, learning_rate=cfg.lr,
        lr_scheduler_type="constant_with_warmup" if cfg.warmup else "constant",
        warmup_steps=int(cfg.warmup * cfg.steps), beta=cfg.beta, temperature=cfg.temperature,
        max_completion_length=cfg.max_tokens, logging_steps=cfg.logging_steps, save_strategy="steps",
        save_steps=cfg.save_steps, save_total_limit=cfg.save_total_limit, report_to=cfg.report_to, seed=cfg.seed,
        data_seed=cfg.seed, use_cpu=not torch.cuda.is_available(), bf16=use_bf16,
        **checkpointing, disable_tqdm=not cfg.progress, use_vllm=cfg.vllm, vllm_mode=cfg.vllm_mode,
        shuffle_dataset=True, remove_unused_columns=False, dataloader_num_workers=0,
    )


def train(cfg: AgentGRPOConfig) -> dict[str, Any]:
    """Run (or resume) GRPO; returns the summary and saves the final model in ``cfg.out``."""
    import torch

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # rollout_func is experimental in TRL 1.16
    from datasets import Dataset
    from trl import GRPOTrainer

    from wmgym.training.sft_trainer import bf16_supported, latest_checkpoint

    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    model, tokenizer = load_policy(cfg)
    rollout = Rollout(cfg, tokenizer)
    n = rollout.pool.num_games(cfg.split)
    indices = list(range(min(n, cfg.games) if cfg.games else n))
    dataset = Dataset.from_dict({"prompt": game_prompts(cfg.split, indices)})

    resume = latest_checkpoint(cfg.out) if cfg.resume else None
    resume_step = int(Path(resume).name.split("-")[-1]) if resume else None
    curve = Curve(cfg.out, resume_step if resume else None)
    curve.data["config"] = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "env_kwargs"}
    if cfg.eval_games and "eval_before" not in curve.data:
        curve.data["eval_before"] = evaluate(model, tokenizer, cfg, cfg.eval_games, rollout.pool)
        print(f"held-out success before: {curve.data['eval_before']['success']:.3f} "
              f"({cfg.eval_games} games of {curve.data['eval_before']['split']})")
    curve.write()

    use_bf16 = bf16_supported() if cfg.bf16 is None else cfg.bf16
    trainer = GRPOTrainer(model=model, reward_funcs=[reward_function(cfg.reward)],
                          args=grpo_args(cfg, use_bf16, rollout.fmt.end_ids), train_dataset=dataset,
                          processing_class=tokenizer, rollout_func=rollout,
                          callbacks=[curve_callback(curve, rollout)])
    if resume:
        print(f"resuming from {resume}")
    t0 = time.time()
    trainer.train(resume_from_checkpoint=resume)
    wall = time.time() - t0
    final = trainer.accelerator.unwrap_model(trainer.model)
    if cfg.lora:
        final = final.merge_and_unload()
    if cfg.eval_games:
        curve.data["eval_after"] = evaluate(final, tokenizer, cfg, cfg.eval_games, rollout.pool)
        print(f"held-out success after: {curve.data['eval_after']['success']:.3f}")
    curve.write()
    rollout.pool.close()
    steps = curve.data["steps"]
    summary = {
        "env": cfg.env, "model": cfg.model, "lora": cfg.lora, "steps": trainer.state.global_step,
        "processes": trainer.accelerator.num_processes,
        "resumed_from": resume, "wall_s": wall, "games": len(indices),
        "first_reward": steps[0]["reward"] if steps else None,
        "last_reward": steps[-1]["reward"] if steps else None,
        "mean_reward": sum(s["reward"] for s in steps) / len(steps) if steps else None,
        "eval_before": curve.data.get("eval_before"), "eval_after": curve.data.get("eval_after"),
    }
    if trainer.is_world_process_zero():
        from wmgym.training.tiny import save_pretrained

        final.generation_config.eos_token_id = rollout.fmt.end_ids
        # max_turns None: GRPO trained on whole histories, so lm:DIR plays with whole histories too.
        save_pretrained(final, tokenizer, out, extra={"config": {**curve.data["config"], "max_turns": None},
                                                      "grpo": summary})
        (out / "grpo_summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


__all__ = ["AgentGRPOConfig", "ChatFormat", "EnvPool", "Episode", "RayEnvPool", "Rollout", "evaluate",
           "game_prompts", "hf_generator", "parse_env_args", "parse_game", "play_episodes", "reward_function", "train"]
