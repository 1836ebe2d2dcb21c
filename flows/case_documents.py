"""The unified documents of a case as A4 PDF: the conclusion of need determination, the ИПРП, and the
recommendations at completion (the 2025 letter: «заключение, рекомендации, ИПРП – унифицированные
формы»).

Rendering only: each document is drawn from a plain content object that api/services/case_documents.py
fills from the case (and scopes and audits); nothing here reads the database. The federal forms' own
layouts were not available here; the layout assumed is described in docs/readme/case-documents.md:
the provider's heading, the title, a numbered table of the document's details, its sections, and the
signature lines. Cyrillic needs a TTF font: flows/documents._fonts (DejaVu).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from xml.sax.saxutils import escape

from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from flows.documents import _fonts

CONCLUSION_TITLE = "Заключение по итогам определения нуждаемости в ранней помощи"
IPR_TITLE = "Индивидуальная программа ранней помощи"
RECOMMENDATIONS_TITLE = "Рекомендации по итогам сопровождения"
NO_RECOMMENDATIONS = "Рекомендации при завершении сопровождения не записаны."
GRID = "#999999"
SIGNATURE = "________________"


@dataclass(frozen=True)
class Heading:
    """The provider that issues the document, and the case it belongs to."""

    provider_name: str
    provider_details: str
    region_name: str
    case_id: int
    child_name: str
    # None when the reader has the child as a referral sent it, without the date (disclosure.sent_child).
    child_birth_date: date | None
    generated_on: date


@dataclass(frozen=True)
class ActivityLine:
    label: str
    count: int
    minutes: int


@dataclass(frozen=True)
class ConclusionContent:
    heading: Heading
    concluded_on: date
    outcome_label: str
    text: str
    duration_minutes: int | None
    form_labels: list[str]
    activities: list[ActivityLine]
    author_name: str
    author_role: str


@dataclass(frozen=True)
class ServiceLine:
    service_label: str  # the 344н service the activity belongs to
    activity_label: str
    role_label: str
    form_label: str
    count: int
    minutes: int


@dataclass(frozen=True)
class IprContent:
    heading: Heading
    number: int
    edition: int  # 1 for the first programme, 2… after each revision
    approved_on: date
    period_start: date
    period_end: date
    curator_name: str
    goals: list[str]
    services: list[ServiceLine]
    parent_agreed_on: date
    agreement_document: str | None
    superseded: bool = False


@dataclass(frozen=True)
class HeldLine:
    label: str
    held: int
    missed: int
    minutes: int


@dataclass(frozen=True)
class ConsiliumLine:
    held_on: date
    recommendations: str


@dataclass(frozen=True)
class RecommendationsContent:
    heading: Heading
    exit_label: str
    destination: str
    referral_date: date | None
    programme: tuple[date, date] | None
    adaptation: tuple[date, date] | None
    completed_on: date
    completed_automatically: bool
    curator_name: str
    held: list[HeldLine]
    recommendations: str
    summary: str
    goals: list[str] = field(default_factory=list)
    consilia: list[ConsiliumLine] = field(default_factory=list)


def ru(value: date | None) -> str:
    return f"{value:%d.%m.%Y}" if value is not None else "—"


class _Styles:
    def __init__(self) -> None:
        regular, bold = _fonts()
        self.text = ParagraphStyle("text", fontName=regular, fontSize=10, leading=13)
        self.small = ParagraphStyle("small", parent=self.text, fontSize=8, leading=10)
        self.cell = ParagraphStyle("cell", parent=self.text, fontSize=9, leading=11)
        self.bold = ParagraphStyle("bold", parent=self.text, fontName=bold)
        self.cell_bold = ParagraphStyle("cell_bold", parent=self.bold, fontSize=9, leading=11)
        self.org = ParagraphStyle("org", parent=self.bold, fontSize=11, leading=14, alignment=1)
        self.org_details = ParagraphStyle("org_details", parent=self.small, alignment=1)
        self.title = ParagraphStyle(
            "title", parent=self.bold, fontSize=13, leading=17, alignment=1, spaceBefore=6, spaceAfter=2
        )
        self.subtitle = ParagraphStyle("subtitle", parent=self.text, alignment=1, spaceAfter=6)
        self.heading = ParagraphStyle("heading", parent=self.bold, fontSize=11, spaceBefore=8, spaceAfter=3)

    def p(self, value: str, style: ParagraphStyle | None = None) -> Paragraph:
        return Paragraph(escape(value).replace("\n", "<br/>"), style or self.text)


def _table(rows: Sequence[Sequence[Flowable]], widths: Sequence[float], header: bool = False) -> Table:
    table = Table([list(r) for r in rows], colWidths=list(widths), repeatRows=1 if header else 0)
    style = [("GRID", (0, 0), (-1, -1), 0.4, GRID), ("VALIGN", (0, 0), (-1, -1), "TOP")]
    if header:
        style.append(("BACKGROUND", (0, 0), (-1, 0), "#eeeeee"))
    table.setStyle(TableStyle(style))
    return table


def _details(s: _Styles, rows: Sequence[tuple[str, str]]) -> Table:
    return _table([[s.p(a), s.p(b)] for a, b in rows], [62 * mm, 108 * mm])


def _top(s: _Styles, heading: Heading, title: str, subtitle: str) -> list[Flowable]:
    story: list[Flowable] = [s.p(heading.provider_name, s.org)]
    if heading.provider_details:
        story.append(s.p(heading.provider_details, s.org_details))
    story += [Spacer(1, 5 * mm), s.p(title, s.title), s.p(subtitle, s.subtitle)]
    return story


def _child_rows(heading: Heading) -> list[tuple[str, str]]:
    return [
        ("Ребёнок (фамилия, имя, отчество)", heading.child_name),
        ("Дата рождения", ru(heading.child_birth_date)),
    ]


def _signatures(s: _Styles, rows: Sequence[tuple[str, str]]) -> KeepTogether:
    """Lines to sign: who signs, the line, the name (blank when it is written by hand)."""
    lines = [
        [s.p(who), s.p(SIGNATURE), s.p(f"/ {name or SIGNATURE} /"), s.p("«__» ______ 20__ г.", s.small)]
        for who, name in rows
    ]
    table = Table(lines, colWidths=[52 * mm, 36 * mm, 52 * mm, 30 * mm])
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "BOTTOM"), ("TOPPADDING", (0, 0), (-1, -1), 8)]))
    return KeepTogether([Spacer(1, 6 * mm), table])


def _footer(s: _Styles, heading: Heading) -> list[Flowable]:
    return [
        Spacer(1, 8 * mm),
        s.p(
            f"Документ сформирован системой earlyhelp {ru(heading.generated_on)}, {heading.region_name}; "
            f"случай № {heading.case_id}.",
            s.small,
        ),
    ]


def _build(story: list[Flowable], title: str) -> bytes:
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        title=title,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
    )
    doc.build(story)
    return buffer.getvalue()


def conclusion_pdf(c: ConclusionContent) -> bytes:
    s = _Styles()
    h = c.heading
    story = _top(s, h, CONCLUSION_TITLE, f"от {ru(c.concluded_on)}")
    rows = [
        *_child_rows(h),
        ("Дата заключения", ru(c.concluded_on)),
        ("Итог определения нуждаемости", c.outcome_label),
    ]
    if c.duration_minutes:
        rows.append(("Продолжительность определения нуждаемости", f"{c.duration_minutes} мин."))
    rows.append(("Форма предоставления услуг", ", ".join(c.form_labels) if c.form_labels else "—"))
    story.append(_details(s, rows))
    story += [s.p("Заключение", s.heading), s.p(c.text or "—")]
    if c.activities:
        story.append(s.p("Виды услуг (мероприятия), их количество и продолжительность", s.heading))
        lines = [[s.p("№", s.bold), s.p("Мероприятие", s.bold), s.p("Количество × мин.", s.bold)]]
        lines += [
            [s.p(str(i)), s.p(a.label), s.p(f"{a.count} × {a.minutes} мин.")]
            for i, a in enumerate(c.activities, start=1)
        ]
        story.append(_table(lines, [10 * mm, 120 * mm, 40 * mm], header=True))
    author = f"Заключение подготовил(а): {c.author_role}" if c.author_role else "Заключение подготовил(а)"
    story.append(_signatures(s, [(author, c.author_name)]))
    story.append(s.p("С заключением ознакомлен(а):", s.heading))
    story.append(_signatures(s, [("Родитель (законный представитель)", "")]))
    story += _footer(s, h)
    return _build(story, CONCLUSION_TITLE)


def ipr_pdf(c: IprContent) -> bytes:
    s = _Styles()
    h = c.heading
    edition = f", редакция {c.edition} от {ru(c.approved_on)}" if c.edition > 1 else ""
    story = _top(s, h, IPR_TITLE, f"№ {c.number} от {ru(c.approved_on)}{edition}")
    rows = [
        *_child_rows(h),
        ("Срок реализации", f"{ru(c.period_start)} — {ru(c.period_end)}"),
        ("Куратор семьи", c.curator_name or "не назначен"),
    ]
    if c.superseded:
        rows.append(("Статус", "программа пересмотрена; действующей редакции нет"))
    story.append(_details(s, rows))
    story.append(s.p("Цели программы", s.heading))
    story += [s.p(f"{i}. {goal}") for i, goal in enumerate(c.goals, start=1)] or [s.p("—")]
    story.append(s.p("Услуги и мероприятия (стандарт, приказ Минтруда России № 344н)", s.heading))
    lines = [
        [
            s.p("Услуга / мероприятие", s.cell_bold),
            s.p("Специалист", s.cell_bold),
            s.p("Форма", s.cell_bold),
            s.p("Кол.", s.cell_bold),
            s.p("Мин.", s.cell_bold),
        ]
    ]
    lines += [
        [
            s.p(f"{x.service_label}: {x.activity_label}" if x.service_label else x.activity_label, s.cell),
            s.p(x.role_label, s.cell),
            s.p(x.form_label, s.cell),
            s.p(str(x.count), s.cell),
            s.p(str(x.minutes), s.cell),
        ]
        for x in c.services
    ]
    story.append(_table(lines, [62 * mm, 48 * mm, 32 * mm, 13 * mm, 15 * mm], header=True))
    story.append(s.p("Согласие родителя (законного представителя)", s.heading))
    agreement = f"С программой согласен(на): {ru(c.parent_agreed_on)}"
    if c.agreement_document:
        agreement += f"; документ: {c.agreement_document}"
    story.append(s.p(agreement))
    story.append(
        _signatures(
            s,
            [
                ("Куратор семьи", c.curator_name),
                ("Родитель (законный представитель)", ""),
                ("Руководитель организации", ""),
            ],
        )
    )
    story += _footer(s, h)
    return _build(story, IPR_TITLE)


def recommendations_pdf(c: RecommendationsContent) -> bytes:
    s = _Styles()
    h = c.heading
    story = _top(s, h, RECOMMENDATIONS_TITLE, f"от {ru(c.completed_on)}")
    completed = ru(c.completed_on) + (
        " (автоматически, по окончании периода адаптации)" if c.completed_automatically else ""
    )
    rows = [
        *_child_rows(h),
        ("Основание завершения", c.exit_label),
        ("Куда перешёл ребёнок", c.destination or "не указано"),
        ("Дата направления", ru(c.referral_date)),
    ]
    if c.programme is not None:
        rows.append(("Срок реализации ИПРП", f"{ru(c.programme[0])} — {ru(c.programme[1])}"))
    if c.adaptation is not None:
        rows.append(("Период адаптации", f"{ru(c.adaptation[0])} — {ru(c.adaptation[1])}"))
    rows += [("Дата завершения сопровождения", completed), ("Куратор семьи", c.curator_name or "не назначен")]
    story.append(_details(s, rows))

    story.append(s.p("Проведённые мероприятия", s.heading))
    if c.held:
        lines = [
            [
                s.p("Мероприятие", s.bold),
                s.p("Проведено", s.bold),
                s.p("Пропущено", s.bold),
                s.p("Минут", s.bold),
            ]
        ]
        lines += [[s.p(x.label), s.p(str(x.held)), s.p(str(x.missed)), s.p(str(x.minutes))] for x in c.held]
        story.append(_table(lines, [100 * mm, 24 * mm, 24 * mm, 22 * mm], header=True))
    else:
        story.append(s.p("Проведённых мероприятий не записано."))
    if c.summary:
        story += [s.p("Итог сопровождения", s.heading), s.p(c.summary)]
    story.append(s.p("Рекомендации семье и организации, куда переходит ребёнок", s.heading))
    if c.recommendations:
        story.append(s.p(c.recommendations))
    else:
        story.append(s.p(NO_RECOMMENDATIONS))
        if c.goals:
            story.append(s.p("Цели ИПРП, над которыми велась работа: " + "; ".join(c.goals) + "."))
    if c.consilia:
        story.append(s.p("Рекомендации консилиума", s.heading))
        story += [s.p(f"{ru(x.held_on)}: {x.recommendations}") for x in c.consilia]
    story.append(
        _signatures(s, [("Куратор семьи", c.curator_name), ("Родитель (законный представитель)", "")])
    )
    story += _footer(s, h)
    return _build(story, RECOMMENDATIONS_TITLE)
