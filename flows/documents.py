"""The feedback document to a referring organisation (a unified form), as PDF with Cyrillic fonts."""

from __future__ import annotations

import io
from datetime import date
from functools import lru_cache
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from sqlalchemy import Engine
from sqlmodel import Session, col, select

import standards
from api.services import disclosure
from api.services.standard import conclusion_public
from core.db import make_engine, reads_engine
from models.common import today_in
from models.organisations import Organisation, Region
from models.referrals import Referral
from standards import load_standard
from statemachines.journey import STATE_LABELS

# Debian's fonts-dejavu-core (the Makefile and .ci/run install it): Cyrillic in PDF needs a TTF.
FONT_DIRS = [Path("/usr/share/fonts/truetype/dejavu")]
OUTCOME_LABELS = {
    "ipr": "нуждается в разработке ИПРП",
    "consultation": "нуждается в консультативных услугах без разработки ИПРП",
    "no_need": "нуждаемость в ранней помощи не выявлена",
}


@lru_cache(maxsize=1)
def _fonts() -> tuple[str, str]:
    for directory in FONT_DIRS:
        regular, bold = directory / "DejaVuSans.ttf", directory / "DejaVuSans-Bold.ttf"
        if regular.exists() and bold.exists():
            pdfmetrics.registerFont(TTFont("DejaVuSans", str(regular)))
            pdfmetrics.registerFont(TTFont("DejaVuSans-Bold", str(bold)))
            return "DejaVuSans", "DejaVuSans-Bold"
    raise RuntimeError("нет шрифта DejaVuSans: установите пакет fonts-dejavu-core")


def feedback_pdf(session: Session, referral_id: int, today: date) -> bytes:
    """The referrer's feedback on one referral, as it stands today: what the disclosure rule lets a
    referring organisation know (api/services/disclosure.py), for whoever downloads it."""
    regular, bold = _fonts()
    view = disclosure.feedback(session, referral_id)
    referral, region = view.referral, view.region

    text = ParagraphStyle("text", fontName=regular, fontSize=10, leading=14)
    small = ParagraphStyle("small", parent=text, fontSize=8, leading=10)
    title = ParagraphStyle("title", parent=text, fontName=bold, fontSize=13, leading=17, spaceAfter=6)
    heading = ParagraphStyle("heading", parent=text, fontName=bold, fontSize=11, spaceBefore=8, spaceAfter=2)

    def p(value: str, style: ParagraphStyle = text) -> Paragraph:
        return Paragraph(escape(value).replace("\n", "<br/>"), style)

    story: list[object] = []
    # The provider serving the child under this referral's own case heads the document; a referral
    # handed to another provider names none.
    if view.provider is not None:
        org = view.provider
        details = ", ".join(x for x in (org.address, org.phone, org.email) if x)
        story += [p(org.name, heading), p(details, small), Spacer(1, 6 * mm)]
    story.append(
        p(f"Обратная связь по направлению № {referral.id} от {referral.referral_date:%d.%m.%Y}", title)
    )
    born = f", {view.child_birth_date:%d.%m.%Y} г. р." if view.child_birth_date else ""
    rows = [
        ["Дата документа", f"{today:%d.%m.%Y}"],
        ["Направившая организация", view.referrer.name if view.referrer else "обращение родителя"],
        ["Ребёнок (по направлению)", f"{view.child_name}{born}"],
        ["Направлено в организацию", view.addressed.name],
        ["Состояние направления", view.status_label],
    ]
    if view.provider is not None:
        rows.append(["Куратор", view.curator_name or "не назначен"])
    table = Table([[p(a), p(b)] for a, b in rows], colWidths=[60 * mm, 110 * mm])
    table.setStyle(
        TableStyle([("GRID", (0, 0), (-1, -1), 0.4, "#999999"), ("VALIGN", (0, 0), (-1, -1), "TOP")])
    )
    story.append(table)

    if view.history:
        story.append(p("Ход сопровождения", heading))
        for row in view.history:
            line = f"{row.at:%d.%m.%Y} — {STATE_LABELS[row.to_state]}"
            if row.event == "reject":
                line += f" (причина: {_reject_reason(row.payload)})"
            if row.event in ("begin_transition", "enrol") and row.payload.get("destination"):
                line += f" ({row.payload['destination']})"
            story.append(p(line))
    withheld = "Сведения не передаются: нет согласия родителя на их передачу направившей организации."
    if view.conclusion is not None:
        conclusion = view.conclusion
        story.append(p("Заключение по итогам определения нуждаемости", heading))
        story.append(p(f"{conclusion.concluded_on:%d.%m.%Y}: ребёнок {OUTCOME_LABELS[conclusion.outcome]}."))
        story.append(p(conclusion.text))
        # What the conclusion sets (344н): form of services, kinds, number of activities, duration.
        labelled = conclusion_public(conclusion, load_standard(region.code))
        if labelled.form_labels:
            story.append(p("Форма предоставления услуг: " + ", ".join(labelled.form_labels)))
        for activity in labelled.activities:
            story.append(p(f"• {activity.label}: {activity.count} × {activity.minutes} мин."))
    elif view.conclusion_withheld:
        story += [
            p("Заключение по итогам определения нуждаемости", heading),
            p(f"Заключение подготовлено. {withheld}"),
        ]
    if view.ipr is not None:
        ipr = view.ipr
        standard = load_standard(region.code)
        story.append(p("Индивидуальная программа ранней помощи", heading))
        story.append(p(f"Период: {ipr.period_start:%d.%m.%Y} — {ipr.period_end:%d.%m.%Y}"))
        story.append(p("Цели: " + "; ".join(ipr.goals)))
        for service in view.services:
            known = standard.service(service.service_code)
            label = known.label if known else service.service_code
            story.append(p(f"• {label}: {service.count} × {service.minutes} мин."))
    elif view.ipr_withheld:
        story += [
            p("Индивидуальная программа ранней помощи", heading),
            p(f"Программа утверждена. {withheld}"),
        ]
    story += [Spacer(1, 10 * mm), p(f"Документ сформирован системой earlyhelp, {region.name}.", small)]

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        title=f"Обратная связь по направлению № {referral.id}",
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
    )
    doc.build(story)  # type: ignore[arg-type]
    return buffer.getvalue()


@lru_cache(maxsize=4)
def _reads(database_url: str) -> Engine:
    return reads_engine(make_engine(database_url))


def render_feedback(database_url: str, standards_dir: str, referral_id: int) -> bytes:
    """feedback_pdf dated today in the provider's region, called in the relay's document process
    (flows.delivery.Runtime): reportlab's ~10 ms of CPU per document then runs on the other core
    instead of taking turns with the relay's event loop for one interpreter lock."""
    standards.configure(Path(standards_dir))
    with Session(_reads(database_url)) as session:
        zone = session.exec(
            select(Region.timezone)
            .join(Organisation, col(Organisation.region_id) == col(Region.id))
            .join(Referral, col(Referral.provider_id) == col(Organisation.id))
            .where(Referral.id == referral_id)
        ).one()
        return feedback_pdf(session, referral_id, today_in(zone))


def _reject_reason(payload: dict[str, object]) -> str:
    from models.events import REJECT_REASON_LABELS, RejectReason

    code = str(payload.get("reason_code", "other"))
    label = REJECT_REASON_LABELS.get(RejectReason(code), code) if code in RejectReason.__members__ else code
    explanation = payload.get("explanation")
    return f"{label}. {explanation}" if explanation else label
