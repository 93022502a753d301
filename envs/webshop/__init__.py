"""WebShop-v0: WebShop's text-mode shopping site over a generated catalog, or over WebShop's official files.

Modules: :mod:`~wmgym.envs.webshop.catalog` (the generated catalog and the
official files, in WebShop's product schema), :mod:`~wmgym.envs.webshop.search`
(BM25 search), :mod:`~wmgym.envs.webshop.goals` (synthetic and human goals, the
splits), :mod:`~wmgym.envs.webshop.site` (pages, clickables, the purchase
reward) and :mod:`~wmgym.envs.webshop.env` (the Gymnasium env). Nothing heavy
is imported here.
"""

from __future__ import annotations

__all__ = ["WebShopEnv"]


def __getattr__(name: str):
    if name == "WebShopEnv":
        from wmgym.envs.webshop.env import WebShopEnv

        return WebShopEnv
    raise AttributeError(name)
