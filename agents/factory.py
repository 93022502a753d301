"""One spec grammar for every agent: ``wmgym collect --policy SPEC`` and ``wmgym bench ... --agents SPEC``.

======================  =================================================================  ==========
spec                    agent                                                              privileged
======================  =================================================================  ==========
``expert``              the engine's expert (:class:`~wmgym.agents.privileged.ExpertAgent`)  yes
``noisy-expert:EPS``    the expert, a random command with probability EPS (default 0.2)   yes
``explore``             untried opens, then untried moves, then random                     yes
``random``              uniform random (live admissible commands when privileged)          either
``scripted``            the env's observation-only scripted agent                          no
``scripted:EPS``        the scripted agent, a random command with probability EPS          no
``react``               an LLM ReAct agent (keyword arguments: ``model``, ``url``, ...)     no
``lm:DIR[?OPTS]``       a trained policy LM (:class:`~wmgym.agents.lm.LMAgent`), greedy     no
                        generation; ``?mode=score`` scores the admissible commands;
                        options ``mode``, ``max_new_tokens``, ``max_turns`` joined by ``&``
``SPEC+score:P``        SPEC, typing the env's score command with probability P (0.3)      yes
======================  =================================================================  ==========

The spec's canonical form is the agent's ``name``, which collection records as each episode's ``policy``
(and the benchmarks' caches put in file names), so these names never change.

An env's scripted agent is found through the env: its class attribute ``scripted_agent``, a string entry
point such as ``"wmgym.agents.scripted.textworld:TextWorldAgent"``, imported only when asked for; a twin id
(``WM-<id>``) uses its real env's.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym

from wmgym.agents.base import Agent, Noisy, RandomAgent
from wmgym.envs import env_class, load_entry_point, real_id, registered_ids

#: Every spec form :func:`make_agent` accepts.
AGENT_SPECS = ("expert", "noisy-expert:EPS", "explore", "random", "scripted", "scripted:EPS", "react",
               "lm:DIR[?mode=score]", "SPEC+score:P")
#: The forms that play from observations only (a twin's too).
OBSERVATION_SPECS = ("random", "scripted", "scripted:EPS", "react", "lm:DIR[?mode=score]")
#: Options of an ``lm:DIR?OPT=V&...`` spec and their types.
LM_OPTIONS = {"mode": str, "max_new_tokens": int, "max_turns": int}


def scripted_entry_point(env_id: str) -> str | None:
    """The ``module:Class`` of ``env_id``'s scripted agent (its real env's ``scripted_agent``), or ``None``."""
    try:
        cls = env_class(env_id)  # a twin id gives its real env's class
    except gym.error.Error as e:
        raise ValueError(f"{env_id!r} is not a registered env id ({e})") from None
    return getattr(cls, "scripted_agent", None)


def scripted_agent(env_id: str) -> Agent:
    """A fresh scripted agent of ``env_id`` (real or twin id)."""
    try:
        entry = scripted_entry_point(env_id)
    except ValueError as e:
        raise ValueError(f"no scripted agent for {env_id!r}: {e}") from None
    if entry is None:
        have = [i for i in registered_ids() if real_id(i) == i and scripted_entry_point(i)]
        raise ValueError(f"no scripted agent for {env_id!r}; envs with one: {have} "
                         f"(use --agents random or react for other envs)")
    return load_entry_point(entry)()


@dataclasses.dataclass(frozen=True)
class AgentSpec:
    """A parsed spec: the base agent ``kind``, its noise ``eps`` and its score-query probability ``score``."""

    kind: str
    """expert | explore | random | scripted | react | lm"""
    eps: float | None = None
    score: float | None = None
    arg: str | None = None
    """``lm``: the model directory and options as written after ``lm:``."""

    @property
    def name(self) -> str:
        """The canonical spec, which the agent carries as ``name`` (and collection records as ``policy``)."""
        if self.kind == "lm":
            return f"lm:{self.arg}"
        noisy = "noisy-expert" if self.kind == "expert" else self.kind  # the expert's noisy name predates the rest
        base = self.kind if self.eps is None else f"{noisy}:{self.eps:g}"
        return base if self.score is None else f"{base}+score:{self.score:g}"

    @property
    def privileged(self) -> bool:
        """Whether the agent reads the engine (only collection in a real env may)."""
        return self.kind in ("expert", "explore") or self.score is not None


def _number(spec: str, text: str, default: float | None, what: str) -> float:
    if not text and default is not None:
        return default
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"bad agent {spec!r}: {what} must be a number, got {text!r}") from None


def parse_spec(spec: str, *, privileged: bool = False) -> AgentSpec:
    """Parse and check ``spec`` (see the module docstring) without building the agent.

    Raises:
        ValueError: naming the bad spec and the valid ones; or, without ``privileged``, saying which specs
            play from observations only.
    """
    if spec.startswith("lm:"):  # a path may hold '+' or ':', so the rest is the lm's own
        lm_options(spec)
        return AgentSpec("lm", arg=spec[len("lm:"):])
    base, plus, suffix = spec.partition("+")
    score = None
    if plus:
        kind, _, p = suffix.partition(":")
        if kind != "score":
            raise ValueError(f"unknown agent suffix {'+' + suffix!r} in {spec!r}; valid: '+score:P'")
        score = _number(spec, p, 0.3, "P after '+score:'")
        if not 0.0 < score < 1.0:
            raise ValueError(f"bad agent {spec!r}: score query probability must be in (0, 1), got {score}")
    name, colon, arg = base.partition(":")
    if base in ("expert", "explore", "random", "scripted", "react"):
        parsed = AgentSpec(base, None, score)
    elif name in ("noisy-expert", "scripted") and (colon or name == "noisy-expert"):
        eps = _number(spec, arg, 0.2 if name == "noisy-expert" else None, f"the noise after '{name}:'")
        if not 0.0 <= eps <= 1.0:
            raise ValueError(f"bad agent {spec!r}: noise eps must be in [0, 1], got {eps}")
        parsed = AgentSpec("expert" if name == "noisy-expert" else name, eps, score)
    else:
        raise ValueError(f"unknown agent {spec!r}; valid agents: {list(AGENT_SPECS)}")
    if parsed.privileged and not privileged:
        raise ValueError(f"agent {spec!r} reads the engine, which only collection in a real env may (a twin "
                         f"has none); agents that play from observations: {list(OBSERVATION_SPECS)}")
    return parsed


def lm_options(spec: str) -> tuple[str, dict[str, Any]]:
    """The model directory and the :class:`~wmgym.agents.lm.LMAgent` options of an ``lm:DIR[?OPT=V&...]`` spec."""
    path, _, query = spec[len("lm:"):].partition("?")
    if not path:
        raise ValueError(f"bad agent {spec!r}: give the model directory, e.g. lm:runs/agent or lm:runs/agent?mode=score")
    options: dict[str, Any] = {}
    for part in filter(None, query.split("&")):
        key, eq, value = part.partition("=")
        if not eq or key not in LM_OPTIONS:
            raise ValueError(f"bad option {part!r} in agent {spec!r}; valid options: "
                             f"{[k + '=...' for k in LM_OPTIONS]}")
        try:
            options[key] = LM_OPTIONS[key](value)
        except ValueError:
            raise ValueError(f"bad agent {spec!r}: {key} must be an integer, got {value!r}") from None
    from wmgym.agents.lm import MODES

    if options.get("mode", "generate") not in MODES:
        raise ValueError(f"bad agent {spec!r}: unknown mode {options['mode']!r}; valid modes: {list(MODES)}")
    return path, options


def make_agent(spec: str, env_id: str, *, privileged: bool = False, **react_kwargs: Any) -> Agent:
    """Build the agent ``spec`` names (see the module docstring) for ``env_id``.

    Args:
        spec: an agent spec, e.g. ``expert``, ``noisy-expert:0.3``, ``scripted:0.2``, ``expert+score:0.3``.
        env_id: the env it will play (real or twin id); picks the scripted agent.
        privileged: whether it may read the engine and the live admissible commands (collection in a real
            env); without, engine-reading specs raise and ``random`` draws from what observations show.
        react_kwargs: ``model``, ``url``, ``api_key``, ... of the ReAct agent.
    """
    parsed = parse_spec(spec, privileged=privileged)
    agent: Any
    if parsed.kind in ("expert", "explore"):
        from wmgym.agents.privileged import ExpertAgent, ExploreAgent

        agent = ExpertAgent() if parsed.kind == "expert" else ExploreAgent()
    elif parsed.kind == "random":
        agent = RandomAgent(privileged=privileged)
    elif parsed.kind == "scripted":
        agent = scripted_agent(env_id)
    elif parsed.kind == "lm":
        from wmgym.agents.lm import LMAgent

        path, options = lm_options(spec)
        agent = LMAgent(path, name=parsed.name, **options)
    else:
        from wmgym.agents.react import ReActAgent

        agent = ReActAgent(**react_kwargs)
    if parsed.eps is not None:
        agent = Noisy(agent, parsed.eps, parsed.name.partition("+")[0])
    if parsed.score is not None:
        from wmgym.agents.privileged import ScoreQueries

        agent = ScoreQueries(agent, parsed.score)
    return agent
