"""The analysis report as one self-contained HTML file, with every table beside it as a CSV file.

The HTML embeds its charts (PNG drawn by matplotlib's Agg backend, as data: URIs) and its styles, so it
can be mailed or archived as one file. The CSVs are UTF-8 with a byte-order mark: without it Excel
reads them in the system's legacy code page and garbles the Japanese.
"""

from __future__ import annotations

import base64
import csv
import io
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import jinja2
from markupsafe import Markup
from matplotlib import font_manager, rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from bot.guidance.content import Content
from bot.reporting.figures import WAIT_BIN_EDGES, WEEKDAYS_EN, WEEKDAYS_JA, Counts, Rate, Report
from bot.storage.models import FlagState

TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)

# Fonts with Japanese glyphs, most likely first (IPAGothic is Debian's fonts-ipafont-gothic).
JAPANESE_FONTS = ("IPAGothic", "IPAPGothic", "Noto Sans CJK JP", "Noto Sans JP", "TakaoGothic", "VL Gothic",
                  "Hiragino Sans", "Yu Gothic", "Meiryo")

# Names of ids the report has fixed words for; the rest come from the content (see `labels_from_content`).
FIXED_LABELS: dict[str, dict[str, str]] = {
    "risk": {"low": "低", "medium": "中", "high": "高", "imminent": "緊急"},
    "referrals": {"proposed": "提案中", "consented": "同意", "declined": "辞退", "contacted": "連絡済み",
                  "connected": "つながった", "closed": "終了"},
    "records": {"unrecorded": "未記入"},
    "flag_states": {"open": "未確認", "confirmed": "確認済み", "relabelled": "段階変更", "dismissed": "却下"},
}

# The `Counts` figures every breakdown table shows: (attribute, Japanese heading).
COUNT_COLUMNS = (
    ("arrived", "受付件数"),
    ("in_hours", "受付時間内"),
    ("out_of_hours", "受付時間外"),
    ("answered", "応答件数"),
    ("answered_in_hours", "時間内の応答"),
    ("rate_in_hours", "応答率（受付時間内）"),
    ("rate_all", "応答率（全受付）"),
    ("abandoned", "応答前の離脱"),
    ("unserved", "時間外対応"),
)

Labels = Mapping[str, Mapping[str, str]]
FLAG_STATES = [state.value for state in FlagState]
ROOM_SESSION_STATES = (("closed", "開催"), ("cancelled", "中止"), ("open", "開催中"), ("scheduled", "予定"))
ROOM_HELD_REASONS = (("contact", "連絡先"), ("risk", "高リスク"), ("muted", "発言停止中"), ("media", "画像など"))
# What sent messages belong to besides consultation categories (`OutboxMessage.category`).
DELIVERY_NAMES = {"guidance": "ボットの案内", "rooms": "オンライン居場所"}
ROOM_CHECKINS = (("better", "楽になった"), ("same", "変わらない"), ("worse", "しんどくなった"))


def labels_from_content(content: Content) -> dict[str, dict[str, str]]:
    """The display names of categories and record choices, by kind (the same id can mean different things)."""
    records = content.records
    return {
        "categories": {category.id: category.label for category in content.menu.categories},
        "rooms": {room.id: room.title for room in content.rooms.rooms},
        **{kind: {choice.id: choice.label for choice in getattr(records, kind)}
           for kind in ("age_bands", "genders", "worries", "responses")},
    }


