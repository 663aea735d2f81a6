"""Named exceptions and warnings.

``CxValueError`` is the base; ``InputError`` (bad data or parameters) maps to exit
code 2, anything else to exit code 1.
"""

from __future__ import annotations


class CxValueError(Exception):
    """Base class of every error cxvalue raises on purpose."""

    exit_code = 1


class InputError(CxValueError):
    """The input data or the parameters are invalid; the message says what and where.

    Exit code 2.
    """

    exit_code = 2


class ParameterError(InputError):
    """A parameter is unknown, of the wrong type, or impossible."""


class ContractError(InputError):
    """A table breaks the data contract (missing table/column, bad type, bad values)."""


class ModelError(CxValueError):
    """A model could not be fitted or gave an unusable answer."""


class NotebookError(CxValueError):
    """A notebook failed while executing; the message names notebook and cell."""


class StatisticalWarning(UserWarning):
    """A statistical caveat (small group, extrapolation): shown in the report, not a crash."""
