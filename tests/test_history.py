"""Customer history computed by hand (definitions: ``cxvalue/history.py`` module docstring).

One hand-made world of seven customers, ``as_of`` 2024-12-31, ``window_months`` 12
unless a test says otherwise, contact prices set explicitly. For every customer in the
history every column is written down below, with the day arithmetic in comments.

Windows are half-open in days: pre ``[max(start, r - 12 months), r)``,
post ``[r, min(r + 12 months, end + 1 day, as_of + 1 day))``; exposures are days / 365.25.
2024 is a leap year (2024-02-29 exists); 2023 is not.
"""

from __future__ import annotations

import pandas as pd
import pytest

from cxvalue import config, data, history

try:
    from tests.fixtures.sources import write_csv
except ImportError:  # pragma: no cover - when tests/ itself is on sys.path
    from fixtures.sources import write_csv

pytestmark = [
    pytest.mark.filterwarnings("ignore:fetch_arrow_table:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The 'future.infer_string' option"),
]

AS_OF = "2024-12-31"
Y = 365.25
CONTACT_COST = {"phone": 6.0, "email": 3.5, "chat": 2.5, "web": 0.5, "store": 8.0, "other": 4.0}


def params(**overrides):
    return config.load_params(overrides={"as_of": AS_OF, "window_months": 12, "contact_cost": CONTACT_COST,
                                         **overrides})


# --------------------------------------------------------------------------- the world

CUSTOMERS = [
    # A: several responses; refunds; a contact with its own cost, one by channel, one unknown channel
    {"customer_id": "A", "start_date": "2023-03-01", "end_date": "", "referred_by": "", "plan": "basic"},
    # B: long tenure; transactions and contacts exactly on the window edges
    {"customer_id": "B", "start_date": "2020-01-01", "end_date": "", "referred_by": "A", "plan": "pro"},
    # C: responds on its first day; churns inside the post window
    {"customer_id": "C", "start_date": "2024-01-10", "end_date": "2024-07-20", "referred_by": "A", "plan": "basic"},
    # D: no transactions and no contacts at all
    {"customer_id": "D", "start_date": "2022-05-01", "end_date": "", "referred_by": "E", "plan": "pro"},
    # E: only a journey survey -> not in the history (but it referred D)
    {"customer_id": "E", "start_date": "2023-01-01", "end_date": "", "referred_by": "", "plan": "basic"},
    # G: end_date after as_of (corrected: still a customer); referred_by unknown (corrected: empty)
    {"customer_id": "G", "start_date": "2023-01-01", "end_date": "2025-03-01", "referred_by": "ZZZ", "plan": "basic"},
    # H: two relationship responses on the same day; churns on as_of itself
    {"customer_id": "H", "start_date": "2023-01-01", "end_date": "2024-12-31", "referred_by": "D", "plan": "pro"},
]

RESPONSES = [
    {"customer_id": "A", "response_date": "2024-02-01", "nps": "2", "csat": "1", "journey": "onboarding"},
    {"customer_id": "A", "response_date": "2024-03-01", "nps": "9", "csat": "5", "journey": ""},
    {"customer_id": "A", "response_date": "2024-09-01", "nps": "4", "csat": "2", "journey": ""},
    {"customer_id": "A", "response_date": "2025-01-05", "nps": "10", "csat": "5", "journey": ""},  # after as_of
    {"customer_id": "B", "response_date": "2023-06-15", "nps": "7", "csat": "3", "journey": ""},
    {"customer_id": "C", "response_date": "2024-01-10", "nps": "6", "csat": "", "journey": ""},
    {"customer_id": "C", "response_date": "2024-02-10", "nps": "", "csat": "2", "journey": ""},
    {"customer_id": "D", "response_date": "2024-05-01", "nps": "10", "csat": "4", "journey": ""},
    {"customer_id": "E", "response_date": "2024-04-01", "nps": "3", "csat": "1", "journey": "billing"},
    {"customer_id": "G", "response_date": "2024-10-01", "nps": "8", "csat": "", "journey": ""},
    {"customer_id": "H", "response_date": "2024-06-01", "nps": "9", "csat": "4", "journey": ""},
    {"customer_id": "H", "response_date": "2024-06-01", "nps": "5", "csat": "5", "journey": ""},
]

