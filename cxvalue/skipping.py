"""An analysis the data cannot support is skipped, not crashed (STYLE, round 1).

One mechanism for every analysis:

* at its start an analysis checks its inputs with :func:`require` (a table, a column, a
  metric, customers in each group, events); a failed check raises :class:`Skip` carrying a
  plain sentence for a CFO or CX analyst: what the analysis needs and what to add;
* :func:`skippable` on a ``fit`` method turns that into a result of the usual shape: it sets
  ``skipped_`` (the reason, or None), adds the reason to ``warnings_``, and calls the
  analysis's ``_empty()`` so every fitted attribute exists (empty; what the fit counted
  before the check failed may stay); ``results()`` reports ``"skipped": skipped_``;
* :func:`skippable_frame` on a function that builds an analysis's input table returns an
  empty table of its usual columns with the reason in ``attrs["skipped"]``; a
  :func:`skippable` ``fit`` handed such a table is skipped for that reason.

:func:`skipped_blocks` gathers the reasons for ``results.json["skipped"]`` (a block's
dotted path -> its reason). Only data shapes skip: a programming error still raises.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import pandas as pd

__all__ = ["Skip", "require", "skippable", "skippable_frame", "reason", "skipped_blocks"]


class Skip(Exception):
    """The data cannot support an analysis; ``str(skip)`` is the plain reason."""


def require(ok: Any, why: str) -> None:
    """Raise :class:`Skip` with ``why`` unless ``ok``."""
    if not ok:
        raise Skip(why)


def reason(obj: Any) -> str | None:
    """The skipped reason of an analysis (``skipped_``), a results block (``"skipped"``) or an
    input table (``attrs["skipped"]``); None when it was not skipped."""
    if isinstance(obj, pd.DataFrame):
        return obj.attrs.get("skipped")
    if isinstance(obj, dict):
        return obj.get("skipped")
    return getattr(obj, "skipped_", None)


def skippable(fit: Callable) -> Callable:
    """Decorate ``fit(self, ...)``: a :class:`Skip` raised inside (or a skipped input table
    among the arguments) leaves ``self.skipped_`` = the reason and ``self._empty()`` called."""

    @functools.wraps(fit)
    def wrapper(self, *args, **kwargs):
        for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]:
            delattr(self, name)  # a refit starts from nothing fitted
        self.skipped_: str | None = None
        self.warnings_: list[str] = []
        try:
            for arg in (*args, *kwargs.values()):
                why = reason(arg) if isinstance(arg, pd.DataFrame) else None
                require(why is None, why)
            return fit(self, *args, **kwargs)
        except Skip as skip:
            self.skipped_ = str(skip)
            self.warnings_.append(self.skipped_)
            self._empty()
            return self

    return wrapper


def skippable_frame(columns: list[str], index: str | None = None) -> Callable:
    """Decorate a function returning an analysis's input table: a :class:`Skip` raised inside
    returns an empty table of ``columns`` (index named ``index``) with ``attrs["skipped"]``."""

    def decorate(build: Callable) -> Callable:
        @functools.wraps(build)
        def wrapper(*args, **kwargs):
            try:
                return build(*args, **kwargs)
            except Skip as skip:
                out = pd.DataFrame(columns=columns, index=pd.Index([], name=index) if index else None)
                out.attrs["skipped"] = str(skip)
                return out

        return wrapper

    return decorate


def skipped_blocks(blocks: dict[str, Any]) -> dict[str, str]:
    """``{dotted path: reason}`` of the skipped ones among ``{dotted path: analysis, results
    block or input table}``, for ``results.json["skipped"]``."""
    return {path: why for path, obj in blocks.items() if (why := reason(obj))}
