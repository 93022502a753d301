"""TextWorld-v0: TextWorld games (custom quests and cooking) compiled locally, or the user's own game files.

Modules: :mod:`~wmgym.envs.textworld.games` (splits, generation, cache),
:mod:`~wmgym.envs.textworld.context` (the hidden state the twin is given, read
from the game's Inform source) and :mod:`~wmgym.envs.textworld.env` (the
Gymnasium env). Nothing heavy is imported here.
"""

from __future__ import annotations

__all__ = ["TextWorldEnv"]


def __getattr__(name: str):
    if name == "TextWorldEnv":
        from wmgym.envs.textworld.env import TextWorldEnv

        return TextWorldEnv
    raise AttributeError(name)