TRANSACTIONS = [
    {"customer_id": "A", "date": "2023-03-01", "amount": "100", "cost": "40"},   # first day = pre start
    {"customer_id": "A", "date": "2024-02-29", "amount": "50", "cost": "20"},    # last pre day
    {"customer_id": "A", "date": "2024-03-01", "amount": "200", "cost": "80"},   # on the response day: post
    {"customer_id": "A", "date": "2024-04-01", "amount": "-30", "cost": ""},     # a refund
    {"customer_id": "A", "date": "2024-12-31", "amount": "10", "cost": "4"},     # on as_of: last post day
    {"customer_id": "B", "date": "2022-06-14", "amount": "1000", "cost": "500"},  # one day before pre start
    {"customer_id": "B", "date": "2022-06-15", "amount": "40", "cost": "16"},    # = r - 12 months: pre start
    {"customer_id": "B", "date": "2024-06-14", "amount": "60", "cost": "24"},    # last post day
    {"customer_id": "B", "date": "2024-06-15", "amount": "70", "cost": "28"},    # = r + 12 months: outside
    {"customer_id": "C", "date": "2024-01-10", "amount": "25", "cost": "10"},
    {"customer_id": "C", "date": "2024-07-20", "amount": "25", "cost": "10"},    # on end_date: last post day
    {"customer_id": "E", "date": "2024-04-01", "amount": "99", "cost": "9"},
    {"customer_id": "G", "date": "2023-12-01", "amount": "15", "cost": "5"},
    {"customer_id": "G", "date": "2024-10-01", "amount": "30", "cost": ""},
    {"customer_id": "H", "date": "2024-07-01", "amount": "-20", "cost": ""},     # only a refund
    {"customer_id": "Z", "date": "2024-01-01", "amount": "5", "cost": ""},       # unknown customer: excluded
]

CONTACTS = [
    {"customer_id": "A", "date": "2024-01-15", "channel": "phone", "cost": ""},    # by channel: 6.00
    {"customer_id": "A", "date": "2024-03-01", "channel": "email", "cost": "2.25"},  # its own cost, not 3.50
    {"customer_id": "A", "date": "2024-05-05", "channel": "fax", "cost": ""},      # unknown channel: other 4.00
    {"customer_id": "B", "date": "2022-06-15", "channel": "store", "cost": ""},    # pre start edge: 8.00
    {"customer_id": "B", "date": "2024-06-15", "channel": "web", "cost": ""},      # post end edge: outside
    {"customer_id": "C", "date": "2024-02-02", "channel": "chat", "cost": ""},     # 2.50
    {"customer_id": "C", "date": "2024-03-03", "channel": "", "cost": ""},         # empty -> other: 4.00
    {"customer_id": "H", "date": "2024-12-31", "channel": "phone", "cost": ""},    # on end_date = as_of
]

PRIOR = ["prior_sales", "prior_sales_transactions",  # checked by hand in test_prior_sales_by_hand
         "post_referred"]  # checked in test_post_referred_matches_pandas
COLUMNS = [c for c in history.HISTORY_COLUMNS if c not in PRIOR] + ["pre_cogs", "post_cogs", "plan"]
INTS = {"score", "pre_transactions", "post_transactions", "pre_contacts", "post_contacts", "duration_days",
        "n_responses", "n_referred"}
FLOATS = {"tenure_years", "pre_exposure_years", "post_exposure_years", "pre_revenue", "post_revenue",
          "pre_contact_cost", "post_contact_cost", "pre_cogs", "post_cogs"}
DATES = {"response_date", "start_date", "end_date"}


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    src = write_csv(tmp_path_factory.mktemp("history") / "src", {
        "customers": CUSTOMERS, "responses": RESPONSES, "transactions": TRANSACTIONS, "contacts": CONTACTS})
    return data.check(src, params())


