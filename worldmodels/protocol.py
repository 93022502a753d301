"""The world-model chat protocol (one episode = one chat).

::

    system:    init_context          (hidden initial state + first observation)
    user:      action_1
    assistant: observation_1         (+ " [SUCCESS]" when this step wins)
    user:      action_2
    assistant: observation_2
    ...

This is the format of the released Word2World checkpoints, so those load as
twins unchanged. Training supervises only the assistant turns. Everything that
builds or reads such chats (training data, backends, the twin env) goes
through this module, so the format lives in one place.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

SUCCESS_MARKER = " [SUCCESS]"

Message = dict[str, str]


def target_text(observation: str, won: bool) -> str:
    """The assistant turn for one step: the observation, marked when it wins."""
    return observation + SUCCESS_MARKER if won else observation


def build_messages(init_context: str, history: Sequence[tuple[str, str]], next_action: str | None = None) -> list[Message]:
    """The chat for an episode so far.

    Args:
        init_context: the system prompt (``info["init_context"]`` at reset).
        history: ``(action, assistant_text)`` pairs already played, the
            assistant text as the model saw or produced it (marker included).
        next_action: the action whose outcome is to be predicted next.
    """
    messages: list[Message] = [{"role": "system", "content": init_context}]
    for action, observation in history:
        messages.append({"role": "user", "content": action})
        messages.append({"role": "assistant", "content": observation})
    if next_action is not None:
        messages.append({"role": "user", "content": next_action})
    return messages


def episode_messages(episode) -> list[Message]:
    """The full chat of a recorded :class:`~wmgym.training.trajectories.Episode`.

    The marker goes on the step that won (the terminal step of a won episode).
    """
    history = []
    for i, step in enumerate(episode.steps):
        won_here = episode.won and step.terminated and i == len(episode.steps) - 1
        history.append((step.action, target_text(step.observation, won_here)))
    return build_messages(episode.init_context, history)


@dataclasses.dataclass
class ParsedObservation:
    """A generated assistant turn, read back into env terms."""

    observation: str
    success: bool
    #: Why the text could not be used as it stands (empty, cut off), else ``None``.
    parse_error: str | None = None


def parse_observation(text: str, *, truncated: bool = False) -> ParsedObservation:
    """Read a generated assistant turn: strip it and take the success marker off.

    Like the released Word2World code, the step succeeds when the marker appears
    anywhere in the text, and the observation is what precedes it (a model that
    keeps talking after the marker is cut there).

    Args:
        text: the decoded generation (without the end-of-turn token).
        truncated: the generation hit its token limit before ending the turn.
    """
    marker = SUCCESS_MARKER.strip()
    success = marker in text
    body = text.split(marker, 1)[0].strip() if success else text.strip()
    # Control characters (a small model can emit any byte) would put the text outside the env's
    # observation space; each becomes U+FFFD, the Unicode replacement character.
    body = "".join(c if c.isprintable() or c in "\n\t\r" else "\ufffd" for c in body)
    error = None
    if truncated:
        error = "generation hit max_new_tokens before the end of the turn"
    elif not body and not success:
        error = "empty generation"
    return ParsedObservation(observation=body, success=success, parse_error=error)
