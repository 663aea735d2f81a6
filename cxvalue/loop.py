"""Former home of four analyses, kept so that ``from cxvalue import loop`` still works.

Each analysis now lives in a module named for it:

* :mod:`cxvalue.closing_the_loop`: :class:`ClosingTheLoop`, :func:`complaint_history`;
* :mod:`cxvalue.transitions`: :class:`Transitions`, :func:`next_responses`, :func:`protect_cells`,
  :func:`derivable_cells`;
* :mod:`cxvalue.who_answered`: :class:`WhoAnswered`, :func:`response_base`;
* :mod:`cxvalue.referrals`: :func:`referred_customers`.
"""

from cxvalue.closing_the_loop import (COMPLAINT_COLUMNS, LOOP_INTERVALS, SATISFACTION, ClosingTheLoop,  # noqa: F401
                                      _discounted_years, complaint_history, loop_person_periods)
from cxvalue.referrals import referred_customers
from cxvalue.transitions import Transitions, _published_sets, derivable_cells, next_responses, protect_cells  # noqa: F401
from cxvalue.who_answered import WhoAnswered, _std_diff, _weighted_mean_var, response_base  # noqa: F401

__all__ = ["referred_customers", "complaint_history", "loop_person_periods", "ClosingTheLoop", "next_responses", "Transitions",
           "protect_cells", "derivable_cells", "response_base", "WhoAnswered", "LOOP_INTERVALS"]
