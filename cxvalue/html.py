"""Offline, self-contained HTML reports from executed notebooks.

Two halves work together:

* :func:`enable_offline_charts` is called at the top of each report notebook.
  Every Altair chart displayed afterwards leaves a ``text/html`` output holding
  the Vega-Lite spec, a tiny ``vegaEmbed(...)`` call and a static SVG fallback
  (drawn offline by vl-convert), plus the same SVG as ``image/svg+xml``.  The
  bundle contains plain strings only, so papermill's nbformat validation passes.
* :func:`notebooks_to_html` turns the executed notebooks into one page without
  code, prompts, stderr or tracebacks, and embeds the Vega, Vega-Lite and
  vega-embed JavaScript (from vl-convert, no network) exactly once.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import sys
import uuid
from html import unescape
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd
import nbformat
import vl_convert as vlc
from jinja2 import Environment, FileSystemLoader, select_autoescape

__all__ = ["enable_offline_charts", "notebooks_to_html"]

_RENDERER = "cxvalue-offline"
_TEMPLATES = Path(__file__).parent / "templates"
_EMBED_DEFAULTS = {"actions": False, "renderer": "svg"}
_REMOVE_TAGS = {"remove-cell", "remove_cell", "remove-output", "remove_output"}

# Container id, SVG fallback (base64), spec and embed options are filled in.
# The static image stays unless vegaEmbed (embedded once per page) draws the
# live chart; notebook frontends without the library just show the image.
_CHART_HTML = """\
<div class="cxv-chart" id="{id}"><img class="cxv-static" alt="Chart" \
src="data:image/svg+xml;base64,{svg}"><div class="cxv-live"></div></div>
<script>(function () {{
  var box = document.getElementById("{id}");
  function draw() {{
    if (!window.vegaEmbed || !box) return;
    window.vegaEmbed(box.querySelector(".cxv-live"), {spec}, {options})
      .then(function () {{ var s = box.querySelector(".cxv-static"); if (s) s.remove(); }})
      .catch(function (err) {{ console.error(err); }});
  }}
  if (window.vegaEmbed) draw(); else window.addEventListener("load", draw);
}})();</script>"""


@functools.lru_cache(maxsize=1)
def _vl_version() -> str:
    """Altair's Vega-Lite ``major.minor`` if vl-convert has it, else its newest."""
    wanted = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    known = vlc.get_vegalite_versions()
    return wanted if wanted in known else known[-1]


