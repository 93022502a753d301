"""The published figures of the Word2World 7B world models, which the benchmark reports print beside ours."""

from __future__ import annotations

#: Published single-step EM (%) of the Word2World 7B SFT world models.
PUBLISHED_EM: dict[str, float] = {"ALFWorld-v0": 99.87, "SciWorld-v0": 98.60, "TextWorld-v0": 70.60,
                                  "WebShop-v0": 79.05}
#: Published consistency ratios of the Word2World 7B world models (Table 2).
PUBLISHED_CR: dict[str, float] = {"ALFWorld-v0": 0.96, "SciWorld-v0": 0.91, "TextWorld-v0": 0.92, "WebShop-v0": 0.67}
