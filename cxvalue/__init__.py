"""cxvalue: prove, in money, what customer experience is worth.

Data flows one way: config -> data -> history -> linkage -> (value -> business case) ->
charts / report. The notebooks in ``notebooks/`` call these modules; ``cxvalue run``
executes the notebooks with papermill.
"""

from importlib.metadata import PackageNotFoundError, version

from cxvalue.exceptions import (ContractError, CxValueError, InputError, ModelError, NotebookError,
                                ParameterError, StatisticalWarning)

try:
    __version__ = version("cxvalue")
except PackageNotFoundError:  # pragma: no cover - running from a plain checkout
    __version__ = "0+unknown"

__all__ = [
    "__version__", "CxValueError", "InputError", "ParameterError", "ContractError", "ModelError",
    "NotebookError", "StatisticalWarning",
]
