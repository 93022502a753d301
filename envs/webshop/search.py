"""WebShop's search engine: BM25 (``rank_bm25.BM25Okapi``) over each product's text.

WebShop indexes, per product, the lowercased title, description, first bullet
point and option values (``search_engine/convert_product_file_format.py``) in
Lucene and returns the top 50 hits. Here the same text goes into a BM25Okapi
index built once per catalog; a search scores the catalog and keeps the best
50 products with a positive score (Lucene returns only documents that match a
term), ties broken by catalog order. Results are remembered per query.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from rank_bm25 import BM25Okapi

#: Hits a search returns (WebShop's ``SEARCH_RETURN_N``).
SEARCH_RETURN_N = 50
#: Products per results page (WebShop's ``PRODUCT_WINDOW``).
PRODUCT_WINDOW = 10

_TOKEN = re.compile(r"[a-z0-9]+")
#: Queries whose results are remembered per engine.
_MEMO_SIZE = 4096


def tokenize(text: str) -> list[str]:
    """Lowercase word and number tokens."""
    return _TOKEN.findall(text.lower())


def product_text(product: dict[str, Any]) -> str:
    """What WebShop indexes for a product: title, description, first bullet point, option values."""
    bullets = product.get("BulletPoints") or [""]
    options = " ".join(v for values in product.get("options", {}).values() for v in values)
    return " ".join([product.get("Title", ""), product.get("Description", ""), bullets[0] or "", options]).lower()


class SearchEngine:
    """A BM25 index over a product list; ``search(keywords)`` gives ASINs, best first."""

    def __init__(self, products: list[dict[str, Any]]):
        self.asins = [p["asin"] for p in products]
        corpus = [tokenize(product_text(p)) or ["_"] for p in products]
        self.bm25 = BM25Okapi(corpus)
        # A dict, not functools.lru_cache, so the engine (and an env holding it) pickles.
        self._memo: dict[str, tuple[str, ...]] = {}

    def search(self, keywords: str) -> tuple[str, ...]:
        """The ASINs of the best :data:`SEARCH_RETURN_N` products for ``keywords`` (empty: no term matches)."""
        if keywords not in self._memo:
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            self._memo[keywords] = self._search(keywords)
        return self._memo[keywords]

    def _search(self, keywords: str) -> tuple[str, ...]:
        tokens = tokenize(keywords)
        if not tokens:
            return ()
        scores = self.bm25.get_scores(tokens)
        order = np.lexsort((np.arange(len(scores)), -scores))[:SEARCH_RETURN_N]
        return tuple(self.asins[i] for i in order if scores[i] > 0)


def page_of(results: tuple[str, ...], page: int) -> tuple[str, ...]:
    """The ASINs shown on results page ``page`` (1-based)."""
    return results[(page - 1) * PRODUCT_WINDOW: page * PRODUCT_WINDOW]