@dataclass(frozen=True)
class Table:
    """One table of the report: shown in the HTML and written as `<name>.csv`."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[object]]


@dataclass(frozen=True)
class Chart:
    name: str
    title: str
    image: str  # a data: URI


def heading(japanese: str, english: str) -> str:
    """A column heading readable by staff and by scripts: `受付件数 (arrived)`."""
    return f"{japanese} ({english})"


def report_tables(report: Report, labels: Labels | None = None) -> list[Table]:
    """Every table of the report, with raw values (a `Rate` stays a `Rate` until it is written)."""
    name = _namer(labels)
    counts_heads = [heading(ja, en) for en, ja in COUNT_COLUMNS]
    totals = report.totals
    staffing = report.staffing()

    def count_cells(counts: Counts) -> list[object]:
        return [getattr(counts, attribute) for attribute, _ in COUNT_COLUMNS]

    def tally(table: str, title: str, kind: str, counted: Mapping[str, int]) -> Table:
        rows: list[list[object]] = [[key, name(kind, key), count] for key, count in counted.items()]
        return Table(table, title, [heading("区分", "id"), heading("名称", "label"), heading("件数", "count")], rows)

    summary: list[list[object]] = [
        [en, ja, getattr(totals, en)] for en, ja in COUNT_COLUMNS
    ] + [
        ["wait_p50_seconds", "応答までの時間 p50（秒）", report.wait.p50],
        ["wait_p90_seconds", "応答までの時間 p90（秒）", report.wait.p90],
        ["duration_p50_seconds", "相談時間 p50（秒）", report.duration.p50],
        ["duration_p90_seconds", "相談時間 p90（秒）", report.duration.p90],
        ["records_filed", "提出済みの相談記録票", report.records.filed],
        ["serious", "深刻事例", report.records.serious],
        ["referral_needed", "つなぎが必要", report.records.referral_needed],
        ["uncovered_hours", "受付があり対応可の相談員がいない時間帯", sum(1 for hour in staffing if hour.uncovered)],
        ["risk_flags", "リスクフラグ", report.flags.total],
        ["room_people", "居場所に来た人", report.rooms.people],
        ["room_returning", "居場所に二回以上来た人", report.rooms.returning],
    ]
    wait_names = _wait_bin_names()
    return [
        Table("summary", "概要 / Summary", [heading("指標", "metric"), heading("項目", "label"), heading("値", "value")], summary),
        Table("by_category", "カテゴリ別 / By category", [heading("カテゴリ", "category"), heading("名称", "label"), *counts_heads],
              [[key, name("categories", key), *count_cells(c)] for key, c in report.by_category.items()]),
        Table("by_hour", "時間帯別 / By hour of day", [heading("時", "hour"), *counts_heads],
              [[hour, *count_cells(c)] for hour, c in enumerate(report.by_hour())]),
        Table("by_weekday", "曜日別 / By day of week", [heading("曜日", "weekday"), *counts_heads],
              [[WEEKDAYS_JA[day], *count_cells(c)] for day, c in enumerate(report.by_weekday())]),
        *(
            Table(f"heatmap_{figure}", f"曜日×時間帯の{ja} / {en} by weekday and hour",
                  [heading("曜日", "weekday"), *map(str, range(24))],
                  [[WEEKDAYS_JA[day], *row] for day, row in enumerate(report.heatmap(figure))])
            for figure, ja, en in (("arrived", "受付件数", "Arrivals"), ("answered", "応答件数", "Answered"))
        ),
        Table("wait_distribution", "応答までの時間の分布 / Time to answer",
              [heading("待ち時間", "wait"), heading("上限（秒）", "up_to_seconds"), heading("件数", "count")],
              [[wait_names[i], edge, count] for i, (edge, count) in enumerate(zip([*WAIT_BIN_EDGES, None], report.wait_bins, strict=True))]),
        Table("by_risk", "リスク段階別 / By risk level", [heading("段階", "level"), heading("名称", "label"), *counts_heads],
              [[level, name("risk", level), *count_cells(c)] for level, c in report.by_risk.items()]),
        tally("age_bands", "年代 / Age bands", "age_bands", report.records.age_bands),
        tally("genders", "性別 / Genders", "genders", report.records.genders),
        tally("worries", "相談内容 / Worries", "worries", report.records.worries),
        tally("responses", "対応内容 / Responses", "responses", report.records.responses),
        tally("referrals", "つなぎの状態 / Referrals by status", "referrals", report.referrals),
        Table("staffing", "時間帯別の需要と体制 / Demand and counselors available by hour",
              [heading("時", "hour"), heading("受付件数", "arrived"), heading("相談員・時間", "counselor_hours"),
               heading("平均の対応可人数", "average_counselors"), heading("1相談員・時間あたりの受付", "arrived_per_counselor_hour"),
               heading("対応可なし", "nobody_available")],
              [[h.hour, h.arrived, round(h.counselor_hours, 2), round(h.average_counselors, 2),
                None if h.per_counselor_hour is None else round(h.per_counselor_hour, 2), "はい" if h.uncovered else ""]
               for h in staffing]),
        Table("risk_flags", "リスクフラグ（段階×確認状態） / Risk flags by level and review state",
              [heading("段階", "level"), heading("名称", "label"),
               *(heading(name("flag_states", state), state) for state in FLAG_STATES), heading("計", "total")],
              [[level, name("risk", level), *(states.get(state, 0) for state in FLAG_STATES), sum(states.values())]
               for level, states in report.flags.by_level.items()]),
        Table("risk_flags_by_source", "リスクフラグの出どころ / Risk flags by source",
              [heading("出どころ", "source"), heading("件数", "count")], [[source, count] for source, count in report.flags.by_source.items()]),
        Table("deliveries", "送ったメッセージ（返信は無料、プッシュは月の通数に数える） / Messages sent: free replies and counted pushes",
              [heading("分野", "category"), heading("名称", "label"), heading("返信（無料）", "free_replies"),
               heading("プッシュ・マルチキャスト", "counted_pushes"), heading("返信の割合", "free_share")],
              [[key, DELIVERY_NAMES.get(key) or name("categories", key), d.free, d.charged, d.free_share]
               for key, d in report.deliveries.items()]),
        Table("rooms", "オンライン居場所（部屋別） / Online ibasho by room",
              [heading("部屋", "room"), heading("名称", "label"),
               *(heading(ja, f"sessions_{status}") for status, ja in ROOM_SESSION_STATES),
               heading("参加者", "participants"), heading("発言", "messages"),
               *(heading(f"止めた発言（{ja}）", f"held_{why}") for why, ja in ROOM_HELD_REASONS),
               heading("途中退室", "left_early"), heading("退室処置", "removed"), heading("通報", "reports"),
               *(heading(f"気持ち：{ja}", f"checkin_{answer}") for answer, ja in ROOM_CHECKINS)],
              [[room_id, name("rooms", room_id), *(report.rooms.sessions[room_id].get(status, 0) for status, _ in ROOM_SESSION_STATES),
                m.participants, m.messages, *(m.held.get(why, 0) for why, _ in ROOM_HELD_REASONS),
                m.leaves, m.removed, m.reports, *(m.checkins.get(answer, 0) for answer, _ in ROOM_CHECKINS)]
               for room_id, m in report.rooms.by_room.items()]),
    ]


STEPS = ("tables", "charts", "html")


def write_report(
    report: Report, out_dir: Path, labels: Labels | None = None, tick: Callable[[], None] = lambda: None
) -> Path:
    """Write `report.html` and one CSV per table into `out_dir`; returns the HTML file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = report_tables(report, labels)
    for table in tables:
        write_csv(out_dir / f"{table.name}.csv", table)
    tick()
    charts = draw_charts(report, labels)
    tick()
    html = render_report(report, tables, charts)
    path = out_dir / "report.html"
    path.write_text(html, encoding="utf-8")
    tick()
    return path


