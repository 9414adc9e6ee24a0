"""The written report: CSVs that Excel and the csv module read and that match the figures, and an HTML page
whose charts really load in a browser."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from report_sample import (
    EXPECTED_COUNSELOR_HOURS,
    EXPECTED_FLAGS,
    EXPECTED_TOTALS,
    EXPECTED_UNCOVERED,
    EXPECTED_WAIT,
    EXPECTED_WAIT_BINS,
    PERIOD,
    fill,
    utc,
)

from bot.reporting import html as report_html
from bot.reporting.figures import Report, build_report
from bot.reporting.html import heading, labels_from_content, report_tables, write_report
from bot.storage.db import create_engine, session_factory
from bot.storage.models import clock_at

CHARTS = ("by_category", "by_hour", "heatmap", "wait_distribution", "by_risk", "staffing", "worries_responses")


@pytest.fixture
async def report(sqlite_url: str) -> Report:
    engine = create_engine(sqlite_url)
    try:
        await fill(engine)
        with clock_at(utc("2026-11-27T00:00")):
            async with session_factory(engine)() as session:
                return await build_report(session, PERIOD)
    finally:
        await engine.dispose()


@pytest.fixture
def written(report: Report, content, tmp_path: Path) -> Path:
    return write_report(report, tmp_path / "out", labels_from_content(content))


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as file:
        return list(csv.DictReader(file))


def test_every_table_is_a_csv_with_a_byte_order_mark(report: Report, written: Path) -> None:
    for table in report_tables(report):
        path = written.parent / f"{table.name}.csv"
        assert path.read_bytes().startswith(b"\xef\xbb\xbf"), path.name
        assert len(read_csv(path)) == len(table.rows), path.name


def test_summary_csv_matches_the_figures(written: Path) -> None:
    values = {row[heading("指標", "metric")]: row[heading("値", "value")] for row in read_csv(written.parent / "summary.csv")}
    for name, expected in EXPECTED_TOTALS.items():
        assert int(values[name]) == expected, name
    assert float(values["rate_in_hours"]) == pytest.approx(0.6)
    assert float(values["rate_all"]) == pytest.approx(0.5)
    assert float(values["wait_p50_seconds"]) == pytest.approx(EXPECTED_WAIT[1])
    assert float(values["wait_p90_seconds"]) == pytest.approx(EXPECTED_WAIT[2])


def test_breakdown_csvs_match_the_figures(written: Path) -> None:
    by_category = {row[heading("カテゴリ", "category")]: row for row in read_csv(written.parent / "by_category.csv")}
    poverty = by_category["poverty"]
    assert poverty[heading("名称", "label")] == "生活困窮"
    assert int(poverty[heading("受付件数", "arrived")]) == 4
    assert float(poverty[heading("応答率（受付時間内）", "rate_in_hours")]) == pytest.approx(0.5)
    assert float(poverty[heading("応答率（全受付）", "rate_all")]) == pytest.approx(0.25)

    midnight = read_csv(written.parent / "by_hour.csv")[0]
    assert (int(midnight[heading("受付件数", "arrived")]), int(midnight[heading("応答件数", "answered")])) == (2, 1)

    heatmap = {row[heading("曜日", "weekday")]: row for row in read_csv(written.parent / "heatmap_arrived.csv")}
    assert heatmap["水"]["0"] == "1" and heatmap["火"]["15"] == "0"

    waits = [int(row[heading("件数", "count")]) for row in read_csv(written.parent / "wait_distribution.csv")]
    assert waits == EXPECTED_WAIT_BINS

    worries = {row[heading("区分", "id")]: row for row in read_csv(written.parent / "worries.csv")}
    assert worries["family"][heading("名称", "label")] == "家庭や家族" and worries["family"][heading("件数", "count")] == "3"


def test_staffing_and_risk_flag_csvs_match_the_figures(written: Path) -> None:
    staffing = read_csv(written.parent / "staffing.csv")
    hours = [float(row[heading("相談員・時間", "counselor_hours")]) for row in staffing]
    assert hours == pytest.approx([EXPECTED_COUNSELOR_HOURS.get(hour, 0.0) for hour in range(24)])
    assert [int(row[heading("時", "hour")]) for row in staffing if row[heading("対応可なし", "nobody_available")]] == EXPECTED_UNCOVERED
    assert float(staffing[12][heading("1相談員・時間あたりの受付", "arrived_per_counselor_hour")]) == pytest.approx(2.0)
    assert staffing[3][heading("1相談員・時間あたりの受付", "arrived_per_counselor_hour")] == ""

    flags = {row[heading("段階", "level")]: row for row in read_csv(written.parent / "risk_flags.csv")}
    assert {level: int(flags[level][heading("未確認", "open")]) for level in EXPECTED_FLAGS} == {
        level: states["open"] for level, states in EXPECTED_FLAGS.items()
    }
    assert int(flags["medium"][heading("計", "total")]) == 3
    sources = {row[heading("出どころ", "source")]: int(row[heading("件数", "count")]) for row in read_csv(written.parent / "risk_flags_by_source.csv")}
    assert sources["model"] == 2


def test_html_holds_every_chart_and_no_record_text(written: Path) -> None:
    html = written.read_text(encoding="utf-8")
    for chart in CHARTS:
        assert f'id="chart-{chart}"' in html
    assert html.count('src="data:image/png;base64,') == len(CHARTS)
    assert "本文は集計に使わない" not in html  # the record's note is never copied
    assert "応答率（受付時間内）" in html and "Response rate (in hours)" in html


@pytest.mark.browser
async def test_charts_load_in_a_browser(written: Path, browser, tmp_path: Path) -> None:
    page = await browser.new_page(viewport={"width": 1200, "height": 900})
    await page.goto(written.as_uri())
    sizes = await page.eval_on_selector_all(
        "img.chart", "images => images.map(i => [i.complete, i.naturalWidth, i.getBoundingClientRect().width, i.getBoundingClientRect().height])"
    )
    assert len(sizes) == len(CHARTS)
    for complete, natural_width, width, height in sizes:
        assert complete and natural_width > 0 and width > 0 and height > 0
    await page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert (tmp_path / "report.png").stat().st_size > 0


def test_without_a_japanese_font_the_charts_speak_english(report: Report, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report_html, "japanese_font", lambda: None)
    charts = report_html.draw_charts(report)
    assert [chart.name for chart in charts] == list(CHARTS)
    assert charts[0].title == "Arrivals and response rate by category"
    assert all(chart.image.startswith("data:image/png;base64,") for chart in charts)
