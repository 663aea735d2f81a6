"""cxvalue: prove, in money, what customer experience is worth.

Data flows one way: config -> data -> history -> linkage -> (value -> business case) ->
charts / report. In Python, :func:`analyse` runs that chain on a source and returns the
:class:`~cxvalue.pipeline.Analysis`; ``cxvalue run`` computes the same analysis once, then
executes the notebooks in ``notebooks/`` with papermill to present it.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxvalue.exceptions import (ContractError, CxValueError, InputError, ModelError, NotebookError,
                                ParameterError, StatisticalWarning)

try:
    __version__ = version("cxvalue")
except PackageNotFoundError:  # pragma: no cover - running from a plain checkout
    __version__ = "0+unknown"

if TYPE_CHECKING:
    from cxvalue.pipeline import Analysis


def analyse(source: Any = "demo", config: str | Path | dict | None = None, **params: Any) -> "Analysis":
    """Analyse a data source as ``cxvalue run`` does, for use in Python or Jupyter.

    Checks ``source`` against the data contract, builds the customer histories, fits the
    revenue, cost-to-serve and churn models, weights the respondents to today's customers
    (``who_answered``, ``response_weights``) and prices the business case; the report's other
    analyses (``scorecard``, ``goal_paths``, ``maturity``, ``key_drivers``, ``journeys``,
    ``closing_the_loop``, ``failure_demand``, ``transitions``, ``referred``) are attributes
    computed the first time they are read. Each part shows itself in Jupyter.

    Parameters
    ----------
    source : a folder of CSV/Parquet tables, a DuckDB file, an Ibis URL or backend, a dict of
        DataFrames, or ``"demo"`` (the bundled synthetic world).
    config : a YAML parameter file (as ``--config``).
    **params : any parameter of ``cxvalue params``, e.g. ``as_of="2025-09-30"``,
        ``gross_margin=0.55``, ``scenario={"detractor_to_passive": 0.25}`` or, as in the
        notebooks, ``scenario__detractor_to_passive=0.25``.

    Raises
    ------
    InputError : the data or a parameter is invalid (what ``cxvalue run`` exits 2 for).
    """
    from cxvalue.config import load_params
    from cxvalue.pipeline import analyse as run_chain

    overrides = {name.replace("__", "."): value for name, value in params.items()}
    return run_chain(source, load_params(config, overrides))


def __getattr__(name: str) -> Any:
    if name == "Analysis":
        from cxvalue.pipeline import Analysis

        return Analysis
    raise AttributeError(f"module 'cxvalue' has no attribute {name!r}")


__all__ = [
    "analyse", "Analysis", "__version__", "CxValueError", "InputError", "ParameterError", "ContractError", "ModelError",
    "NotebookError", "StatisticalWarning",
]
