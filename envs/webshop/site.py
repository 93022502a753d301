"""WebShop's site in text mode: pages, their clickables, actions, and the purchase reward.

Pages and their text (WebShop joins a page's visible strings with ``[SEP]``):

- search: ``WebShop [SEP] Instruction: [SEP] <instruction> [SEP] Search``
- results: ``Instruction: [SEP] <instruction> [SEP] Back to Search [SEP] Page N (Total results: M)
  [SEP] < Prev (from page 2) [SEP] Next > [SEP] <ASIN> [SEP] <title> [SEP] <price> ...`` (10 a page)
- item: ``... [SEP] Back to Search [SEP] < Prev [SEP] <option name> [SEP] <value> ... [SEP] <title>
  [SEP] Price: <price> [SEP] Rating: N.A. [SEP] Description [SEP] Features [SEP] Reviews [SEP] Buy Now``
- description / features / reviews: ``... [SEP] Back to Search [SEP] < Prev [SEP] <text>``
- done: WebShop's thank-you page, whose text ends ``Your score (min 0.0, max 1.0) [SEP] <reward>
  [SEP] Reward Details [SEP] None``.

Actions are ``search[keywords]`` (on the search page) and ``click[<clickable>]``
with a clickable of the current page, lowercased as WebShop lowercases them:
its buttons, the ASINs of the results, the item's option values. Anything
else leaves the page as it is (:meth:`Site.act` returns ``False``).

The reward is WebShop's (``engine/goal.py``): ``(attribute matches + option
matches + price within the bound) / (attributes + options + 1)`` times a type
score from the query, the category path and the titles' nouns; matching is
``rapidfuzz.fuzz.token_set_ratio > 85``. Two departures, both because the
originals cannot run here: title nouns are the title's words less function
words (WebShop asks spaCy for NOUN/PROPN tags; in product titles nearly every
capitalised word is tagged PROPN), and synthetic goals' options are matched
by value (WebShop passes ``(name, value)`` pairs to the matcher).
"""

from __future__ import annotations

import json
import re
from typing import Any

from rapidfuzz import fuzz, utils

from wmgym.envs.webshop.search import SearchEngine, page_of

SEP = " [SEP] "
BUY_NOW, NEXT_PAGE, PREV_PAGE, BACK_TO_SEARCH = "Buy Now", "Next >", "< Prev", "Back to Search"
SUB_PAGES = ("Description", "Features", "Reviews")
_ACTION = re.compile(r"(search|click)\[(.*)\]", re.DOTALL)
_COLORS = ("beige", "black", "blue", "brown", "burgundy", "charcoal", "coral", "cream", "gold", "gray", "green",
           "grey", "ivory", "khaki", "lavender", "maroon", "mauve", "navy", "nude", "olive", "orange", "pink",
           "plum", "purple", "red", "rose", "silver", "tan", "teal", "walnut", "white", "wine", "yellow")
_FUNCTION_WORDS = frozenset(
    "a an the and or of for with in on to by from at as is are be this that these those it its your our you "
    "set pack count oz fl inch ft lb new".split())


# ------------------------------------------------------------------ reward
def fuzzy_match(a: str, b: str) -> bool:
    """WebShop's fuzzy equality: token-set ratio over 85 (case and punctuation ignored)."""
    return fuzz.token_set_ratio(a, b, processor=utils.default_process) > 85


def normalize_color(value: str) -> str:
    """The first colour word in an option value, else the value (WebShop's ``normalize_color``)."""
    return next((c for c in _COLORS if c in value), value)


def title_nouns(title: str) -> set[str]:
    """The title's words less function words (stands in for spaCy's noun tags)."""
    return {w for w in re.findall(r"[a-z]+", title.lower()) if w not in _FUNCTION_WORDS and len(w) > 1}


def type_reward(product: dict[str, Any], goal: dict[str, Any]) -> float:
    """1 for the goal's kind of product; 0.5, 0.1 or 0 as the query, category path and title nouns disagree."""
    query_match = product["query"] == goal["query"]
    path_p = {x.strip() for x in product["product_category"].split("›")}
    path_g = {x.strip() for x in goal["product_category"].split("›")}
    category_match = len(path_p & path_g) >= 2
    wanted = title_nouns(goal["name"])
    title_score = len(title_nouns(product["Title"]) & wanted) / len(wanted) if wanted else 0.2
    r_type = 1.0 if (query_match or category_match or title_score > 0.2) else 0.5
    if title_score < 0.1:
        r_type = 0.1
    if title_score == 0.0:
        r_type = 0.0
    return r_type


def purchase_reward(product: dict[str, Any], goal: dict[str, Any], price: float,
                    options: dict[str, str]) -> float:
    """WebShop's reward for buying ``product`` with ``options`` at ``price`` (see module docstring)."""
    text = " ".join([product["Title"], " ".join(product["BulletPoints"]), product["Description"]]).lower()
    attrs = goal["attributes"]
    n_attr = sum(any(fuzzy_match(p, g) for p in product["Attributes"]) or g in text for g in attrs)
    wanted = list(goal["goal_options"].values()) if isinstance(goal["goal_options"], dict) else goal["goal_options"]
    chosen = [normalize_color(o) for o in options.values()]
    n_opt = sum(any(fuzzy_match(p, normalize_color(g)) for p in chosen) for g in wanted)
    r_price = float(price <= goal["price_upper"])
    return (n_attr + n_opt + r_price) / (len(attrs) + len(wanted) + 1) * type_reward(product, goal)


