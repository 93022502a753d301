"""SciWorld-v0: ScienceWorld's 30 tasks in its Java simulator.

Modules: :mod:`~wmgym.envs.sciworld.engine` (the JVM and its pitfalls),
:mod:`~wmgym.envs.sciworld.context` (the hidden state: every room as the game
shows it), :mod:`~wmgym.envs.sciworld.expert` (gold paths replayed) and
:mod:`~wmgym.envs.sciworld.env` (the Gymnasium env). Nothing heavy is imported
here: the JVM starts when a game is first played.
"""

from __future__ import annotations

__all__ = ["SciWorldEnv"]


def __getattr__(name: str):
    if name == "SciWorldEnv":
        from wmgym.envs.sciworld.env import SciWorldEnv

        return SciWorldEnv
    raise AttributeError(name)