def render_report(report: Report, tables: list[Table], charts: list[Chart]) -> str:
    """The report as one self-contained HTML page (charts embedded), with links to the CSVs beside it."""
    template = TEMPLATES.get_template("report.html")
    return template.render(_variables(report, tables, charts, csv_links=True))


def report_section(report: Report, labels: Labels | None = None) -> Markup:
    """The report as a part of a console page: its scoped styles and its body, without the CSV links.

    Tables and charts are made here (CPU-bound: callers on an event loop run it in a thread). The
    console page has its own document head, so only the template's `styles` and `report` blocks are rendered.
    """
    template = TEMPLATES.get_template("report.html")
    context = template.new_context(_variables(report, report_tables(report, labels), draw_charts(report, labels), csv_links=False))
    return Markup("".join(part for block in ("styles", "report") for part in template.blocks[block](context)))


def _variables(report: Report, tables: list[Table], charts: list[Chart], *, csv_links: bool) -> dict[str, object]:
    return {
        "report": report,
        "totals": report.totals,
        "tables": tables,
        "charts": charts,
        "created": datetime.now(report.period.zone),
        "cell": _cell,
        "csv_links": csv_links,
    }


def write_csv(path: Path, table: Table) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(table.columns)
        writer.writerows([[_csv_value(value) for value in row] for row in table.rows])