# ------------------------------------------------------------------- pages
class Site:
    """One shopper's session on the site: the page shown and what it was reached with."""

    def __init__(self, products: dict[str, dict[str, Any]], engine: SearchEngine, prices: dict[str, float]):
        self.products, self.engine, self.prices = products, engine, prices
        self.start({"instruction_text": ""})

    def start(self, goal: dict[str, Any]) -> None:
        """Open the search page for ``goal``."""
        self.goal = goal
        self.instruction = goal["instruction_text"]
        self.page, self.keywords, self.page_no, self.results = "search", "", 1, ()
        self.asin: str | None = None
        self.options: dict[str, str] = {}
        self.sub = ""
        self.reward = 0.0
        self.searches: list[str] = []

    # --------------------------------------------------------------- actions
    def clickables(self) -> list[str]:
        """The current page's clickables, lowercased, in page order (WebShop's ``text_to_clickable`` keys)."""
        if self.page == "search":
            return ["search"]
        if self.page == "results":
            buttons = [BACK_TO_SEARCH] + ([PREV_PAGE] if self.page_no > 1 else []) + [NEXT_PAGE]
            return [b.lower() for b in buttons] + [a.lower() for a in page_of(self.results, self.page_no)]
        if self.page == "item":
            buttons = [BACK_TO_SEARCH, PREV_PAGE, *SUB_PAGES, BUY_NOW]
            values = [v for vs in self.product["options"].values() for v in vs]
            return [b.lower() for b in buttons] + list(dict.fromkeys(values))
        if self.page == "sub":
            return [BACK_TO_SEARCH.lower(), PREV_PAGE.lower()]
        return []

    @property
    def has_search_bar(self) -> bool:
        return self.page == "search"

    @property
    def product(self) -> dict[str, Any]:
        return self.products[self.asin]

    def act(self, action: str) -> bool:
        """Play ``action``; ``False`` (and the page unchanged) when the page offers no such action."""
        m = _ACTION.fullmatch(action.strip())
        if m is None:
            return False
        kind, arg = m.group(1), m.group(2).strip().lower()
        if kind == "search":
            if not self.has_search_bar or not arg.isascii() or not arg.strip():
                return False
            self._search(" ".join(arg.split()), 1)
            return True
        if arg == "search" or arg not in self.clickables():
            return False
        if arg == BUY_NOW.lower():
            self.reward = purchase_reward(self.product, self.goal, self.prices[self.asin], self.options)
            self.page = "done"
        elif arg == BACK_TO_SEARCH.lower():
            self._to_search()
        elif arg == NEXT_PAGE.lower():
            self._search(self.keywords, self.page_no + 1)
        elif arg == PREV_PAGE.lower():
            if self.page == "results":
                self._search(self.keywords, self.page_no - 1)
            elif self.page == "sub":
                self.page = "item"
            else:
                self._search(self.keywords, self.page_no)
        elif self.page == "results":
            self.asin, self.page = arg.upper(), "item"
            if self.asin not in self.products:  # official ASINs may carry lowercase letters
                self.asin = next(a for a in page_of(self.results, self.page_no) if a.lower() == arg)
        elif arg in (s.lower() for s in SUB_PAGES):
            self.page, self.sub = "sub", arg
        else:  # an option value: the last option group offering it wins, as in WebShop's clickable map
            group = [name for name, values in self.product["options"].items() if arg in values][-1]
            self.options[group] = arg
        return True

    def _to_search(self) -> None:
        self.page, self.keywords, self.page_no, self.results = "search", "", 1, ()
        self.asin, self.options = None, {}

    def _search(self, keywords: str, page: int) -> None:
        if page == 1 and self.page == "search":
            self.searches.append(keywords)
        self.page, self.keywords, self.page_no = "results", keywords, page
        self.results = self.engine.search(keywords)
        self.asin, self.options = None, {}

    # ------------------------------------------------------------------ text
    def text(self) -> str:
        """The page in WebShop's simple text mode."""
        head = ["Instruction:", self.instruction, BACK_TO_SEARCH]
        if self.page == "search":
            parts = ["WebShop", "Instruction:", self.instruction, "Search"]
        elif self.page == "results":
            parts = head + [f"Page {self.page_no} (Total results: {len(self.results)})"]
            parts += ([PREV_PAGE] if self.page_no > 1 else []) + [NEXT_PAGE]
            for asin in page_of(self.results, self.page_no):
                product = self.products[asin]
                parts += [asin, product["Title"], product["Price"]]
        elif self.page == "item":
            product = self.product
            parts = head + [PREV_PAGE]
            for name, values in product["options"].items():
                parts += [name, *values]
            parts += [product["Title"], f"Price: {product['Price']}", f"Rating: {product['Rating']}", *SUB_PAGES,
                      BUY_NOW]
        elif self.page == "sub":
            parts = head + [PREV_PAGE] + self._sub_text()
        else:
            parts = ["Thank you for shopping with us!", "Your code:", "None", "(Paste it in your MTurk interface.)",
                     "Purchased", "asin", self.asin, "options", json.dumps(self.options, sort_keys=True),
                     "attrs", "None", "category", "None", "query", "None", "product category", "None",
                     "Target", "asin", "options", "attrs", "price upper", "instuction text", "category",
                     "product category", "query", "Goal", "None", "Reward",
                     "Your score (min 0.0, max 1.0)", str(self.reward), "Reward Details", "None"]
        return SEP.join(p.strip() for p in parts if p and p.strip())

    def _sub_text(self) -> list[str]:
        product = self.product
        if self.sub == "description":
            return [product["Description"]]
        if self.sub == "features":
            return list(product["BulletPoints"])
        return [part for r in product["Reviews"]
                for part in (f'"{r.get("title", "")}"', str(r.get("score", "")), r.get("body", ""))]
