"""What the tiny-model tests share: ALFWorld lines in the game's own words (entity phrases to tokenise and copy)."""

from __future__ import annotations

import pytest

ALF_LINES_TEXT = [
    "- On the countertop 1, you see a candle 2, a candle 1, and a soapbar 1.",
    "- On the toilet 1, you see a soapbar 2, a spraybottle 1, and a toiletpaper 1.",
    "- The cabinet 1 is closed. In it, you see a tissuebox 1.",
    "You arrive at countertop 1. On the countertop 1, you see a candle 2, a candle 1, and a soapbar 1.",
    "You pick up the candle 2 from the countertop 1.",
]


@pytest.fixture
def alf_lines() -> list[str]:
    return list(ALF_LINES_TEXT)
