"""Report sentences: built from the numbers, with every group label readable and escaped."""

import pandas as pd

from cxvalue import narrative


def _summary(groups):
    return pd.DataFrame({
        "customers": [300, 400, 200], "revenue_per_customer_year": [800.0, 1000.0, 1300.0],
        "cost_to_serve_per_customer_year": [60.0, 40.0, 35.0], "contacts_per_customer_year": [6.0, 4.0, 3.5],
        "churn_rate_12m": [0.3, 0.15, 0.1], "revenue_ratio": [0.8, 1.0, 1.3], "cost_to_serve_ratio": [1.5, 1.0, 0.875],
        "churn_rate_ratio": [2.0, 1.0, 2 / 3], "small_group": [False] * 3}, index=pd.Index(groups, name="group"))


def test_observed_sentences_from_the_numbers():
    text = " ".join(narrative.observed_sentences(_summary(["high_effort", "neutral", "low_effort"]), "neutral", "EUR", 12))
    assert "neutral customers spent EUR 1,000 per customer per year" in text
    assert "High effort customers spent EUR 800 (20% less), cost EUR 60 to serve (50% more)" in text
    assert "Low effort customers spent EUR 1,300 (30% more)" in text
    assert "high_effort" not in text


def test_labels_and_currency_are_escaped():
    text = " ".join(narrative.observed_sentences(_summary(["<b>bad</b>", "ok", "good"]), "ok", "<€>", 12))
    assert "<b>" not in text and "&lt;b&gt;" in text and "&lt;€&gt;" in text


def test_suppression_blanks_small_groups():
    s = _summary(["a", "b", "c"])
    s.loc["c", "customers"] = 5
    shown = narrative.suppress(s, min_cell_size=10)
    assert shown.loc["c"].drop(["customers", "small_group"]).isna().all()
    assert shown.loc["a", "revenue_per_customer_year"] == 800.0
    assert "too small to report" in " ".join(narrative.observed_sentences(shown, "b", "USD", 12))


def test_tables_show_user_labels_escaped_once():
    import pandas as pd

    from cxvalue import narrative

    clv = pd.DataFrame({"margin_per_year": [100.0], "retention_year_1": [0.8], "clv": [300.0]},
                       index=["<script>alert('x')</script> & co"])
    rendered = narrative.clv_table(clv, "R&D")._repr_html_()
    assert "<script>" not in rendered and "&lt;script&gt;" in rendered  # escaped by the renderer...
    assert "&amp;lt;" not in rendered and "&amp;amp;" not in rendered  # ...exactly once
    assert "R&amp;D" in rendered


def test_e_value_sentences_from_the_numbers():
    from cxvalue import evalue

    s = pd.DataFrame({"customers": [300, 400, 200], "hazard_ratio": [2.36, 1.0, 0.92],
                      "hr_lo": [2.21, 1.0, 0.85], "hr_hi": [2.52, 1.0, 1.0]},
                     index=pd.Index(["detractor", "passive", "promoter"], name="group"))
    e = evalue.e_values_hr(s["hazard_ratio"], s["hr_lo"], s["hr_hi"], rare=False)
    s["e_value"], s["e_value_ci"] = e.point, e.ci
    # by hand: HR 2.36 -> RR (1 - 0.5**sqrt(2.36)) / (1 - 0.5**sqrt(1/2.36)) = 0.65521 / 0.36314 = 1.80432,
    # E = 1.80432 + sqrt(1.80432 * 0.80432) = 3.009; lower bound 2.21 -> RR 1.72585 -> E = 2.845;
    # HR 0.92 -> RR 0.94385 -> E = 1.311, its upper bound 1.0 includes no difference
    text = narrative.e_value_sentences(s, "passive", "churn")
    assert text == [
        "To explain away the gap in churn between detractor and passive customers, a factor we cannot see would "
        "have to make customers 3.0 times as likely to be in the detractor group rather than the passive one and "
        "3.0 times as likely to leave, over and above the controls; to move the interval to include no "
        "difference, 2.8 times.",
        "To explain away the gap in churn between promoter and passive customers, a factor we cannot see would "
        "have to make customers 1.3 times as likely to be in the promoter group rather than the passive one and "
        "1.3 times as likely to leave, over and above the controls; the interval already includes no difference.",
    ]
    # a group not estimated, suppressed or a skipped model: no sentence
    s.loc["promoter", ["e_value", "e_value_ci"]] = float("nan")
    assert len(narrative.e_value_sentences(s, "passive", "churn")) == 1
    assert narrative.e_value_sentences(s.drop(columns=["e_value", "e_value_ci"]), "passive", "churn") == []
    rev = narrative.e_value_sentences(pd.DataFrame({"e_value": [1.05, 1.0], "e_value_ci": [1.0, 1.0]},
                                                   index=["high_effort", "neutral"]), "neutral", "revenue")
    assert rev == ["To explain away the gap in revenue between high effort and neutral customers, a factor we cannot "
                   "see would have to make customers 1.05 times as likely to be in the high effort group rather than "
                   "the neutral one and change what they spend 1.05-fold, over and above the controls; the interval "
                   "already includes no difference."]