def assert_history(h: pd.DataFrame, expected: dict[str, dict], groups: list[str]) -> None:
    """Every column of every row: ints and dates exactly, floats approximately."""
    h = h.drop(columns=PRIOR)
    assert list(h.columns) == COLUMNS
    assert h.customer_id.tolist() == sorted(expected)  # one row per customer, sorted; nobody else
    assert list(h["group"].cat.categories) == groups and h["group"].cat.ordered
    assert h.churned.dtype == bool
    for col in INTS:
        assert pd.api.types.is_integer_dtype(h[col]), col
    rows = h.set_index("customer_id")
    for cid, exp in expected.items():
        assert set(exp) == set(COLUMNS) - {"customer_id"}, cid  # the test itself names every column
        got = rows.loc[cid]
        for col, value in exp.items():
            where = f"{cid}.{col}"
            if col in FLOATS:
                assert got[col] == pytest.approx(value, abs=1e-9), where
            elif col in DATES:
                assert (pd.isna(got[col]) if value is None else got[col] == pd.Timestamp(value)), where
            else:
                assert got[col] == value, where


# --------------------------------------------------------------------------- expected: nps, first

A_FIRST = {
    # index: the relationship response of 2024-03-01 (nps 9); the onboarding survey of 2024-02-01
    # is earlier but a journey survey; 2024-09-01 is later; 2025-01-05 (after as_of) was excluded
    "response_date": "2024-03-01", "score": 9, "group": "promoter",
    "start_date": "2023-03-01", "end_date": None,
    # 2023-03-01 -> 2024-03-01 = 366 days (2024-02-29 inside)
    "tenure_years": 366 / Y,
    # pre window [max(2023-03-01, 2023-03-01), 2024-03-01) -> 366 days
    "pre_exposure_years": 366 / Y,
    # post window [2024-03-01, min(2025-03-01, as_of + 1 = 2025-01-01)) -> 306 days (censored at as_of)
    "post_exposure_years": 306 / Y,
    # pre: 2023-03-01 100 (the window's first day) + 2024-02-29 50; post: 200 (on r) - 30 (refund) + 10 (as_of)
    "pre_revenue": 150.0, "post_revenue": 180.0, "pre_transactions": 2, "post_transactions": 3,
    "pre_cogs": 40.0 + 20.0, "post_cogs": 80.0 + 0.0 + 4.0,
    # pre: phone 2024-01-15 at 6.00; post: email with its own cost 2.25 (on r) + fax -> other 4.00
    "pre_contacts": 1, "post_contacts": 2, "pre_contact_cost": 6.0, "post_contact_cost": 2.25 + 4.0,
    # still a customer: censored at as_of, 2024-12-31 - 2024-03-01 = 305 days
    "churned": False, "duration_days": 305,
    # onboarding + 2 relationship responses (the one after as_of is excluded); B and C name A
    "n_responses": 3, "n_referred": 2, "plan": "basic",
}
B_ALL = {
    "response_date": "2023-06-15", "score": 7, "group": "passive",
    "start_date": "2020-01-01", "end_date": None,
    # 2020-01-01 -> 2023-01-01 = 366 + 365 + 365 = 1096; -> 2023-06-15 = 31+28+31+30+31+14 = 165; 1261 days
    "tenure_years": 1261 / Y,
    # pre [max(2020-01-01, 2022-06-15), 2023-06-15) -> 365 days
    "pre_exposure_years": 365 / Y,
    # post [2023-06-15, min(2024-06-15, 2025-01-01)) -> 366 days (2024-02-29 inside)
    "post_exposure_years": 366 / Y,
    # 2022-06-14 is one day before the pre window; 2022-06-15 is its first day (40);
    # 2024-06-14 is the last post day (60); 2024-06-15 = r + 12 months is outside
    "pre_revenue": 40.0, "post_revenue": 60.0, "pre_transactions": 1, "post_transactions": 1,
    "pre_cogs": 16.0, "post_cogs": 24.0,
    # store 2022-06-15 (pre window's first day) at 8.00; web 2024-06-15 is outside the post window
    "pre_contacts": 1, "post_contacts": 0, "pre_contact_cost": 8.0, "post_contact_cost": 0.0,
    # censored: 2024-12-31 - 2023-06-15 = 366 (to 2024-06-15) + 199 = 565 days
    "churned": False, "duration_days": 565,
    "n_responses": 1, "n_referred": 0, "plan": "pro",
}
C_FIRST = {
    # the response on the customer's first day
    "response_date": "2024-01-10", "score": 6, "group": "detractor",
    "start_date": "2024-01-10", "end_date": "2024-07-20",
    "tenure_years": 0.0,
    # pre [max(2024-01-10, 2023-01-10), 2024-01-10) -> empty
    "pre_exposure_years": 0.0,
    # post [2024-01-10, min(2025-01-10, end + 1 = 2024-07-21, 2025-01-01)) -> 22+29+31+30+31+30+20 = 193 days
    "post_exposure_years": 193 / Y,
    # 2024-01-10 (on r, 25) and 2024-07-20 (on end_date, 25) are both in the post window
    "pre_revenue": 0.0, "post_revenue": 50.0, "pre_transactions": 0, "post_transactions": 2,
    "pre_cogs": 0.0, "post_cogs": 20.0,
    # chat 2.50 + empty channel -> other 4.00
    "pre_contacts": 0, "post_contacts": 2, "pre_contact_cost": 0.0, "post_contact_cost": 6.5,
    # churned: 2024-07-20 - 2024-01-10 = 192 days
    "churned": True, "duration_days": 192,
    "n_responses": 2, "n_referred": 0, "plan": "basic",
}
D_ALL = {
    "response_date": "2024-05-01", "score": 10, "group": "promoter",
    "start_date": "2022-05-01", "end_date": None,
    # 2022-05-01 -> 2023-05-01 = 365; -> 2024-05-01 = 366; 731 days
    "tenure_years": 731 / Y,
    # pre [2023-05-01, 2024-05-01) -> 366 days
    "pre_exposure_years": 366 / Y,
    # post [2024-05-01, 2025-01-01) -> 31+30+31+31+30+31+30+31 = 245 days
    "post_exposure_years": 245 / Y,
    # no transactions, no contacts: zeros, not dropped
    "pre_revenue": 0.0, "post_revenue": 0.0, "pre_transactions": 0, "post_transactions": 0,
    "pre_cogs": 0.0, "post_cogs": 0.0,
    "pre_contacts": 0, "post_contacts": 0, "pre_contact_cost": 0.0, "post_contact_cost": 0.0,
    # 2024-12-31 - 2024-05-01 = 244 days
    "churned": False, "duration_days": 244,
    "n_responses": 1, "n_referred": 1, "plan": "pro",  # H names D
}
G_NPS = {
    "response_date": "2024-10-01", "score": 8, "group": "passive",
    "start_date": "2023-01-01", "end_date": None,  # 2025-03-01 is after as_of: still a customer
    # 2023-01-01 -> 2024-01-01 = 365; -> 2024-10-01 = 274; 639 days
    "tenure_years": 639 / Y,
    # pre [2023-10-01, 2024-10-01) -> 366 days
    "pre_exposure_years": 366 / Y,
    # post [2024-10-01, 2025-01-01) -> 31+30+31 = 92 days
    "post_exposure_years": 92 / Y,
    "pre_revenue": 15.0, "post_revenue": 30.0, "pre_transactions": 1, "post_transactions": 1,
    "pre_cogs": 5.0, "post_cogs": 0.0,  # an empty cost counts 0
    "pre_contacts": 0, "post_contacts": 0, "pre_contact_cost": 0.0, "post_contact_cost": 0.0,
    # not churned (end_date corrected); 2024-12-31 - 2024-10-01 = 91 days
    "churned": False, "duration_days": 91,
    "n_responses": 1, "n_referred": 0, "plan": "basic",
}
H_NPS = {
    # two relationship responses on 2024-06-01 (nps 9 and 5): the tie goes to the lower score
    "response_date": "2024-06-01", "score": 5, "group": "detractor",
    "start_date": "2023-01-01", "end_date": "2024-12-31",
    # 2023-01-01 -> 2024-01-01 = 365; -> 2024-06-01 = 31+29+31+30+31 = 152; 517 days
    "tenure_years": 517 / Y,
    # pre [2023-06-01, 2024-06-01) -> 366 days
    "pre_exposure_years": 366 / Y,
    # post [2024-06-01, min(2025-06-01, end + 1 = 2025-01-01, as_of + 1 = 2025-01-01)) -> 214 days
    "post_exposure_years": 214 / Y,
    "pre_revenue": 0.0, "post_revenue": -20.0, "pre_transactions": 0, "post_transactions": 1,  # a refund only
    "pre_cogs": 0.0, "post_cogs": 0.0,
    # phone on 2024-12-31 (end_date = as_of, still in the post window): 6.00
    "pre_contacts": 0, "post_contacts": 1, "pre_contact_cost": 0.0, "post_contact_cost": 6.0,
    # left on as_of: churned; 2024-12-31 - 2024-06-01 = 213 days
    "churned": True, "duration_days": 213,
    "n_responses": 2, "n_referred": 0, "plan": "pro",
}
NPS_GROUPS = ["detractor", "passive", "promoter"]


