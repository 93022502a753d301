"""Agents: one protocol for the privileged collection policies and the observation-only benchmark agents.

- :mod:`wmgym.agents.base`: the :class:`Agent` protocol (``reset(observation, info, seed, env=None)``,
  ``act(observation, info)``), the shared random and noise helpers, and :func:`play`, the episode loop;
- :mod:`wmgym.agents.privileged`: expert, noisy expert, explore, ``+score:P`` (they read the engine);
- :mod:`wmgym.agents.scripted`: the observation-only scripted agent of each env, found through the env
  class's ``scripted_agent`` entry point;
- :mod:`wmgym.agents.react`: the ReAct LLM agent;
- :mod:`wmgym.agents.lm`: the agent chat format (:func:`~wmgym.agents.lm.agent_messages`) and ``lm:DIR``, a
  trained policy LM that generates its action or scores the admissible commands;
- :mod:`wmgym.agents.factory`: :func:`make_agent`, one spec grammar for ``wmgym collect --policy`` and
  ``wmgym bench ... --agents``.

Layering: agents import envs (and the ReAct agent's local model path, transformers), never training or
benchmarks.
"""

from __future__ import annotations

from wmgym.agents.base import Agent, BaseAgent, Noisy, RandomAgent, ScriptedAgent, candidate_commands, play, \
    random_action
from wmgym.agents.factory import AGENT_SPECS, OBSERVATION_SPECS, AgentSpec, make_agent, parse_spec, scripted_agent

__all__ = ["Agent", "BaseAgent", "Noisy", "RandomAgent", "ScriptedAgent", "candidate_commands", "play",
           "random_action", "AGENT_SPECS", "OBSERVATION_SPECS", "AgentSpec", "make_agent", "parse_spec",
           "scripted_agent"]
