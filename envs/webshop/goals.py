"""WebShop's goals: synthetic ones made from each product's instruction, or the human ones, and the splits.

A synthetic goal is WebShop's: the product's instruction, then ``with <option>:
<value>, and ...`` for one value of each of its options, then ``, and price
lower than <U> dollars`` with ``U`` one of the next four multiples of ten above
the product's price (the larger of two drawn). A human goal takes the
instruction, attributes and option values a person wrote for the product, and
the same price clause.

Splits:

- Generated catalog: **disjoint by product.** 200 products (a seeded draw)
  are the test split's targets, one goal each (one option combination); the
  other products are the train split's targets, up to four option
  combinations each. Every product stays in the catalog, so a test target is
  searchable (and a near-duplicate of train targets), but no train goal asks
  for it.
- Official files: **disjoint by goal**, as WebShop splits its goals: the goals
  are shuffled with a fixed seed and the first 200 (at most half) are the test
  split.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

#: Candidate price bounds (WebShop's ``PRICE_RANGE``).
PRICE_STEPS = [10.0 * i for i in range(1, 100)]
#: Goals in the test split.
TEST_GOALS = 200
#: Option combinations kept per train product of the generated catalog.
TRAIN_COMBOS_PER_PRODUCT = 4


def product_prices(products: list[dict[str, Any]], rng: np.random.Generator) -> dict[str, float]:
    """The price each product is bought at: its price, or a draw within its price range (as WebShop)."""
    prices = {}
    for p in products:
        pricing = p["pricing"]
        prices[p["asin"]] = float(pricing[0]) if len(pricing) == 1 else round(float(rng.uniform(*pricing[:2])), 2)
    return prices


def _price_clause(price: float, rng: np.random.Generator) -> tuple[float, str]:
    steps = [p for p in PRICE_STEPS if p > price][:4]
    if len(steps) < 2:
        return 1000000.0, ""
    upper = float(max(rng.choice(steps, size=2, replace=False)))
    return upper, f", and price lower than {upper:.2f} dollars"


def _goal(product: dict[str, Any], instruction: str, attributes: list[str], options: dict[str, str] | list[str],
          price: float, rng: np.random.Generator) -> dict[str, Any]:
    upper, price_text = _price_clause(price, rng)
    if isinstance(options, dict):
        option_text = ", and ".join(f"{k}: {v}" for k, v in options.items())
        instruction = instruction + (f" with {option_text}" if option_text else "")
    return {"asin": product["asin"], "category": product["category"], "query": product["query"],
            "name": product["Title"], "product_category": product["product_category"],
            "instruction_text": instruction.strip(".") + price_text, "attributes": list(attributes),
            "price_upper": upper, "goal_options": options}


def synthetic_goals(product: dict[str, Any], price: float, rng: np.random.Generator,
                    limit: int | None = None) -> list[dict[str, Any]]:
    """Goals for one product: its instruction with each combination of option values (``limit``: a draw of them)."""
    if not product.get("instruction_text") or not product.get("instruction_attributes"):
        return []
    names = sorted(product["options"])
    combos = list(itertools.product(*(product["options"][n] for n in names)))
    if limit is not None and len(combos) > limit:
        combos = [combos[i] for i in sorted(rng.choice(len(combos), size=limit, replace=False))]
    return [_goal(product, product["instruction_text"], product["instruction_attributes"], dict(zip(names, combo)),
                  price, rng) for combo in combos]


def human_goals(product: dict[str, Any], price: float, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Goals from the human instructions of one product (those without attributes are skipped, as WebShop)."""
    goals = []
    for entry in product.get("instructions") or []:
        if entry.get("instruction_attributes"):
            goals.append(_goal(product, entry["instruction"], entry["instruction_attributes"],
                               list(entry.get("instruction_options") or []), price, rng))
    return goals


def generated_splits(products: list[dict[str, Any]], prices: dict[str, float],
                     seed: int) -> dict[str, list[dict[str, Any]]]:
    """Train / test goals of the generated catalog, disjoint by target product (see module docstring)."""
    rng = np.random.default_rng(seed + 1)
    order = rng.permutation(len(products))
    test_ids = set(int(i) for i in order[:TEST_GOALS])
    train, test = [], []
    for i in order:
        product = products[int(i)]
        if int(i) in test_ids:
            test += synthetic_goals(product, prices[product["asin"]], rng, limit=1)
        else:
            train += synthetic_goals(product, prices[product["asin"]], rng, limit=TRAIN_COMBOS_PER_PRODUCT)
    return {"train": train, "test": test}


def official_splits(products: list[dict[str, Any]], prices: dict[str, float], human: bool,
                    seed: int) -> dict[str, list[dict[str, Any]]]:
    """Train / test goals of official files, disjoint by goal (see module docstring)."""
    rng = np.random.default_rng(seed + 1)
    goals = []
    for product in products:
        price = prices[product["asin"]]
        goals += human_goals(product, price, rng) if human else synthetic_goals(product, price, rng)
    if not goals:
        raise ValueError("the WebShop data files give no goals: products need an instruction and "
                         "instruction_attributes (items_ins_v2) or human instructions (items_human_ins)")
    goals = [goals[int(i)] for i in rng.permutation(len(goals))]
    n_test = max(1, min(TEST_GOALS, len(goals) // 2))
    # A file with a single goal serves it in both splits (an empty split could not be reset).
    return {"train": goals[n_test:] or goals[:n_test], "test": goals[:n_test]}
