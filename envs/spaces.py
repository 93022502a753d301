"""Text spaces that accept ordinary prose.

Gymnasium's :class:`~gymnasium.spaces.Text` checks every character against a
finite charset. Game text contains newlines, punctuation and now and then a
non-ASCII character (ScienceWorld prints degrees, WebShop product titles carry
accents), so a fixed ASCII charset would reject real observations. ``ProseText``
samples from printable ASCII but *accepts* any string of printable characters
and whitespace.
"""

from __future__ import annotations

import string
from typing import Any

from gymnasium.spaces import Text

#: What ``sample()`` draws from: printable ASCII without the vertical controls.
PROSE_CHARSET = "".join(c for c in string.printable if c not in "\x0b\x0c\r")

#: Longest action the envs accept; longer ones are answered as malformed.
MAX_ACTION_LENGTH = 512
#: Longest observation a space accepts (long room listings, product pages).
MAX_OBSERVATION_LENGTH = 1 << 17


class ProseText(Text):
    """A ``Text`` space whose ``contains`` accepts any printable prose."""

    def __init__(self, max_length: int, *, min_length: int = 0, seed: Any = None):
        super().__init__(max_length=max_length, min_length=min_length, charset=PROSE_CHARSET, seed=seed)

    def contains(self, x: Any) -> bool:
        if not isinstance(x, str):
            return False
        if not self.min_length <= len(x) <= self.max_length:
            return False
        return all(c.isprintable() or c in "\n\t\r" for c in x)

    def __repr__(self) -> str:
        return f"ProseText({self.min_length}, {self.max_length})"

    def __eq__(self, other: Any) -> bool:
        return (
            isinstance(other, ProseText)
            and self.min_length == other.min_length
            and self.max_length == other.max_length
        )


def action_space() -> ProseText:
    return ProseText(MAX_ACTION_LENGTH)


def observation_space() -> ProseText:
    return ProseText(MAX_OBSERVATION_LENGTH)
