"""Pieces of Word2World's text layout that several envs share (``format="word2world"``).

Word2World (X1AOX1A/Word2World) trained its released world models on
AgentGym's env servers' strings and on initial contexts made by its
``scripts/collect_init_context/``. The facts reproduced here:

- The world model's system prompt for ALFWorld and SciWorld is the hidden
  state description between two headings, then what the agent's first user
  turn shows (:func:`system_prompt`). For TextWorld and WebShop it is that
  first observation alone.
- AgentGym's ALFWorld and TextWorld clients show the agent the first
  observation followed by ``"\\nAVAILABLE ACTIONS: "`` and the admissible
  commands (joined by ``","`` for ALFWorld, ``", "`` for TextWorld, which
  shows no line when the list is empty) (:func:`with_available_actions`).
  Later observations are the server's text alone.

The chat itself (the bare action as the user turn, the observation as the
assistant turn, `` [SUCCESS]`` appended on a win) is already wmgym's protocol.
"""

from __future__ import annotations

from collections.abc import Sequence

HIDDEN_HEADING = "# Environment Information (Only visible to Assistant)"
USER_HEADING = "# User Environment Information (Displayed to User)"


def system_prompt(description: str, user_observation: str) -> str:
    """Word2World's ALFWorld/SciWorld system prompt: the hidden description, then what the user sees."""
    return f"{HIDDEN_HEADING}\n\n{description}\n\n{USER_HEADING}\n\n{user_observation}\n"


def with_available_actions(observation: str, actions: Sequence[str], separator: str, *,
                           skip_empty: bool = False) -> str:
    """``observation`` with AgentGym's ``AVAILABLE ACTIONS:`` line (the first observation an agent sees)."""
    if skip_empty and not actions:
        return observation
    return f"{observation}\nAVAILABLE ACTIONS: {separator.join(actions)}"