def test_data_quality_of_the_world(checked):
    dq = checked.data_quality
    assert dq["customers"] == {"rows_read": 7, "rows_used": 7, "excluded": {}, "corrected": {
        "end_date after as_of (treated as still a customer)": 1, "referred_by not a known customer (set empty)": 1}}
    assert dq["responses"] == {"rows_read": 12, "rows_used": 11, "excluded": {"response_date after as_of": 1},
                               "corrected": {}}
    assert dq["transactions"] == {"rows_read": 16, "rows_used": 15,
                                  "excluded": {"customer_id not a known customer": 1}, "corrected": {}}
    assert dq["contacts"] == {"rows_read": 8, "rows_used": 8, "excluded": {},
                              "corrected": {"channel empty (counted as 'other')": 1}}


def test_history_nps_first(checked):
    h = history.history(checked, params())
    # E has only a journey survey: not in the history
    assert_history(h, {"A": A_FIRST, "B": B_ALL, "C": C_FIRST, "D": D_ALL, "G": G_NPS, "H": H_NPS}, NPS_GROUPS)


# --------------------------------------------------------------------------- index_response="last"

A_LAST = {
    **A_FIRST,
    # the last relationship response: 2024-09-01 (nps 4)
    "response_date": "2024-09-01", "score": 4, "group": "detractor",
    # 2023-03-01 -> 2024-03-01 = 366; -> 2024-09-01 = 31+30+31+30+31+31 = 184; 550 days
    "tenure_years": 550 / Y,
    # pre [max(2023-03-01, 2023-09-01), 2024-09-01) -> 366 days
    "pre_exposure_years": 366 / Y,
    # post [2024-09-01, 2025-01-01) -> 30+31+30+31 = 122 days
    "post_exposure_years": 122 / Y,
    # pre: 50 (02-29) + 200 (03-01) - 30 (04-01); 2023-03-01 is before the window; post: 10 (as_of)
    "pre_revenue": 220.0, "post_revenue": 10.0, "pre_transactions": 3, "post_transactions": 1,
    "pre_cogs": 20.0 + 80.0 + 0.0, "post_cogs": 4.0,
    # all three contacts are now before r: 6.00 + 2.25 + 4.00
    "pre_contacts": 3, "post_contacts": 0, "pre_contact_cost": 12.25, "post_contact_cost": 0.0,
    # 2024-12-31 - 2024-09-01 = 121 days
    "duration_days": 121,
}


