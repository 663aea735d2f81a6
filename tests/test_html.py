"""Offline charts survive papermill and end up in one self-contained HTML page."""

from __future__ import annotations

import re

import nbformat
import pytest
import papermill as pm
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

import cxvalue.html

EXTERNAL_REF = re.compile(
    r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*[\"']?\s*(?:https?:)?//", re.I
)

PARAMS_SRC = "segment_count = 3"
CHARTS_SRC = """\
import altair as alt
import pandas as pd
import cxvalue.html
cxvalue.html.enable_offline_charts()
revenue = pd.DataFrame({"segment": ["Loyal", "Passive", "Detractor"][:segment_count],
                        "revenue_eur": [120.5, 80.25, 40.0][:segment_count]})
trend = pd.DataFrame({"month": [1, 2, 3, 4], "nps_score": [21, 25, 24, 30]})
display(alt.Chart(revenue).mark_bar().encode(
    x="segment:N", y="revenue_eur:Q", tooltip=["segment", "revenue_eur"]))
display(alt.Chart(trend).mark_line(point=True).encode(x="month:O", y="nps_score:Q"))
display(revenue)
"""
STDERR_SRC = 'import sys\nprint("stderr-noise-xyz", file=sys.stderr)\nprint("stdout-kept-xyz")'


def test_notebooks_to_html_is_offline_and_clean(tmp_path):
    params = new_code_cell(PARAMS_SRC)
    params.metadata["tags"] = ["parameters"]
    nb = new_notebook(
        cells=[
            params,
            new_markdown_cell("# Value of experience\n\nWhy **CX** pays."),
            new_code_cell(CHARTS_SRC),
            new_code_cell(STDERR_SRC),
        ],
        metadata={"kernelspec": {"name": "cxvalue", "display_name": "cxvalue", "language": "python"}},
    )
    source, executed = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, source)
    pm.execute_notebook(
        str(source), str(executed), kernel_name="cxvalue", cwd=str(tmp_path),
        parameters={"segment_count": 2}, progress_bar=False,
    )
    nbformat.validate(nbformat.read(executed, as_version=4))

    page = cxvalue.html.notebooks_to_html([executed], title="Q3 <Board> & Co")

    assert EXTERNAL_REF.search(page) is None
    # Vega library inlined exactly once; one small embed call per chart.
    vega_js = cxvalue.html._vega_js()
    assert page.count(vega_js[len(vega_js) // 2 : len(vega_js) // 2 + 400]) == 1
    assert page.count("window.vegaEmbed=") == 1
    assert page.count('class="cxv-chart"') == 2
    assert page.count("window.vegaEmbed(box") == 2
    for fragment in ('"type": "bar"', '"type": "line"', '"revenue_eur"', '"nps_score"', '"tooltip"'):
        assert fragment in page
    assert page.count("data:image/svg+xml;base64,") == 2  # static fallbacks
    assert 'class="dataframe"' in page and "Passive" in page and "Detractor" not in page
    # Markdown rendered, stdout kept; code, prompts and stderr gone.
    assert re.search(r"<h1[^>]*>Value of experience", page)
    assert "<strong>CX</strong>" in page
    assert "stdout-kept-xyz" in page
    assert "stderr-noise-xyz" not in page
    for code in ("segment_count", "enable_offline_charts", "mark_bar", "file=sys.stderr"):
        assert code not in page
    assert "In&nbsp;[" not in page and "Out[" not in page
    assert "<title>Q3 &lt;Board&gt; &amp; Co</title>" in page
    assert "<Board>" not in page


def test_pdf_is_printed_offline_when_chromium_is_installed(tmp_path):
    from cxvalue import report

    browser = report._chromium()
    if browser is None:
        pytest.skip("no Chromium on this machine (optional: the --pdf flag)")
    page = tmp_path / "report.html"
    page.write_text("<!DOCTYPE html><html><body><h1>Page one</h1><p>NPV USD 1,000</p></body></html>")
    report.print_pdf(page, tmp_path / "report.pdf", browser)
    pdf = (tmp_path / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 1_000


def test_the_javascript_bundle_is_built_once_and_kept(tmp_path, monkeypatch):
    """vl-convert takes about 1.5 s to bundle Vega: the first page builds and keeps it (by vl-convert and
    Vega-Lite version), later ones read it; where the folder cannot be written, each builds its own."""
    import vl_convert

    built = []
    bundle = vl_convert.javascript_bundle

    def counting(**kwargs):
        built.append(kwargs)
        return bundle(**kwargs)

    monkeypatch.setattr(cxvalue.html.vlc, "javascript_bundle", counting)
    monkeypatch.setattr(cxvalue.html, "_bundle_dir", lambda: tmp_path / "share")
    cxvalue.html._vega_js.cache_clear()
    try:
        first = cxvalue.html._vega_js()
        assert len(built) == 1 and "window.vegaEmbed" in first and "</script" not in first.lower()
        kept = list((tmp_path / "share").iterdir())
        assert [p.name for p in kept] == [f"vega-bundle-{vl_convert.__version__}-vl{cxvalue.html._vl_version()}.js"]
        assert kept[0].read_text(encoding="utf-8") == first
        cxvalue.html._vega_js.cache_clear()  # a new run
        assert cxvalue.html._vega_js() == first and len(built) == 1
        blocked = tmp_path / "file"
        blocked.write_text("")  # a file where the folder should be: nothing can be kept
        monkeypatch.setattr(cxvalue.html, "_bundle_dir", lambda: blocked / "share")
        cxvalue.html._vega_js.cache_clear()
        assert cxvalue.html._vega_js() == first and len(built) == 2
    finally:
        cxvalue.html._vega_js.cache_clear()
