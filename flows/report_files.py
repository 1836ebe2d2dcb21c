"""Form 1-РП «Сведения по ранней помощи детям целевой группы»: its rows from the statistics, and the
form as XLSX and PDF.

The form's official layout could not be found (docs/readme/reports.md says what is assumed): its
sections follow what the federal plan asks the regions to report — children of the target group
identified, in need, served (with an ИПРП or consultations), completed and transitioned, coverage,
timeliness, services by form, inter-agency work, providers. Every number comes from
api/services/statistics.py (`Statistics`, part C's definitions) except the age groups and the
providers, which the statistics do not hold (`Extras`, computed in flows/reports.py).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date
from xml.sax.saxutils import escape

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from api.services.statistics import Breakdown, Cell, Median, Share, Statistics
from flows.documents import _fonts

TITLE = "Форма 1-РП «Сведения по ранней помощи детям целевой группы»"
NO_DATA = "нет данных в системе"

# Age at the first referral of the period (whole years), the groups of the target group (0-3).
AGE_GROUPS: list[tuple[str, str]] = [
    ("under_1", "до 1 года"),
    ("1_to_2", "от 1 года до 2 лет"),
    ("2_to_3", "от 2 до 3 лет"),
    ("3_and_over", "3 года и старше"),
]


@dataclass
class Extras:
    """What the form asks and the statistics do not hold (flows/reports.py counts it)."""

    ages: Breakdown  # children identified in the period by age at their first referral in it
    # The region's active early-help providers when the report is made (the public registry's data,
    # part A): in all, by ownership (None: not stated) and by the forms of work they offer.
    providers_total: int
    providers_by_ownership: dict[str | None, int] = field(default_factory=dict)
    providers_by_form: list[tuple[str, int]] = field(default_factory=list)
    # Active accounts of curators and specialists at those providers: the people who give the
    # services (coordinators and heads excluded). None: not counted.
    specialists: int | None = None


@dataclass
class FormRow:
    code: str  # the row's code in the form, e.g. "2.03"
    label: str
    unit: str  # "чел.", "ед.", "%", "дн."
    value: int | float | None  # None: suppressed, or no data (then `shown` says which)
    shown: str  # what a person reads: «123», «87,5 %», «<5», «нет данных в системе»
    level: int = 0  # 1: a breakdown of the row above


@dataclass
class FormSection:
    code: str
    title: str
    rows: list[FormRow] = field(default_factory=list)


@dataclass
class Form:
    region_name: str
    year: int
    made_on: date
    due_on: date
    suppressed: bool  # the analyst's copy
    min_cell: int
    sections: list[FormSection]
    round_to: int | None = None  # the analyst's copy: counts of children rounded to a multiple of it

    def rows(self) -> list[FormRow]:
        return [row for section in self.sections for row in section.rows]


def _cell_row(code: str, cell: Cell | None, unit: str, label: str | None = None, level: int = 0) -> FormRow:
    if cell is None:
        return FormRow(code, label or "", unit, None, NO_DATA, level)
    shown = cell.shown if cell.suppressed or cell.value is None else f"{cell.value}"
    return FormRow(code, label or cell.label, unit, cell.value, shown or NO_DATA, level)


def _share_row(code: str, share: Share, label: str | None = None) -> FormRow:
    value = round(share.share * 100, 1) if share.share is not None else None
    shown = share.shown or (f"{value:.1f} %".replace(".", ",") if value is not None else "—")
    return FormRow(code, label or share.label, "%", value, shown)


def _median_row(code: str, median: Median) -> FormRow:
    shown = median.shown or (f"{median.days:g}".replace(".", ",") if median.days is not None else "—")
    return FormRow(code, median.label, "дн.", median.days, shown)


def _breakdown_rows(prefix: str, start: int, breakdown: Breakdown, unit: str) -> list[FormRow]:
    return [
        _cell_row(f"{prefix}.{number:02d}", cell, unit, level=1)
        for number, cell in enumerate(breakdown.cells, start=start)
    ]


def _outcome(stats: Statistics, code: str) -> Cell | None:
    try:
        return stats.outcomes.get(code)
    except KeyError:
        return None


def build_form(stats: Statistics, extras: Extras, year: int, made_on: date, due_on: date) -> Form:
    """The form's sections and rows, numbered, from the statistics of the year (exact or suppressed)."""
    children = "чел."
    sections: list[FormSection] = []

    identified = FormSection("1", "Выявление детей целевой группы")
    source = stats.referrals_by_source
    identified.rows.append(_cell_row("1.01", source.total, "ед.", "Поступило направлений в отчётном году"))
    identified.rows += _breakdown_rows("1", 2, source, "ед.")
    base = 2 + len(source.cells)
    # A heading row: a referral may name several criteria, so its breakdown has no total.
    label = "Направления по критериям целевой группы (одно направление может указывать несколько)"
    identified.rows.append(FormRow(f"1.{base:02d}", label, "ед.", None, ""))
    identified.rows += _breakdown_rows("1", base + 1, stats.referrals_by_criterion, "ед.")
    sections.append(identified)

    served = FormSection("2", "Дети целевой группы: нуждаемость и сопровождение")
    codes = [
        ("2.01", "identified"),
        ("2.02", "in_need"),
        ("2.03", "with_ipr"),
        ("2.04", "consultation_only"),
        ("2.05", "no_need"),
        ("2.06", "rejected"),
    ]
    served.rows += [_cell_row(code, _outcome(stats, key), children) for code, key in codes]
    served.rows.append(_share_row("2.07", stats.coverage, "Охват услугами ранней помощи нуждающихся детей"))
    sections.append(served)

    ages = FormSection("3", "Дети, выявленные в отчётном году, по возрасту на дату направления")
    ages.rows.append(_cell_row("3.01", extras.ages.total, children, "Всего детей"))
    ages.rows += _breakdown_rows("3", 2, extras.ages, children)
    sections.append(ages)

    ended = FormSection("4", "Завершение сопровождения")
    ended.rows.append(_cell_row("4.01", _outcome(stats, "completed"), children))
    ended.rows += _breakdown_rows("4", 2, stats.completed_by_reason, children)
    n = 2 + len(stats.completed_by_reason.cells)
    ended.rows.append(_cell_row(f"4.{n:02d}", _outcome(stats, "transitioned"), children))
    ended.rows += _breakdown_rows("4", n + 1, stats.transitioned_to, children)
    n += 1 + len(stats.transitioned_to.cells)
    ended.rows.append(_cell_row(f"4.{n:02d}", _outcome(stats, "declined"), children))
    ended.rows += _breakdown_rows("4", n + 1, stats.declined_by_reason, children)
    n += 1 + len(stats.declined_by_reason.cells)
    ended.rows.append(_cell_row(f"4.{n:02d}", _outcome(stats, "lost_contact"), children))
    sections.append(ended)

    timely = FormSection("5", "Своевременность (сроки стандарта)")
    number = 1
    for timer in stats.timeliness:
        timely.rows.append(_share_row(f"5.{number:02d}", timer.on_time, f"Соблюдён срок: {timer.label}"))
        number += 1
    for median in stats.medians:
        timely.rows.append(_median_row(f"5.{number:02d}", median))
        number += 1
    sections.append(timely)

    services = FormSection("6", "Занятия (услуги) по формам оказания")
    number = 1
    for form in stats.sessions_by_form:
        services.rows.append(_cell_row(f"6.{number:02d}", form.total, "ед.", form.title))
        services.rows += _breakdown_rows("6", number + 1, form, "ед.")
        number += 1 + len(form.cells)
    sections.append(services)

    agencies = FormSection("7", "Межведомственное взаимодействие")
    # Heading rows: requested / accepted / ... count different moments of a transfer (and of a
    # routing), so the tables have no total; the counts are the rows under them.
    agencies.rows.append(FormRow("7.01", stats.transfers.title, "ед.", None, ""))
    agencies.rows += _breakdown_rows("7", 2, stats.transfers, "ед.")
    n = 2 + len(stats.transfers.cells)
    agencies.rows.append(FormRow(f"7.{n:02d}", stats.routings.title, "ед.", None, ""))
    agencies.rows += _breakdown_rows("7", n + 1, stats.routings, "ед.")
    sections.append(agencies)

    providers = FormSection("8", "Организации, оказывающие услуги ранней помощи, и специалисты")
    owned = extras.providers_by_ownership
    providers.rows.append(
        FormRow(
            "8.01",
            "Организаций, оказывающих услуги ранней помощи (всего)",
            "ед.",
            extras.providers_total,
            str(extras.providers_total),
        )
    )
    for code, key, label in (
        ("8.02", "state", "из них государственных (муниципальных)"),
        ("8.03", "non_state", "из них негосударственных"),
        ("8.04", None, "из них форма собственности не указана"),
    ):
        providers.rows.append(FormRow(code, label, "ед.", owned.get(key, 0), str(owned.get(key, 0)), 1))
    number = 5
    for label, count in extras.providers_by_form:
        providers.rows.append(
            FormRow(f"8.{number:02d}", f"оказывающих услуги в форме: {label}", "ед.", count, str(count), 1)
        )
        number += 1
    staff = extras.specialists
    providers.rows.append(
        FormRow(
            f"8.{number:02d}",
            "Специалистов, оказывающих услуги ранней помощи (кураторы и специалисты в системе)",
            "чел.",
            staff,
            NO_DATA if staff is None else str(staff),
        )
    )
    sections.append(providers)

    return Form(
        region_name=stats.region_name,
        year=year,
        made_on=made_on,
        due_on=due_on,
        suppressed=stats.suppressed,
        min_cell=stats.min_cell,
        round_to=stats.round_to,
        sections=sections,
    )