def test_history_nps_last(checked):
    h = history.history(checked, params(index_response="last"))
    # B, C (its 2024-02-10 response has no nps), D, G: a single nps response, as before;
    # H: both responses on the same day, the tie still goes to the lower score
    assert_history(h, {"A": A_LAST, "B": B_ALL, "C": C_FIRST, "D": D_ALL, "G": G_NPS, "H": H_NPS}, NPS_GROUPS)


# --------------------------------------------------------------------------- study_start, study_end


def test_history_study_window_both_days_included(checked):
    """Index responses dated inside [study_start, study_end], both days included: A's first
    relationship response on or after 2024-05-01 is 2024-09-01 (= study_end); D's is on 2024-05-01
    (= study_start); H's on 2024-06-01. B (2023), C (January) and G (October) fall outside. The
    post windows still run to as_of: the study window limits who enters, not the follow-up."""
    h = history.history(checked, params(study_start="2024-05-01", study_end="2024-09-01"))
    assert_history(h, {"A": A_LAST, "D": D_ALL, "H": H_NPS}, NPS_GROUPS)


def test_history_study_end_before_as_of_with_the_last_response(checked):
    """study_end 2024-08-31: A's last relationship response up to it is 2024-03-01, not 2024-09-01,
    and its post window still reaches as_of (A_FIRST); G's only response (2024-10-01) is later."""
    h = history.history(checked, params(index_response="last", study_end="2024-08-31"))
    assert_history(h, {"A": A_FIRST, "B": B_ALL, "C": C_FIRST, "D": D_ALL, "H": H_NPS}, NPS_GROUPS)


