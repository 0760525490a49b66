"""The companion site: static HTML from what is committed, without executing anything.

``python -m paperlib site`` (``make site``) writes ``build/site/``:

- ``index.html`` -- the front page: one row per paper claim with its verdict (from the results
  index ``tables/index.csv``), each linking to its table, figure, manifest and executed notebook;
- ``papers/<paper>.html`` -- one page per paper: its claims, tables, figures and notebooks;
- ``notebooks/<name>.html`` -- every executed notebook (``notebooks/executed/<profile>/``),
  rendered with nbconvert, outputs and plots included;
- ``tables/...`` -- each table's markdown rendered as a page beside its csv and manifest, and
  ``figures/...`` -- the figures and their manifests, copied;
- ``reproduction.html`` -- ``tables/REPRODUCTION.md``.

Why nbconvert and a small template rather than Jupyter Book 2 / MyST: the pages are already
executed notebooks and versioned tables, so the site is a rendering job -- nbconvert (already
installed with JupyterLab) renders a notebook faithfully with its outputs, and the front page is
a table of verdicts that a few lines of HTML express directly; a MyST build would add Node
packages to every machine and CI run for no page this site needs.
"""
from __future__ import annotations

import html
import json
import shutil
from collections import defaultdict
from pathlib import Path

import pandas as pd

PROFILES = ("cpu", "gpu", "paper")
PAPER_TITLES = {
    "vplr": "VPLR: video propagation and label relaxation (Zhu et al., CVPR 2019)",
    "selftrain": "Naive-student self-training (Chen et al., ECCV 2020)",
    "csst": "CSST: class-balanced self-training (Zhu et al., 2021)",
    "duchdc": "DUC / HDC: dense upsampling and hybrid dilated convolution (Wang et al., WACV 2018)",
    "gsvnet": "GSVNet: guided spatially-varying convolution for video segmentation (Lee et al., AAAI 2021)",
    "paperlib": "paperlib: the world, the models and the quickstart",
}
VERDICT_CLASS = {"reproduced": "ok", "pass": "ok", "reversed": "bad", "fail": "bad", "not reproduced": "bad",
                 "inconclusive": "meh", "not testable": "meh"}

