"""TextWorld-v0 in Word2World's strings (``format="word2world"``).

Rules read from Word2World's AgentGym TextWorld server and client and its
``collect_wm_instruct_textworld.py``; our own code:

- Observations are TextWorld's own text as the game prints it (``feedback``, what ``textworld.gym``
  returns): the ASCII banner at the start, the prompt, nothing stripped.
- The first observation the agent sees adds ``"\\nAVAILABLE ACTIONS: "`` and the admissible commands joined
  by ``", "`` (no line when there are none).
- ``init_context`` (the world model's system prompt) is that first observation alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from wmgym.envs.word2world import with_available_actions


def first_observation(feedback: str, admissible: Sequence[str]) -> str:
    """The reset text as AgentGym's TextWorld client shows it (and Word2World's system prompt)."""
    return with_available_actions(str(feedback), list(admissible), ", ", skip_empty=True)


def step_observation(feedback: str) -> str:
    """A step's text as AgentGym's TextWorld server returns it."""
    return str(feedback)