def _script_json(obj: Any) -> str:
    """JSON that is safe to inline in a ``<script>`` element."""
    text = json.dumps(obj, sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _offline_renderer(spec: dict, **metadata: Any) -> dict[str, str]:
    """Altair renderer: live chart HTML plus an SVG fallback, no network needed."""
    svg = vlc.vegalite_to_svg(spec, vl_version=_vl_version())
    options = {**_EMBED_DEFAULTS, **metadata.get("embed_options", {}), "mode": "vega-lite"}
    chart_html = _CHART_HTML.format(
        id=f"cxv-{uuid.uuid4().hex[:12]}",
        svg=base64.b64encode(svg.encode("utf-8")).decode("ascii"),
        spec=_script_json(spec),
        options=_script_json(options),
    )
    return {"text/html": chart_html, "image/svg+xml": svg, "text/plain": "<Altair chart>"}


def enable_offline_charts() -> None:
    """Render Altair charts so that reports work offline.

    Registers and enables a renderer whose output carries the Vega-Lite spec
    with a small ``vegaEmbed`` call (interactive, tooltips) and a static SVG
    fallback made by vl-convert (and lets tables show long text in full). No JavaScript library is put in the notebook:
    :func:`notebooks_to_html` embeds it once per page. Options set with
    ``alt.renderers.set_embed_options(...)`` are passed on to vega-embed.

    Returns
    -------
    None
    """
    alt.renderers.register(_RENDERER, _offline_renderer)
    alt.renderers.enable(_RENDERER)
    pd.set_option("display.max_colwidth", None)  # report tables show their text in full


def _bundle_dir() -> Path:
    """Where the JavaScript bundle is kept between runs: the Python environment's own ``share``
    folder (it holds the vl-convert that built it, and goes with it)."""
    return Path(sys.prefix) / "share" / "cxvalue"


@functools.lru_cache(maxsize=1)
def _vega_js() -> str:
    """Vega + Vega-Lite + vega-embed as one offline bundle defining ``window.vegaEmbed``.

    Building it takes vl-convert about 1.5 s, and it depends only on vl-convert's version and the
    Vega-Lite version asked for: it is kept in :func:`_bundle_dir` after the first run (where that
    folder cannot be written, it is built each time)."""
    path = _bundle_dir() / f"vega-bundle-{vlc.__version__}-vl{_vl_version()}.js"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        pass
    js = vlc.javascript_bundle(vl_version=_vl_version())
    # Own scope for the bundle's top-level names; never close the <script> early.
    js = "(function () {\n" + re.sub(r"</(script)", r"<\\/\1", js, flags=re.I) + "\n})();"
    try:  # written whole under another name, then renamed: a reader never sees half a bundle
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
        tmp.write_text(js, encoding="utf-8")
        tmp.replace(path)
    except OSError:
        pass
    return js


def _clean(nb: nbformat.NotebookNode) -> None:
    """Drop stderr streams, error outputs, removable cells and empty code cells."""
    kept = []
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if tags & {"remove-cell", "remove_cell"}:
            continue
        if cell.cell_type == "code":
            if tags & _REMOVE_TAGS:
                continue
            cell.outputs = [
                out
                for out in cell.get("outputs", [])
                if out.output_type != "error"
                and not (out.output_type == "stream" and out.get("name") == "stderr")
            ]
            if not cell.outputs:
                continue
        kept.append(cell)
    nb.cells = kept


def _first_heading(body: str) -> str | None:
    """Text of the first ``<h1>``..``<h6>`` in rendered HTML, without tags."""
    match = re.search(r"<h([1-6])\b[^>]*>(.*?)</h\1>", body, flags=re.S)
    if not match:
        return None
    text = re.sub(r"<a class=\"anchor-link\".*?</a>|<[^>]+>", "", match.group(2), flags=re.S)
    return unescape(re.sub(r"\s+", " ", text)).strip() or None


def notebooks_to_html(notebook_paths: list[str | Path], title: str) -> str:
    """Combine executed notebooks into one self-contained HTML page.

    Parameters
    ----------
    notebook_paths : list of str or Path
        Executed notebooks (e.g. by papermill), in reading order.
    title : str
        Page title; HTML-escaped.

    Returns
    -------
    str
        The page: rendered markdown and outputs only (no code, prompts, stderr
        or tracebacks), a table of contents when there are several notebooks,
        and the Vega JavaScript inlined once if any chart is present. It loads
        nothing over the network.
    """
    from nbconvert import HTMLExporter  # here: a notebook kernel imports this module for its charts only

    exporter = HTMLExporter(
        template_name="basic",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    sections = []
    for number, path in enumerate(map(Path, notebook_paths), start=1):
        nb = nbformat.read(path, as_version=4)
        _clean(nb)
        resources = {"metadata": {"path": str(path.parent), "name": path.stem}}
        body, _ = exporter.from_notebook_node(nb, resources=resources)
        heading = _first_heading(body) or path.stem.replace("_", " ")
        sections.append({"id": f"section-{number}", "heading": heading, "body": body})

    has_charts = any('class="cxv-chart"' in s["body"] for s in sections)
    env = Environment(
        loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape(["html", "j2"])
    )
    return env.get_template("report.html.j2").render(
        title=title, sections=sections, vega_js=_vega_js() if has_charts else None
    )
