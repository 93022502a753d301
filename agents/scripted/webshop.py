"""An observation-only scripted agent for WebShop-v0.

It reads the instruction off the search page (the product words, the ``with
<option>: <value>, and ...`` clause and the price bound), searches the product
words, and on the results page opens the product whose title shares most of
those words and whose price is within the bound (unvisited ones first). On the
item page it clicks each wanted option value the page lists, then buys; a product that lacks one of
them sends it back to the next best (up to three products). Sub
pages send it back; an empty result list sends it back to search. Everything
comes from the page text (the ``format="word2world"`` action block is ignored),
so it plays a twin's pages too. It does not read descriptions, so a
near-duplicate that lacks an attribute the title does not name can fool it.
A buy that an :class:`~wmgym.wrappers.ActionVerifier` blocked (``info["verified"]
is False``: the twin predicts no success, the real page is still the item) sends
it back to the results for the next best product.
"""

from __future__ import annotations

import re
from typing import Any

from wmgym.agents.base import ScriptedAgent

SEP = " [SEP] "
_STOP = frozenset("i a an the and or of for with in on to that is it me my am im i'm i'd like need want looking "
                  "find get buy searching".split())
_PRICE = re.compile(r"\$(\d+(?:\.\d+)?)")
#: Products opened before the agent buys the one it is on even without every wanted option value.
_MAX_VISITS = 3


def parse_instruction(instruction: str) -> dict[str, Any]:
    """``{"terms", "options", "price_upper"}`` of a WebShop instruction."""
    text = instruction.strip()
    price = re.search(r",? and price lower than (\d+(?:\.\d+)?) dollars", text)
    if price:
        text = text[: price.start()]
    options: dict[str, str] = {}
    m = re.search(r" with ([^,]*?: .*)$", text)
    if m:
        for part in re.split(r", and ", m.group(1)):
            name, _, value = part.partition(": ")
            if value:
                options[name.strip()] = value.strip()
        text = text[: m.start()]
    return {"terms": text.strip(), "options": options,
            "price_upper": float(price.group(1)) if price else float("inf")}


def words(text: str) -> set[str]:
    """Content words (lowercase, no function words)."""
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP}


def page_parts(observation: str) -> list[str]:
    """The page's strings (the Word2World action block cut off)."""
    return observation.split("\n\nYour admissible actions")[0].split(SEP)


def results(parts: list[str]) -> list[tuple[str, str, float]]:
    """``(asin, title, lowest price)`` of each product on a results page."""
    start = next(i for i, p in enumerate(parts) if p.startswith("Page ") and "(Total results:" in p)
    rest = [p for p in parts[start + 1:] if p not in ("< Prev", "Next >")]
    out = []
    for i in range(0, len(rest) - 2, 3):
        price = _PRICE.search(rest[i + 2])
        out.append((rest[i], rest[i + 1], float(price.group(1)) if price else float("inf")))
    return out


class WebShopAgent(ScriptedAgent):
    """Scripted WebShop shopper (see module docstring)."""

    name = "scripted"

    def start(self, observation: str, info: dict[str, Any]) -> None:
        parts = page_parts(observation)
        instruction = parts[parts.index("Instruction:") + 1] if "Instruction:" in parts else info.get("task", "")
        self.goal = parse_instruction(instruction)
        self.searches = 0
        self.visited: set[str] = set()
        self.clicked: set[str] = set()
        self.rejected = False

    def update(self, action: str | None, observation: str, info: dict[str, Any]) -> None:
        if info.get("verified") is False:  # the verifier kept the buy from the real env; the page shown is the twin's
            self.rejected = True
            return
        if not action:
            return
        if action.startswith("search["):
            self.searches += 1
        elif action.startswith("click["):
            value = action[6:-1]
            if re.fullmatch(r"[a-z0-9]{10}", value):
                self.visited.add(value)
                self.clicked = set()
            else:
                self.clicked.add(value)

    def decide(self, observation: str, info: dict[str, Any]) -> str:
        if self.rejected:  # still on the blocked product's page: back to the results, to the next best product
            self.rejected = False
            return "click[< prev]"
        parts = page_parts(observation)
        terms = self.goal["terms"]
        if parts and parts[0] == "WebShop":
            return f"search[{terms if self.searches == 0 else ' '.join(sorted(words(terms)))}]"
        if any(p.startswith("Page ") and "(Total results:" in p for p in parts):
            return self._choose(parts, terms)
        if "Buy Now" in parts and any(p.startswith("Price: ") for p in parts):
            return self._options(parts)
        if "< Prev" in parts:
            return "click[< prev]"
        return "click[back to search]"

    def _choose(self, parts: list[str], terms: str) -> str:
        wanted = words(terms)
        best, best_score = None, None
        for rank, (asin, title, price) in enumerate(results(parts)):
            score = (asin.lower() not in self.visited, price <= self.goal["price_upper"],
                     len(wanted & words(title)), -rank)
            if best_score is None or score > best_score:
                best, best_score = asin, score
        if best is None or (best_score[0] is False and "Next >" in parts):
            return "click[next >]" if best is not None else "click[back to search]"
        return f"click[{best.lower()}]"

    def _options(self, parts: list[str]) -> str:
        end = next(i for i, p in enumerate(parts) if p.startswith("Price: "))
        # A twin's page may lack parts a real page always has: read the options from whatever precedes the price.
        start = parts.index("< Prev") + 1 if "< Prev" in parts[:end] else 0
        listed = {p.lower() for p in parts[start:end]}
        wanted = [v.lower() for v in self.goal["options"].values()]
        if any(v not in listed for v in wanted) and len(self.visited) < _MAX_VISITS:
            return "click[< prev]"  # this product lacks a wanted option value: try the next one
        for value in self.goal["options"].values():
            value = value.lower()
            if value in listed and value not in self.clicked:
                return f"click[{value}]"
        return "click[buy now]"
