"""The companion site, built from what is committed and opened in a real browser (headless
Chromium): the front page holds the verdict table with a row per claim of the results index, and
every internal link of every page resolves to a file of the site."""
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlparse

import pandas as pd
import pytest

from paperlib.repro import REPO_ROOT
from paperlib.site import build_site

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _dom(page: Path) -> str:
    """The page as Chromium rendered it (scripts run, DOM serialised)."""
    out = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return build_site(REPO_ROOT, tmp_path_factory.mktemp("site") / "site")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (Debian's chromium package; .ci/run installs it)")
def test_front_page_renders_the_verdicts_and_every_link_resolves(site):
    dom = _dom(site)
    claims = pd.read_csv(REPO_ROOT / "tables" / "index.csv", keep_default_na=False)
    table = re.search(r"<table id=\"verdicts\">(.*?)</table>", dom, re.S)
    assert table, "no verdict table on the front page"
    assert table.group(1).count("<tr>") == len(claims) + 1  # header + one row per claim
    for verdict in set(claims.verdict):
        assert f">{verdict}<" in table.group(1)
    root = site.parent
    pages = [site] + sorted(root.glob("papers/*.html")) + sorted(root.glob("tables/*/*.html"))[:5]
    checked = 0
    for page in pages:
        text = _dom(page) if page == site else page.read_text()
        for href in re.findall(r"(?:href|src)=[\"']([^\"'#]+)[\"']", text):
            url = urlparse(href)
            if url.scheme in ("http", "https", "data", "mailto"):
                continue
            target = (page.parent / unquote(url.path)).resolve() if not url.scheme else Path(unquote(url.path))
            assert target.is_file(), f"{page.relative_to(root)} links to missing {href}"
            checked += 1
    assert checked > len(claims)  # the front page alone links each claim's table