# --------------------------------------------------------------------------- survey_type="any"

A_ANY = {
    # any survey may be the index response: A's onboarding survey of 2024-02-01 (nps 2) is the first
    "response_date": "2024-02-01", "score": 2, "group": "detractor",
    "start_date": "2023-03-01", "end_date": None,
    # 2023-03-01 -> 2024-03-01 = 366 days, less February 2024 (29) = 337 days
    "tenure_years": 337 / Y,
    # pre [max(2023-03-01, 2023-02-01), 2024-02-01) -> 337 days
    "pre_exposure_years": 337 / Y,
    # post [2024-02-01, min(2025-02-01, as_of + 1 = 2025-01-01)) -> 366 - 31 = 335 days
    "post_exposure_years": 335 / Y,
    # pre: 2023-03-01 100; post: 50 (2024-02-29) + 200 - 30 (refund) + 10 (as_of)
    "pre_revenue": 100.0, "post_revenue": 230.0, "pre_transactions": 1, "post_transactions": 4,
    "pre_cogs": 40.0, "post_cogs": 20.0 + 80.0 + 0.0 + 4.0,
    # pre: phone 2024-01-15 at 6.00; post: email 2.25 (own cost) + fax -> other 4.00
    "pre_contacts": 1, "post_contacts": 2, "pre_contact_cost": 6.0, "post_contact_cost": 6.25,
    # 2024-12-31 - 2024-02-01 = 334 days
    "churned": False, "duration_days": 334,
    "n_responses": 3, "n_referred": 2, "plan": "basic",
}
E_ANY = {
    # E's only response, a billing survey of 2024-04-01 (nps 3), now counts
    "response_date": "2024-04-01", "score": 3, "group": "detractor",
    "start_date": "2023-01-01", "end_date": None,
    # 2023-01-01 -> 2024-01-01 = 365; -> 2024-04-01 = 31+29+31 = 91; 456 days
    "tenure_years": 456 / Y,
    # pre [max(2023-01-01, 2023-04-01), 2024-04-01) -> 366 days (2024-02-29 inside)
    "pre_exposure_years": 366 / Y,
    # post [2024-04-01, 2025-01-01) -> 30+31+30+31+31+30+31+30+31 = 275 days
    "post_exposure_years": 275 / Y,
    # 2024-04-01 99 (cost 9) on the response day: post
    "pre_revenue": 0.0, "post_revenue": 99.0, "pre_transactions": 0, "post_transactions": 1,
    "pre_cogs": 0.0, "post_cogs": 9.0,
    "pre_contacts": 0, "post_contacts": 0, "pre_contact_cost": 0.0, "post_contact_cost": 0.0,
    # 2024-12-31 - 2024-04-01 = 274 days
    "churned": False, "duration_days": 274,
    "n_responses": 1, "n_referred": 1, "plan": "basic",  # D names E
}