def _csv_value(value: object) -> object:
    if isinstance(value, Rate):
        return "" if value.value is None else round(value.value, 4)
    return "" if value is None else value


def _cell(value: object) -> str:
    """A table value as shown in the HTML."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _namer(labels: Labels | None) -> Callable[[str, str], str]:
    def name(kind: str, key: str) -> str:
        known = {**FIXED_LABELS.get(kind, {}), **(labels or {}).get(kind, {}), **FIXED_LABELS["records"]}
        return known.get(key, key)

    return name


def _wait_bin_names() -> list[str]:
    minutes = [edge // 60 for edge in WAIT_BIN_EDGES]
    lower = [0, *minutes]
    return [f"{low}〜{high}分" for low, high in zip(lower, minutes, strict=False)] + [f"{minutes[-1]}分超"]


def japanese_font() -> str | None:
    """The first installed font that can draw Japanese, if any."""
    installed = {font.name for font in font_manager.fontManager.ttflist}
    return next((name for name in JAPANESE_FONTS if name in installed), None)


def draw_charts(report: Report, labels: Labels | None = None) -> list[Chart]:
    """Every chart of the report as a PNG data URI.

    Without a Japanese font the charts speak English and show ids, rather than rows of empty boxes.
    """
    font = japanese_font()
    japanese = font is not None
    name = _namer(labels) if japanese else (lambda _kind, key: key)

    def say(ja: str, en: str) -> str:
        return ja if japanese else en

    weekdays = list(WEEKDAYS_JA) if japanese else list(WEEKDAYS_EN)
    style = {"font.family": [font, "DejaVu Sans"] if font else ["DejaVu Sans"], "figure.dpi": 100}
    with rc_context(style), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing")
        categories = list(report.by_category)
        return [
            Chart("by_category", say("カテゴリ別の受付と応答率", "Arrivals and response rate by category"),
                  _arrivals_and_rates([name("categories", c) for c in categories], list(report.by_category.values()), say, rotate=True)),
            Chart("by_hour", say("時間帯別の受付と応答率", "Arrivals and response rate by hour"),
                  _arrivals_and_rates([str(hour) for hour in range(24)], report.by_hour(), say)),
            Chart("heatmap", say("曜日×時間帯の受付件数と応答件数", "Arrivals and answers by weekday and hour"),
                  _heatmaps(report, weekdays, say)),
            Chart("wait_distribution", say("応答までの時間の分布", "Time to answer"),
                  _bars(_wait_bin_names() if japanese else _wait_bin_names_en(), report.wait_bins, say("件数", "requests"))),
            Chart("by_risk", say("リスク段階別の受付と応答", "Arrivals and answers by risk level"),
                  _arrivals_and_rates([name("risk", level) for level in report.by_risk], list(report.by_risk.values()), say)),
            Chart("staffing", say("時間帯別の需要と対応可の相談員（相談員・時間）", "Demand and counselor-hours available by hour"),
                  _staffing(report, say)),
            Chart("worries_responses", say("相談内容と対応内容（相談記録票）", "Worries and responses (records)"),
                  _choices(report, name, say)),
        ]


def _wait_bin_names_en() -> list[str]:
    minutes = [edge // 60 for edge in WAIT_BIN_EDGES]
    return [f"{low}-{high} min" for low, high in zip([0, *minutes], minutes, strict=False)] + [f">{minutes[-1]} min"]


def _png(figure: Figure) -> str:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _arrivals_and_rates(names: Sequence[str], counts: Sequence[Counts], say: Callable[[str, str], str], *, rotate: bool = False) -> str:
    figure = Figure(figsize=(10, 4.2), layout="constrained")
    axes = figure.add_subplot()
    positions = range(len(names))
    width = 0.4
    axes.bar([p - width / 2 for p in positions], [c.arrived for c in counts], width, label=say("受付件数", "arrived"), color="#9db4d3")
    axes.bar([p + width / 2 for p in positions], [c.answered for c in counts], width, label=say("応答件数", "answered"), color="#2f5f98")
    axes.set_xticks(list(positions), names, rotation=30 if rotate else 0, ha="right" if rotate else "center")
    axes.set_ylabel(say("件数", "requests"))
    rates = axes.twinx()
    for attribute, label, colour in (("rate_in_hours", say("応答率（受付時間内）", "response rate (in hours)"), "#d0612b"),
                                     ("rate_all", say("応答率（全受付）", "response rate (all)"), "#6a9f3a")):
        values = [getattr(c, attribute).value for c in counts]
        rates.plot(list(positions), [float("nan") if v is None else v * 100 for v in values], marker="o", label=label, color=colour)
    rates.set_ylim(0, 105)
    rates.set_ylabel("%")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    handles = axes.get_legend_handles_labels()[0] + rates.get_legend_handles_labels()[0]
    figure.legend(handles, [h.get_label() for h in handles], loc="outside upper center", ncols=4, fontsize="small")
    return _png(figure)


def _heatmaps(report: Report, weekdays: list[str], say: Callable[[str, str], str]) -> str:
    figure = Figure(figsize=(11, 5.5), layout="constrained")
    for row, (figure_name, title) in enumerate((("arrived", say("受付件数", "arrived")), ("answered", say("応答件数", "answered")))):
        axes = figure.add_subplot(2, 1, row + 1)
        image = axes.imshow(report.heatmap(figure_name), aspect="auto", cmap="Blues")
        axes.set_title(title, fontsize="medium")
        axes.set_yticks(range(7), weekdays)
        axes.set_xticks(range(24), [str(hour) for hour in range(24)], fontsize="small")
        zone = report.period.zone.key
        axes.set_xlabel(say(f"時（{zone}）", f"hour ({zone})"))
        figure.colorbar(image, ax=axes)
    return _png(figure)


def _bars(names: Sequence[str], values: Sequence[int], ylabel: str) -> str:
    figure = Figure(figsize=(8, 3.6), layout="constrained")
    axes = figure.add_subplot()
    axes.bar(list(names), list(values), color="#2f5f98")
    axes.set_ylabel(ylabel)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.tick_params(axis="x", labelsize="small")
    return _png(figure)


def _choices(report: Report, name: Callable[[str, str], str], say: Callable[[str, str], str]) -> str:
    figure = Figure(figsize=(11, 4.5), layout="constrained")
    for column, (kind, counted, title) in enumerate((("worries", report.records.worries, say("相談内容", "worries")),
                                                     ("responses", report.records.responses, say("対応内容", "responses")))):
        axes = figure.add_subplot(1, 2, column + 1)
        keys = list(counted)[::-1]  # the most frequent at the top
        axes.barh([name(kind, key) for key in keys], [counted[key] for key in keys], color="#2f5f98")
        axes.set_title(title, fontsize="medium")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    return _png(figure)


def _staffing(report: Report, say: Callable[[str, str], str]) -> str:
    """Arrivals as bars (red where nobody was available), counselor-hours as a line on their own axis."""
    staffing = report.staffing()
    figure = Figure(figsize=(10, 4.2), layout="constrained")
    axes = figure.add_subplot()
    hours = [h.hour for h in staffing]
    axes.bar(hours, [h.arrived for h in staffing], color=["#c0392b" if h.uncovered else "#9db4d3" for h in staffing],
             label=say("受付件数（赤：対応可なし）", "arrived (red: nobody available)"))
    axes.set_xticks(hours, [str(hour) for hour in hours])
    zone = report.period.zone.key
    axes.set_xlabel(say(f"時（{zone}）", f"hour ({zone})"))
    axes.set_ylabel(say("件数", "requests"))
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    cover = axes.twinx()
    cover.plot(hours, [h.counselor_hours for h in staffing], marker="o", color="#2f5f98", label=say("相談員・時間", "counselor-hours"))
    cover.set_ylim(bottom=0)
    cover.set_ylabel(say("相談員・時間", "counselor-hours"))
    handles = axes.get_legend_handles_labels()[0] + cover.get_legend_handles_labels()[0]
    figure.legend(handles, [h.get_label() for h in handles], loc="outside upper center", ncols=2, fontsize="small")
    return _png(figure)
