"""Packaging: the repository root *is* the ``wmgym`` package (``package_dir`` maps ``wmgym`` to ``.``), so
top-level folders install as ``wmgym.envs``, ``wmgym.training``, ... and nothing generic lands in
site-packages. Sub-packages (any folder with an ``__init__.py``) are found here, not listed by hand, so a
new env folder ships without touching packaging. Everything else is in ``setup.cfg``.
"""

from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).resolve().parent
SUBPACKAGES = find_packages(where=str(ROOT), exclude=["tests", "tests.*", "docs", "docs.*", "build", "build.*"])

setup(package_dir={"wmgym": "."}, packages=["wmgym"] + ["wmgym." + p for p in SUBPACKAGES])