def test_history_any_survey_type(checked):
    """survey_type="any": journey surveys may be index responses too. A's first is now its
    onboarding survey and E, which only answered a billing survey, enters; the others' first
    responses were relationship surveys already."""
    h = history.history(checked, params(survey_type="any"))
    assert_history(h, {"A": A_ANY, "B": B_ALL, "C": C_FIRST, "D": D_ALL, "E": E_ANY, "G": G_NPS, "H": H_NPS},
                   NPS_GROUPS)


# --------------------------------------------------------------------------- metric="csat"

C_CSAT = {
    **C_FIRST,
    # the first relationship response with a csat: 2024-02-10 (csat 2); 2024-01-10 has no csat
    "response_date": "2024-02-10", "score": 2, "group": "dissatisfied",
    # 2024-01-10 -> 2024-02-10 = 31 days
    "tenure_years": 31 / Y,
    # pre [max(2024-01-10, 2023-02-10), 2024-02-10) -> 31 days
    "pre_exposure_years": 31 / Y,
    # post [2024-02-10, min(2025-02-10, 2024-07-21, 2025-01-01)) -> 20+31+30+31+30+20 = 162 days
    "post_exposure_years": 162 / Y,
    # 2024-01-10 (25) is now pre, 2024-07-20 (25) post
    "pre_revenue": 25.0, "post_revenue": 25.0, "pre_transactions": 1, "post_transactions": 1,
    "pre_cogs": 10.0, "post_cogs": 10.0,
    # chat 2024-02-02 pre (2.50), empty channel 2024-03-03 post (other 4.00)
    "pre_contacts": 1, "post_contacts": 1, "pre_contact_cost": 2.5, "post_contact_cost": 4.0,
    # 2024-07-20 - 2024-02-10 = 161 days
    "churned": True, "duration_days": 161,
}


def test_history_csat(checked):
    h = history.history(checked, params(metric="csat"))
    expected = {
        "A": {**A_FIRST, "score": 5, "group": "satisfied"},  # 2024-03-01 csat 5
        "B": {**B_ALL, "score": 3, "group": "neutral"},
        "C": C_CSAT,
        "D": {**D_ALL, "score": 4, "group": "satisfied"},
        # G: no csat at all -> absent
        "H": {**H_NPS, "score": 4, "group": "satisfied"},  # same-day csat 4 and 5: the lower
    }
    assert_history(h, expected, ["dissatisfied", "neutral", "satisfied"])


# --------------------------------------------------------------------------- window_months=6


def test_history_six_month_windows(checked):
    h = history.history(checked, params(window_months=6)).set_index("customer_id")
    b, d = h.loc["B"], h.loc["D"]
    # B, r = 2023-06-15: pre [2022-12-15, 2023-06-15) -> 17+31+28+31+30+31+14 = 182 days;
    # post [2023-06-15, 2023-12-15) -> 16+31+31+30+31+30+14 = 183 days; no transaction or contact inside
    assert b.pre_exposure_years == pytest.approx(182 / Y) and b.post_exposure_years == pytest.approx(183 / Y)
    assert (b.pre_transactions, b.post_transactions, b.pre_contacts, b.post_contacts) == (0, 0, 0, 0)
    assert (b.pre_revenue, b.post_revenue, b.pre_contact_cost, b.post_contact_cost) == (0.0, 0.0, 0.0, 0.0)
    assert b.tenure_years == pytest.approx(1261 / Y) and b.duration_days == 565  # not window-dependent
    # D, r = 2024-05-01: pre [2023-11-01, 2024-05-01) -> 30+31+31+29+31+30 = 182 days;
    # post [2024-05-01, 2024-11-01) -> 31+30+31+31+30+31 = 184 days
    assert d.pre_exposure_years == pytest.approx(182 / Y) and d.post_exposure_years == pytest.approx(184 / Y)
    # A, r = 2024-03-01: pre [2023-09-01, 2024-03-01) -> 182 days: only 2024-02-29 (50) inside;
    # post [2024-03-01, 2024-09-01) -> 184 days: 200 - 30
    a = h.loc["A"]
    assert a.pre_exposure_years == pytest.approx(182 / Y) and a.post_exposure_years == pytest.approx(184 / Y)
    assert (a.pre_revenue, a.post_revenue, a.pre_transactions, a.post_transactions) == (50.0, 170.0, 1, 2)


