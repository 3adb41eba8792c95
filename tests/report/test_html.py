"""The report page in a real browser: Debian's headless chromium over the DevTools Protocol."""

from __future__ import annotations

import html
import re
import time

import pytest

from atlas_ray.report import ReportSettings, build_report, load_experiment_for_report
from atlas_ray.report._html import MEANINGS
from tests.report._browser import chromium_page

pytestmark = pytest.mark.slow  # writes a whole report, opens it in chromium: not in scripts/test.sh --quick


@pytest.fixture(scope="module")
def built(report_experiments, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "june"
    experiments = [load_experiment_for_report(str(report_experiments[n])) for n in ("june_a", "june_b")]
    settings = ReportSettings(out=out, top=1, filters={"unit": "three_class"})
    return build_report(experiments, settings)


def test_the_report_directory_holds_the_page_and_the_pngs(built):
    out = built.index.parent
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert built.figures == len(pngs) > 10
    assert all((out / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    page = built.index.read_text()
    assert page.count("data:image/png;base64,") == len(pngs)
    assert "{{img:" not in page
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=\"http", page), "the page must fetch nothing"
    assert "Experiments side by side" in page and "Missing or incomplete" in page
    assert not list(out.parent.glob(".june.tmp-*")), "the temporary build directory was left behind"


def test_every_text_fits_its_figure(built):
    """Every figure's titles and labels lie inside the figure (rendered bounding boxes, checked when
    each PNG is saved)."""
    assert built.clipped == ()


def test_the_page_says_how_much_of_the_best_is_luck_and_on_which_data(built):
    page = html.unescape(re.sub(r"<[^>]+>", "", built.index.read_text()))
    for name in ("sharpe", "dsr", "pbo"):
        assert MEANINGS[name] in page
    assert MEANINGS["ic"] not in page  # only three_class trials here; the regressors' IC: test_cli
    assert page.count("Data: the validation rows of each trial's predictions (the validation part)") == 2
    assert "The test rows are never used here." in page
    assert "Deflated Sharpe ratio (Bailey and López de Prado, 2014)" in page
    assert re.search(r"PBO = 0\.\d{3} over 12,870 splits of 4320 rows", page)
    assert (built.index.parent / "june_a_pbo.png").exists()


def test_the_page_loads_in_chromium_sorts_and_shows_every_image(built):
    with chromium_page() as page:
        page.send("Page.navigate", url=built.index.as_uri())
        page.wait_event("Page.loadEventFired", timeout=120)
        images = page.evaluate(
            "Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
        assert len(images) == built.figures
        assert all(done and width > 0 and height > 0 for done, width, height in images), images

        first_column = ("Array.from(document.querySelector('table.sortable.trials').tBodies[0].rows)"
                        ".map(r => r.cells[0].textContent)")
        before = page.evaluate(first_column)
        assert len(before) == 11  # the three_class unit: 6 SGD, 4 logistic (one failed), 1 majority
        # click the "trial_id" header with a real mouse event at its position on screen
        box = page.evaluate(
            "(() => { const th = document.querySelector('table.sortable.trials th'); th.scrollIntoView();"
            " const r = th.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        page.click(*box)
        time.sleep(0.2)
        after = page.evaluate(first_column)
        assert after == sorted(before) and after != before
        page.click(*box)
        time.sleep(0.2)
        assert page.evaluate(first_column) == sorted(before, reverse=True)

        # a numeric column sorts as numbers, NaN ("-") last
        accuracy = page.evaluate(
            "(() => { const t = document.querySelector('table.sortable.trials');"
            " const i = Array.from(t.tHead.rows[0].cells)"
            "   .findIndex(c => c.textContent.startsWith('accuracy'));"
            " t.tHead.rows[0].cells[i].click();"
            " return Array.from(t.tBodies[0].rows).map(r => r.cells[i].getAttribute('data-v')); })()")
        numbers = [float(v) for v in accuracy if v]
        assert numbers == sorted(numbers) and accuracy[-1] == ""
        assert page.errors() == []


def test_the_summary_table_stays_readable_in_a_1400_pixel_window(built):
    """The page never scrolls sideways at 1400 pixels: a wide table scrolls inside its own box, whose
    first column (the trial) stays in view."""
    with chromium_page() as page:
        page.send("Emulation.setDeviceMetricsOverride", width=1400, height=900, deviceScaleFactor=1,
                  mobile=False)
        page.send("Page.navigate", url=built.index.as_uri())
        page.wait_event("Page.loadEventFired", timeout=120)
        assert page.evaluate("window.innerWidth") == 1400
        assert page.evaluate("document.documentElement.scrollWidth") <= 1400
        boxes = page.evaluate(
            "Array.from(document.querySelectorAll('.scroll')).map(d => d.getBoundingClientRect().right)")
        assert boxes and max(boxes) <= 1400
        wide = page.evaluate(
            "(() => { const t = document.querySelector('table.sortable.trials'); const box = t.parentElement;"
            " box.scrollLeft = box.scrollWidth;"
            " const first = t.tBodies[0].rows[0].cells[0].getBoundingClientRect();"
            " const last = t.tHead.rows[0].cells[t.tHead.rows[0].cells.length - 1].getBoundingClientRect();"
            " const frame = box.getBoundingClientRect();"
            " return [t.scrollWidth, box.clientWidth, first.left - frame.left,"
            "         last.right - frame.right]; })()")
        table_width, box_width, first_left, last_right = wide
        assert table_width > box_width, "the trials table is expected to be wider than the window here"
        assert abs(first_left) <= 2, "the trial column scrolled out of view"
        assert last_right <= 2, "the last column cannot be scrolled into view"
        images = page.evaluate("Array.from(document.images).map(i => i.getBoundingClientRect().right)")
        assert max(images) <= 1400
        assert page.errors() == []