def test_e_value_method_sentence_names_the_conversion():
    from cxvalue import evalue

    from types import SimpleNamespace

    def churn(conversion, share, fitted=True):
        return SimpleNamespace(fitted=fitted, e_value_conversion_=conversion, churn_by_end_of_follow_up_=share)

    common = narrative.e_value_method_sentence(churn(evalue.HR_COMMON, 0.42))
    assert "VanderWeele & Ding 2017" in common and "common outcome" in common and "42% of customers" in common
    assert "rare outcome" in narrative.e_value_method_sentence(churn(evalue.HR_RARE, 0.08))
    assert "Churn" not in narrative.e_value_method_sentence(churn(None, None, fitted=False))
    assert "Churn" not in narrative.e_value_method_sentence(None)


def _header_rows(rendered: str) -> int:
    import re

    thead = re.search(r"<thead>(.*?)</thead>", rendered, re.S).group(1)
    return thead.count("<tr")


def test_report_tables_have_one_header_row():
    """No stray row ("KPI", "Table", "Group") between the column headers and the body."""
    import pandas as pd

    from cxvalue import narrative

    clv = pd.DataFrame({"margin_per_year": [100.0], "retention_year_1": [0.8], "clv": [300.0]}, index=["passive"])
    table = narrative.clv_table(clv, "USD")
    assert _header_rows(table._repr_html_()) == 1 and table.columns.name == "Group"
    dq = {"customers": {"rows_read": 10, "rows_used": 9, "excluded": {"duplicate": 1}},
          "responses": {"rows_read": 5, "rows_used": 5, "excluded": {}}}
    quality = narrative.quality_display(dq)
    assert _header_rows(quality._repr_html_()) == 1
    assert list(quality.index) == ["customers", "", "", "responses", ""]  # each table named once
    assert quality["Rows"].tolist() == ["10", "1", "9", "5", "5"]
    flows = pd.DataFrame({"retention": [1.4], "spend": [2.0], "cost_to_serve": [0.0], "referrals": [0.0],
                          "benefit": [3.4], "cost": [1000.0], "net": [-996.6], "revenue_change": [9.0]},
                         index=pd.Index([1], name="year"))
    shown = narrative.cash_flow_table(flows, "EUR")
    assert _header_rows(shown._repr_html_()) == 1 and shown.columns.name == "Year (EUR)"
    assert shown.loc[1, "Net"] == "-997" and "revenue_change" not in shown.columns


def test_assumptions_table_shows_every_meaning_in_full():
    import cxvalue.html
    from cxvalue import config, narrative

    cxvalue.html.enable_offline_charts()  # what every report notebook calls first
    rendered = narrative.assumptions_table(config.load_params())._repr_html_()
    assert "..." not in rendered and "…" not in rendered
    longest = max((p.help for p in config.PARAMETERS), key=len)
    import html

    assert html.escape(longest, quote=False) in rendered.replace("&#x27;", "'")
    assert _header_rows(rendered) == 1


def test_every_report_notebook_sets_up_its_tables_and_charts():
    import nbformat

    from cxvalue import report

    for path in report.notebooks():
        source = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        assert "cxvalue.html.enable_offline_charts()" in source, path.name


def test_context_sentence_and_lists_in_words():
    ctx = {"year": 3, "revenue_uplift": 0.021, "cost_to_serve_change": -0.0004, "guide_revenue_growth": [0.05, 0.10],
           "guide_cost_reduction": [0.15, 0.25]}
    assert "leaves its cost to serve about the same." in narrative.context_sentence(ctx)
    assert "adds 2.1% to the customer base's revenue" in narrative.context_sentence(ctx)
    assert "below their revenue range" in narrative.context_sentence(ctx)
    assert "3.0% lower" in narrative.context_sentence({**ctx, "cost_to_serve_change": -0.03})
    assert "0.2% higher" in narrative.context_sentence({**ctx, "cost_to_serve_change": 0.002})
    assert narrative.listed(["a", "b", "c"]) == "a, b and c" and narrative.listed(["a"]) == "a"
    assert narrative.listed(["a", "b"]) == "a and b" and narrative.listed([]) == ""