CSS = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1200px;padding:0 1rem;color:#222}
table{border-collapse:collapse;font-size:.85rem;width:100%}th,td{border:1px solid #ddd;padding:.3rem .4rem;
vertical-align:top}th{background:#f3f3f3;text-align:left}.ok{background:#e3f6e3}.bad{background:#fbe3e3}
.meh{background:#f7f3dc}nav a{margin-right:1rem}code{font-size:.85em}img{max-width:100%}
"""


def _page(title: str, body: str, depth: int = 0) -> str:
    up = "../" * depth
    nav = (f'<nav><a href="{up}index.html">Claims</a>'
           + "".join(f'<a href="{up}papers/{p}.html">{p}</a>' for p in PAPER_TITLES)
           + f'<a href="{up}reproduction.html">Reproduction report</a></nav>')
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body>{nav}<h1>{html.escape(title)}</h1>{body}</body></html>\n")


def _markdown(text: str) -> str:
    import mistune
    return mistune.create_markdown(plugins=["table"], escape=False)(text)


def _manifests(root: Path) -> list[dict]:
    """Every table / figure manifest of the published profiles, with ``_path`` (relative)."""
    out = []
    for kind in ("tables", "figures"):
        for path in sorted((root / kind).glob("*/*.json")):
            parts = path.name.split(".")
            if len(parts) < 3 or parts[-2] not in PROFILES:
                continue
            man = json.loads(path.read_text())
            man["_path"] = path.relative_to(root).as_posix()
            out.append(man)
    return out


def _render_notebooks(root: Path, out: Path) -> dict[str, str]:
    """Executed notebooks -> ``notebooks/<name>.html`` (cpu first, then gpu / paper)."""
    from nbconvert import HTMLExporter
    exporter = HTMLExporter(template_name="lab")
    pages = {}
    for profile in PROFILES:
        for nb in sorted((root / "notebooks" / "executed" / profile).glob("*.ipynb")):
            name = nb.stem if profile == "cpu" else f"{nb.stem}.{profile}"
            body, _ = exporter.from_filename(str(nb))
            dest = out / "notebooks" / f"{name}.html"
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(body, encoding="utf-8")
            pages[name] = f"notebooks/{name}.html"
    return pages


def build_site(root: Path | str | None = None, out: Path | str | None = None) -> Path:
    """Build the site from ``root`` (default: the repository) into ``out`` (default
    ``<root>/build/site``); returns the front page's path. Executes nothing."""
    from .repro import REPO_ROOT
    root = Path(root) if root is not None else REPO_ROOT
    out = Path(out) if out is not None else root / "build" / "site"
    index_csv = root / "tables" / "index.csv"
    if not index_csv.is_file():
        raise FileNotFoundError(f"no results index at {index_csv}: run `python -m paperlib report` first")
    tmp = out.parent / f".{out.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    claims = pd.read_csv(index_csv, keep_default_na=False)
    notebooks = _render_notebooks(root, tmp)
    manifests = _manifests(root)
    by_stem: dict[str, dict] = {}      # "tables/vplr/table2.cpu" -> manifest
    by_notebook: dict[str, list[dict]] = defaultdict(list)
    for man in manifests:
        stem = man["_path"][:-len(".json")]
        by_stem[stem] = man
        by_notebook[man.get("notebook") or ""].append(man)
        folder = tmp / Path(man["_path"]).parent
        folder.mkdir(parents=True, exist_ok=True)
        for f in man.get("files", []) + [Path(man["_path"]).name]:
            src = root / Path(man["_path"]).parent / f
            if src.is_file():
                shutil.copy2(src, folder / f)
        if man["kind"] == "table":
            md = root / f"{stem}.md"
            if md.is_file():
                links = _links(man, notebooks, depth=2)
                (tmp / f"{stem}.html").write_text(_page(f"{man['paper']} / {man['id']} ({man['profile']})",
                                                        links + _markdown(md.read_text()), depth=2), encoding="utf-8")

    def row_links(table: str) -> str:
        stem = table[:-len(".md")] if table.endswith(".md") else table
        man = by_stem.get(stem)
        if man is None:
            return ""
        return _links(man, notebooks, depth=0, figure=_figure_for(man, by_stem))

    rows = []
    for r in claims.itertuples(index=False):
        cls = VERDICT_CLASS.get(r.verdict, "")
        rows.append(f"<tr><td>{html.escape(r.paper)}</td><td>{html.escape(r.item)}</td>"
                    f"<td><code>{html.escape(r.claim_id)}</code> {html.escape(r.text)}</td><td>{html.escape(r.kind)}</td>"
                    f"<td class='{cls}'>{html.escape(r.verdict)}</td><td>{_num(r.paper_effect)}</td>"
                    f"<td>{_num(r.ours_delta)}{(' ± ' + _num(r.ours_se, '.2f')) if _num(r.ours_se) else ''}"
                    f"{(' (n ' + str(r.n) + ')') if str(r.n) else ''}</td><td>{html.escape(str(r.control_status))}</td>"
                    f"<td>{row_links(r.table)}</td></tr>")
    counts = claims.verdict.value_counts()
    summary = ", ".join(f"{n} {v}" for v, n in counts.items())
    head = ("<tr><th>paper</th><th>item</th><th>claim</th><th>kind</th><th>verdict</th><th>paper Δ</th>"
            "<th>ours Δ ± SE</th><th>control</th><th>links</th></tr>")
    intro = (f"<p>Every claim of the five papers that paperlib tests, with the verdict of the committed run "
             f"({len(claims)} claims: {html.escape(summary)}). Verdicts come from <code>paperlib.claims</code> "
             "(paired by seed; directional claims by a one-sided paired t-test, null claims by equivalence, "
             "controls gate their dependants). Each row links to its table, figure, manifest and the executed "
             "notebook that made it.</p>")
    (tmp / "index.html").write_text(_page("paperlib: the papers' claims and their verdicts",
                                          intro + f"<table id='verdicts'>{head}{''.join(rows)}</table>"),
                                    encoding="utf-8")
    (tmp / "papers").mkdir(exist_ok=True)
    for paper, title in PAPER_TITLES.items():
        sub = claims[claims.paper == paper]
        mans = [m for m in manifests if m["paper"] == paper]
        items = "".join(f"<li>{_links(m, notebooks, depth=1, figure=_figure_for(m, by_stem))} "
                        f"<code>{html.escape(m['_path'])}</code></li>" for m in mans if m["kind"] == "table")
        figs = "".join(f"<figure><img src='../{html.escape(_figure_file(m))}' alt='{html.escape(m['id'])}'>"
                       f"<figcaption>{html.escape(m['_path'])}</figcaption></figure>"
                       for m in mans if m["kind"] == "figure" and (_figure_file(m) or "").endswith((".png", ".svg")))
        body = (f"<p>{len(sub)} claims: " + html.escape(", ".join(f"{n} {v}" for v, n in sub.verdict.value_counts().items()))
                + f"</p><h2>Tables</h2><ul>{items}</ul><h2>Figures</h2>{figs}")
        (tmp / "papers" / f"{paper}.html").write_text(_page(title, body, depth=1), encoding="utf-8")
    report = root / "tables" / "REPRODUCTION.md"
    (tmp / "reproduction.html").write_text(_page("Reproduction report", _markdown(report.read_text())
                                                 if report.is_file() else "<p>(no report)</p>"), encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out / "index.html"


def _num(x, fmt: str = "+.2f") -> str:
    try:
        return format(float(x), fmt) if str(x) not in ("", "nan") else ""
    except ValueError:
        return html.escape(str(x))


def _figure_file(man: dict) -> str | None:
    """The figure's image (or video) file, relative to the root."""
    folder = man["_path"].rsplit("/", 1)[0]
    name = next((f for f in man.get("files", []) if f.endswith((".png", ".svg", ".jpg", ".avi", ".mp4"))), None)
    return f"{folder}/{name}" if name else None


def _figure_for(man: dict, by_stem: dict) -> dict | None:
    stem = f"figures/{man['paper']}/{man['id']}.{man['profile']}"
    return by_stem.get(stem)


def _links(man: dict, notebooks: dict[str, str], depth: int, figure: dict | None = None) -> str:
    up = "../" * depth
    stem = man["_path"][:-len(".json")]
    links = [f"<a href='{up}{stem}.html'>table</a>" if man["kind"] == "table" else "",
             f"<a href='{up}{_figure_file(figure)}'>figure</a>" if figure and _figure_file(figure) else "",
             f"<a href='{up}{man['_path']}'>manifest</a>"]
    nb = man.get("notebook")
    page = notebooks.get(nb if man["profile"] == "cpu" else f"{nb}.{man['profile']}") if nb else None
    if page:
        links.append(f"<a href='{up}{page}'>notebook</a>")
    return " · ".join(x for x in links if x)
