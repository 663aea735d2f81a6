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
