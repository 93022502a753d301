"""Tau2-Retail-v0, Tau2-Airline-v0, Tau2-Telecom-v0: tau2-bench's customer-service domains, one tool call a step.

Description:
    Each game is one tau2 task. The first observation is the user's request: the task's ticket where it has one
    (telecom, as tau2's solo mode gives it), else a ticket written from the task's user scenario (why the
    customer writes, what they know, what they want). The agent answers it with the domain's tools, which
    are tau2's own Python tools over the domain's database, and ends with a message to the user. There is no
    user simulator: the agent works alone, as in tau2's solo mode.

Actions:
    One JSON object per step:

    - a tool call ``{"name": "get_user_details", "arguments": {"user_id": "..."}}``;
    - a final message to the user ``{"message": "..."}``, which ends the episode.

    Anything else (not JSON, JSON of another shape) gets an ``Error: ...`` observation with
    ``action_valid=False`` and changes nothing. A call to an unknown tool, with missing or mistyped arguments,
    or that the tool refuses is answered by tau2 with the tool's own error (``Error: ...``), also
    ``action_valid=False``. Empty actions and actions over :attr:`Tau2Env.max_action_length` characters are
    malformed (the base class answers them with :attr:`invalid_action_text`).

Observations:
    The tool's response as tau2 returns it (JSON, or ``Error: ...``); after the final message, ``The episode is
    over. Reward: R`` with tau2's breakdown.

Rewards:
    0 per step; at the end, tau2's evaluator on the trajectory: the database against the one the gold actions
    make, environment assertions (telecom's device state), required information in the messages and gold calls
    made, each where the task's ``reward_basis`` names it (:mod:`~wmgym.envs.tau2.engine`).

Termination:
    On the final message; ``won`` when the reward is 1. Truncation from the registered TimeLimit (30 steps).

init_context:
    The request, the domain's policy, the tools' JSON schemas and the records of the database the task can
    touch (:func:`~wmgym.envs.tau2.engine.touched_records`): what a world model playing the tools needs.

Each reset starts from the task's initial state on fresh copies of the domain's databases, so nothing one
episode writes reaches another. The tau2 package is imported on first use; without it making the env raises
an ``ImportError`` naming the install command.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any, ClassVar

from wmgym.envs.base import EngineReset, EngineStep, TextEnv, format_init_context
from wmgym.envs.spaces import MAX_OBSERVATION_LENGTH
from wmgym.envs.tau2 import engine

#: How an action must look (said in the first observation and in every format error).
ACTION_FORMAT = ('one JSON object: a tool call {"name": "<tool>", "arguments": {...}} or a final message to the '
                 'user {"message": "..."}')
_REWARD = re.compile(r"The episode is over\. Reward: ([0-9.]+)")


def parse_action(action: str) -> tuple[str, Any] | tuple[str, str]:
    """``("call", {"name", "arguments"})``, ``("message", text)`` or ``("error", why)`` for one action."""
    try:
        value = json.loads(action)
    except json.JSONDecodeError as e:
        return "error", f"Error: the action is not valid JSON ({e.msg}, at character {e.pos}); send {ACTION_FORMAT}"
    if isinstance(value, dict) and set(value) == {"message"} and isinstance(value["message"], str):
        return "message", value["message"]
    if isinstance(value, dict) and isinstance(value.get("name"), str) and set(value) <= {"name", "arguments"}:
        arguments = value.get("arguments", {})
        if isinstance(arguments, dict):
            return "call", {"name": value["name"], "arguments": arguments}
        return "error", f"Error: 'arguments' must be a JSON object, got {type(arguments).__name__}"
    return "error", f"Error: the action is JSON but not {ACTION_FORMAT}"


@functools.lru_cache(maxsize=4096)
def _context(domain: str, split: str, index: int) -> tuple[str, str, list[str]]:
    """``(first observation, init_context, admissible commands)`` of a task (cached: they do not change)."""
    dom = engine.load_domain(domain)
    task = dom.tasks[split][index]
    request = engine.task_request(task)
    observation = f"{request}\n\nReply with {ACTION_FORMAT}."
    state = [f"Domain: tau2-bench {domain}{' (solo mode: no user on the line)' if dom.solo else ''}",
             f"Task: {task.id}", "Each tool answers with its JSON response or 'Error: ...'; a final message ends the "
             "episode with tau2's reward."]
    sections = [("Policy:", dom.policy.strip()),
                ("Tools (JSON schemas):", "\n".join(json.dumps(s) for s in dom.schemas)),
                ("Database (the records this task can touch, JSON):",
                 json.dumps(engine.touched_records(domain, task), sort_keys=True))]
    context = format_init_context(request, state, observation, sections)
    return observation, context, admissible(dom, task)


def admissible(dom: engine.Domain, task: Any) -> list[str]:
    """Calls worth trying in a task: the gold calls, each tool once with argument values the gold calls use
    (by parameter name) where they give every required one, and the expert's final message. A sample of the
    unbounded set of calls, for the random and noisy policies."""
    gold = engine.gold_calls(task)
    pool: dict[str, Any] = {}
    for call in gold:
        for name, value in call["arguments"].items():
            pool.setdefault(name, value)
    calls = [engine.canonical(c) for c in gold]
    for schema in dom.schemas:
        params = schema.get("parameters", {})
        required = params.get("required", [])
        if all(r in pool for r in required):
            calls.append(engine.canonical({"name": schema["name"], "arguments": {r: pool[r] for r in required}}))
    calls.append(json.dumps({"message": engine.final_message(task)}))
    return sorted(set(calls))


class Tau2Env(TextEnv):
    """One tau2-bench domain (see module docstring).

    Args:
        split: ``"train"`` or ``"test"`` (tau2's own task splits).
        render_mode: ``"ansi"`` or ``"human"``.
        domain: ``"retail"``, ``"airline"`` or ``"telecom"`` (set by the registered id).
        format: ``"wmgym"`` (the only rendering).
    """

    splits: ClassVar[tuple[str, ...]] = ("train", "test")
    heldout_split: ClassVar[str] = "test"
    invalid_action_text: ClassVar[str] = f"Error: the action is empty or too long; send {ACTION_FORMAT}"
    #: tau2's longest gold call (an airline booking) is 850 characters; 4096 leaves room and still refuses a 10 kB one.
    max_action_length: ClassVar[int] = 4096
    scripted_agent: ClassVar[str | None] = "wmgym.agents.scripted.tau2:Tau2Agent"
    engine_benchmark: ClassVar[str | None] = "wmgym.benchmarks.engines.tau2:main"
    #: A final message ends the episode and is scored; it cannot be taken back.
    irreversible_actions: ClassVar[tuple[str, ...]] = ()
    #: The generic recipe's policies with chats long enough to hold a whole episode: measured with the tiny
    #: tokenizer on expert and noisy-expert episodes (docs/tool-envs.md), chats run 12k tokens (retail, median;
    #: max 20k), 23k (airline; max 27k) and 15k (telecom; max 16k), nearly all of it the context (policy, tool
    #: schemas, records). 32k holds every one whole. Not trained yet: the time a tiny twin takes on such chats on
    #: CPU is unmeasured. ``max_steps`` 30 is the registered limit, written out.
    default_twin: ClassVar[dict[str, Any] | None] = {
        "train": [("expert", 60), ("noisy-expert:0.3", 60), ("random", 20)],
        "test": [("expert", 10), ("noisy-expert:0.3", 10)],
        "sft": {"preset": "tiny", "curriculum": 0.3, "max_steps": 800, "batch_tokens": 32768, "lr": 3e-3,
                "max_length": 32768, "eval_steps": 200, "save_steps": 200},
        "max_steps": 30,
    }
    context_version: ClassVar[int] = 1

    def __init__(self, split: str | None = None, render_mode: str | None = None, domain: str = "retail",
                 format: str = "wmgym"):
        self.domain = engine.check_domain(domain)
        super().__init__(split=split, render_mode=render_mode, format=format)
        self.data = engine.load_domain(domain)  # raises ImportError with the install command without tau2
        self.episode: engine.Episode | None = None
        self._task: Any = None
        self._key: tuple[str, int] = ("train", 0)
        self._gold_done = 0

    # ----------------------------------------------------------------- engine
    def _num_games(self, split: str) -> int:
        return len(self.data.tasks[split])

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["data"] = None  # the domain's pristine databases and tau2 modules: reloaded (cached) on unpickling
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.data = engine.load_domain(self.domain)

    def _engine_reset(self, split: str, index: int) -> EngineReset:
        self._task, self._key = self.data.tasks[split][index], (split, index)
        self.episode = None  # made on the first call: fresh copies of the databases, the task's initial state
        self._gold_done = 0
        observation, context, commands = _context(self.domain, split, index)
        self._commands = commands
        return EngineReset(observation=observation, task=engine.task_request(self._task),
                           game_id=f"{split}/{index:05d}", init_context=context, admissible_commands=commands,
                           extra={"task_id": self._task.id, "domain": self.domain})

    def live_episode(self) -> engine.Episode:
        """The episode's tau2 environment (made on first use)."""
        if self.episode is None:
            self.episode = engine.Episode(self.data, self._task)
        return self.episode

    def _engine_step(self, action: str) -> EngineStep:
        kind, value = parse_action(action)
        extra: dict[str, Any] = {"task_id": self._task.id, "domain": self.domain}
        if kind == "error":
            return EngineStep(value, admissible_commands=self._commands, action_valid=False, extra=extra)
        episode = self.live_episode()
        if kind == "message":
            episode.say(value)
            reward, breakdown = episode.reward()
            parts = ", ".join(f"{k} {v:g}" for k, v in sorted(breakdown.items()))
            won = reward >= 1.0 - 1e-9
            return EngineStep(f"The episode is over. Reward: {reward:g}" + (f" ({parts})" if parts else ""),
                              reward=reward, won=won, lost=not won, admissible_commands=self._commands,
                              action_valid=True, extra={**extra, "reward_breakdown": breakdown})
        response, error = episode.call(value["name"], value["arguments"])
        gold = engine.gold_calls(self._task)
        if self._gold_done < len(gold) and value == gold[self._gold_done]:
            self._gold_done += 1
        return EngineStep(response[:MAX_OBSERVATION_LENGTH] or "null", admissible_commands=self._commands,
                          action_valid=not error, extra=extra)

    @classmethod
    def twin_extras(cls, observation: str, success: bool) -> dict[str, Any]:
        """The reward a twin's closing line shows (and a loss when it is under 1)."""
        m = _REWARD.search(observation)
        if m is None:
            return {}
        try:
            reward = float(m.group(1))
        except ValueError:
            return {}
        return {"reward": reward, "lost": reward < 1.0 - 1e-9}

    # ----------------------------------------------------------------- expert
    def expert_action(self) -> str | None:
        """The next gold call not yet made, then the final message carrying what the task must communicate."""
        if self._task is None or self._done:
            return None
        gold = engine.gold_calls(self._task)
        if self._gold_done < len(gold):
            return engine.canonical(gold[self._gold_done])
        return json.dumps({"message": engine.final_message(self._task)})
