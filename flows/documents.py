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
from core.db import make_engine, reads_engine
from models.cases import Case, CaseHistory
from models.children import Child, full_name
from models.common import today_in
from models.consents import Consent, ConsentKind, ConsentStatus
from models.organisations import Organisation, Region
from models.programmes import Ipr, NeedConclusion, PlannedService
from models.referrals import Referral
from models.users import User
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


def _consent_given(session: Session, child_id: int, kind: ConsentKind) -> bool:
    status = session.exec(
        select(Consent.status)
        .where(Consent.child_id == child_id, Consent.kind == kind)
        .order_by(col(Consent.date).desc(), col(Consent.id).desc())
        .limit(1)
    ).first()
    return status == ConsentStatus.given


def feedback_pdf(session: Session, referral_id: int, today: date) -> bytes:
    """The referrer's feedback on one referral, as it stands today."""
    regular, bold = _fonts()
    referral = session.get(Referral, referral_id)
    assert referral is not None
    child = session.get(Child, referral.child_id)
    provider = session.get(Organisation, referral.provider_id)
    referrer = session.get(Organisation, referral.referring_org_id) if referral.referring_org_id else None
    case = session.get(Case, referral.case_id) if referral.case_id else None
    assert child is not None and provider is not None
    region = session.get(Region, provider.region_id)
    assert region is not None
    owner = session.get(Organisation, case.provider_id) if case else provider
    curator = session.get(User, case.curator_id) if case and case.curator_id else None

    text = ParagraphStyle("text", fontName=regular, fontSize=10, leading=14)
    small = ParagraphStyle("small", parent=text, fontSize=8, leading=10)
    title = ParagraphStyle("title", parent=text, fontName=bold, fontSize=13, leading=17, spaceAfter=6)
    heading = ParagraphStyle("heading", parent=text, fontName=bold, fontSize=11, spaceBefore=8, spaceAfter=2)

    def p(value: str, style: ParagraphStyle = text) -> Paragraph:
        return Paragraph(escape(value).replace("\n", "<br/>"), style)

    story: list[object] = []
    org = owner or provider
    details = ", ".join(x for x in (org.address, org.phone, org.email) if x)
    story += [p(org.name, heading), p(details, small), Spacer(1, 6 * mm)]
    story.append(
        p(f"Обратная связь по направлению № {referral.id} от {referral.referral_date:%d.%m.%Y}", title)
    )
    rows = [
        ["Дата документа", f"{today:%d.%m.%Y}"],
        ["Направившая организация", referrer.name if referrer else "обращение родителя"],
        ["Ребёнок", f"{full_name(child)}, {child.birth_date:%d.%m.%Y} г. р."],
        ["Организация ранней помощи", org.name],
        ["Состояние", STATE_LABELS[case.state] if case else "не рассмотрено"],
        ["Куратор", curator.full_name if curator else "не назначен"],
    ]
    table = Table([[p(a), p(b)] for a, b in rows], colWidths=[60 * mm, 110 * mm])
    table.setStyle(
        TableStyle([("GRID", (0, 0), (-1, -1), 0.4, "#999999"), ("VALIGN", (0, 0), (-1, -1), "TOP")])
    )
    story.append(table)

    if case is not None:
        history = session.exec(
            select(CaseHistory).where(CaseHistory.case_id == case.id).order_by(col(CaseHistory.id))
        ).all()
        story.append(p("Ход сопровождения", heading))
        for row in history:
            line = f"{row.at:%d.%m.%Y} — {STATE_LABELS[row.to_state]}"
            if row.event == "reject":
                line += f" (причина: {_reject_reason(row.payload)})"
            if row.event == "begin_transition" and row.payload.get("destination"):
                line += f" ({row.payload['destination']})"
            story.append(p(line))
        conclusion = session.exec(
            select(NeedConclusion)
            .where(NeedConclusion.case_id == case.id)
            .order_by(col(NeedConclusion.id).desc())
        ).first()
        if conclusion is not None:
            story.append(p("Заключение по итогам определения нуждаемости", heading))
            story.append(
                p(f"{conclusion.concluded_on:%d.%m.%Y}: ребёнок {OUTCOME_LABELS[conclusion.outcome]}.")
            )
            story.append(p(conclusion.text))
        ipr = session.exec(select(Ipr).where(Ipr.case_id == case.id, Ipr.status == "active")).first()
        if ipr is not None:
            story.append(p("Индивидуальная программа ранней помощи", heading))
            if _consent_given(session, child.id or 0, ConsentKind.share_with_referrer):
                standard = load_standard(region.code)
                story.append(p(f"Период: {ipr.period_start:%d.%m.%Y} — {ipr.period_end:%d.%m.%Y}"))
                story.append(p("Цели: " + "; ".join(ipr.goals)))
                for service in session.exec(select(PlannedService).where(PlannedService.ipr_id == ipr.id)):
                    known = standard.service(service.service_code)
                    label = known.label if known else service.service_code
                    story.append(p(f"• {label}: {service.count} × {service.minutes} мин."))
            else:
                story.append(
                    p(
                        "Программа утверждена. Сведения о ней не передаются: "
                        "нет согласия родителя на их передачу."
                    )
                )
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