def _header_lines(form: Form) -> list[tuple[str, str]]:
    lines = [
        ("Субъект Российской Федерации", form.region_name),
        ("Отчётный период", f"01.01.{form.year} – 31.12.{form.year}"),
        ("Дата формирования", f"{form.made_on:%d.%m.%Y}"),
        ("Срок представления в Минтруд России", f"до {form.due_on:%d.%m.%Y}"),
    ]
    if form.suppressed:
        variant = f"обезличенный: значения от 1 до {form.min_cell - 1} скрыты («<{form.min_cell}»)"
        if form.round_to:
            variant += f", остальные числа о детях округлены до кратных {form.round_to}"
        lines.append(("Вариант", variant))
    return lines


# openpyxl number formats: thousands separated; shares in percent with one decimal; days.
FORMATS = {"ед.": "#,##0", "чел.": "#,##0", "%": "0.0", "дн.": "0.0"}


def form_xlsx(form: Form) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Форма 1-РП"
    bold = Font(bold=True)
    thin = Side(style="thin", color="999999")
    box = Border(left=thin, right=thin, top=thin, bottom=thin)
    shade = PatternFill("solid", fgColor="E7EEF5")
    sheet.append([TITLE])
    sheet["A1"].font = Font(bold=True, size=13)
    for label, text in _header_lines(form):
        sheet.append([label, text])
        sheet.cell(row=sheet.max_row, column=1).font = bold
        if sheet.cell(row=sheet.max_row, column=2).data_type == "f":  # a region named «=…» stays text
            sheet.cell(row=sheet.max_row, column=2).data_type = "s"
    sheet.append([])
    sheet.append(["Код строки", "Показатель", "Единица", "Значение"])
    header_row = sheet.max_row
    for cell in sheet[header_row]:
        cell.font, cell.border, cell.fill = bold, box, shade
    row_number = header_row
    for section in form.sections:
        row_number += 1
        sheet.append([section.code, f"Раздел {section.code}. {section.title}"])
        for column in (1, 2, 3, 4):
            cell = sheet.cell(row=row_number, column=column)
            cell.font, cell.border, cell.fill = bold, box, shade
        for row in section.rows:
            row_number += 1
            value: int | float | str | None = row.value if row.value is not None else row.shown
            # Labels come from the standard's and the organisations' names: never a formula.
            sheet.append([row.code, ("    " * row.level) + row.label, row.unit, value])
            label_cell = sheet.cell(row=row_number, column=2)
            if label_cell.data_type == "f":
                label_cell.data_type = "s"
            label_cell.alignment = Alignment(wrap_text=True, vertical="top")
            value_cell = sheet.cell(row=row_number, column=4)
            if row.value is not None:
                value_cell.number_format = FORMATS.get(row.unit, "General")
            value_cell.alignment = Alignment(horizontal="right", vertical="top")
            for column in (1, 2, 3, 4):
                sheet.cell(row=row_number, column=column).border = box
    sheet.append([])
    sheet.append(
        ["", "Сформировано в earlyhelp из данных сопровождения; строки и их расчёт — в описании системы."]
    )
    for letter, width in zip("ABCD", (12, 90, 10, 16), strict=True):
        sheet.column_dimensions[letter].width = width
    sheet.freeze_panes = sheet.cell(row=header_row + 1, column=1)
    sheet.print_options.gridLines = False
    sheet.page_setup.orientation = "portrait"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.fitToWidth = 1
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def form_pdf(form: Form) -> bytes:
    regular, bold = _fonts()
    text = ParagraphStyle("text", fontName=regular, fontSize=9, leading=11)
    title = ParagraphStyle("title", parent=text, fontName=bold, fontSize=13, leading=17, spaceAfter=6)
    heading = ParagraphStyle("heading", parent=text, fontName=bold, fontSize=10, leading=13)
    number = ParagraphStyle("number", parent=text, alignment=2)

    def p(value: str, style: ParagraphStyle = text) -> Paragraph:
        return Paragraph(escape(value), style)

    story: list[object] = [p(TITLE, title)]
    story.append(
        Table(
            [[p(label, heading), p(value)] for label, value in _header_lines(form)],
            colWidths=[60 * mm, 115 * mm],
            style=TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]),
        )
    )
    story.append(Spacer(1, 4 * mm))
    data: list[list[object]] = [
        [p("Код", heading), p("Показатель", heading), p("Ед.", heading), p("Значение", heading)]
    ]
    section_rows: list[int] = []
    for section in form.sections:
        section_rows.append(len(data))
        data.append([p(section.code, heading), p(f"Раздел {section.code}. {section.title}", heading), "", ""])
        for row in section.rows:
            shown = row.shown
            if row.value is not None and row.unit == "%":
                shown = f"{row.value:.1f}".replace(".", ",")
            data.append(
                [p(row.code), p(("\u00a0" * 4 * row.level) + row.label), p(row.unit), p(shown, number)]
            )
    style = [
        ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#E7EEF5")),
    ]
    for index in section_rows:
        style += [
            ("SPAN", (1, index), (-1, index)),
            ("BACKGROUND", (0, index), (-1, index), colors.HexColor("#F3F6F9")),
        ]
    story.append(
        Table(data, colWidths=[14 * mm, 125 * mm, 14 * mm, 22 * mm], repeatRows=1, style=TableStyle(style))
    )
    story.append(Spacer(1, 4 * mm))
    story.append(
        p(
            "Сформировано в earlyhelp из данных сопровождения детей; строки формы и их расчёт "
            "описаны в документации системы."
        )
    )
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        title=TITLE,
        author="earlyhelp",
    )
    document.build(story)  # type: ignore[arg-type]
    return buffer.getvalue()
