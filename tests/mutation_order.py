"""A pytest plugin for the mutation run only (``pyproject.toml`` ``[tool.mutmut]`` loads it with ``-p``).

mutmut runs each mutant against the tests that reached the mutated function, in no particular order,
stopping at the first failure. The hand-worked tests of ``tests/test_mutants_*.py`` take milliseconds;
several others first build and fit a synthetic world. Running the former first lets a mutant they kill
stop there; a mutant that survives them still meets every test that reached it.
"""

from __future__ import annotations


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: 0 if item.nodeid.split("::")[0].rsplit("/", 1)[-1].startswith("test_mutants_") else 1)