@pytest.mark.parametrize("index_response, expected", [
    # positive amounts dated before r over the whole history (refunds and day r itself excluded)
    ("first", {"A": (150.0, 2),    # r 2024-03-01: 100 (2023-03-01) + 50 (2024-02-29)
               "B": (1040.0, 2),   # r 2023-06-15: 1000 (2022-06-14, before the pre window) + 40
               "C": (0.0, 0),      # r = first day; its 25 on 2024-01-10 is on r, not before
               "D": (0.0, 0),      # no transactions
               "G": (15.0, 1),     # r 2024-10-01: 15 (2023-12-01); 30 on r is not prior
               "H": (0.0, 0)}),    # only a refund, after r
    ("last", {"A": (350.0, 3),     # r 2024-09-01: 100 + 50 + 200; the -30 refund is not a sale
              "B": (1040.0, 2), "C": (0.0, 0), "D": (0.0, 0), "G": (15.0, 1), "H": (0.0, 0)}),
])
def test_prior_sales_by_hand(checked, index_response, expected):
    h = history.history(checked, params(index_response=index_response)).set_index("customer_id")
    for cid, (sales, n) in expected.items():
        assert h.loc[cid, "prior_sales"] == pytest.approx(sales), cid
        assert h.loc[cid, "prior_sales_transactions"] == n, cid


def test_unjoined_fast_path_equals_rule_filtered_tables():
    """The history may read transactions and contacts without the rules' join to customers
    (every excluded row lies outside every window); on a world full of rule breakers the two
    give the same history."""
    from cxvalue.synthetic import generate

    world = generate(n_customers=1_500, seed=9, messy=True)
    hand = {"customers": pd.DataFrame(CUSTOMERS), "responses": pd.DataFrame(RESPONSES),
            "transactions": pd.DataFrame(TRANSACTIONS), "contacts": pd.DataFrame(CONTACTS)}
    for source, p in ((world.tables, params(as_of=world.truth["as_of"])), (hand, params())):
        checked = data.check(source, p)
        assert set(checked.unjoined) == {"transactions", "contacts"}  # not materialised: fast path taken
        fast = history.build_history(checked, p, use_unjoined=True).order_by("customer_id").to_pandas()
        strict = history.build_history(checked, p, use_unjoined=False).order_by("customer_id").to_pandas()
        pd.testing.assert_frame_equal(fast, strict)


def test_post_referred_matches_pandas(small_world_dir):
    """Referrals who started inside the referrer's post window, counted independently in pandas."""
    p = params()
    checked = data.check(small_world_dir, p)
    h = history.history(checked, p).set_index("customer_id")
    cust = checked.tables["customers"].to_pandas()
    ref = cust[cust["referred_by"].notna()][["referred_by", "start_date"]].rename(columns={"referred_by": "customer_id"})
    ref = ref.merge(h[["response_date", "post_exposure_years"]].reset_index(), on="customer_id")
    post_end = ref["response_date"] + pd.to_timedelta((ref["post_exposure_years"] * history.DAYS_PER_YEAR).round(), unit="D")
    start = pd.to_datetime(ref["start_date"])
    inside = (start >= ref["response_date"]) & (start < post_end)
    expected = inside.groupby(ref["customer_id"]).sum().reindex(h.index, fill_value=0)
    assert expected.sum() >= 5  # the world has referrals after surveys
    assert (h["post_referred"] == expected).all()
    assert (h["post_referred"] <= h["n_referred"]).all()
