"""Which unified documents a case has, who may get them, and their content (rendered by
flows/case_documents.py).

Who: exactly who reads the case card (api/scoping.get_case with the caller, invited team members of
another organisation included while their agreement is in force — the card shows them the
conclusion, the ИПРП and the history already, and the programme is what they work to). The
referring organisation never gets them through the case: its door is its referral
(`referral_document`), under the feedback document's rule (api/services/disclosure.py): the case its
referral opened, the family's consent to share given.

A document exists only when its content does: the conclusion once need determination is recorded,
the ИПРП once one is approved, the recommendations once the case is completed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, SQLModel, col, func, select

from api.deps import Principal
from api.scoping import get_case
from api.services import disclosure
from api.services.referrals import visible
from core.errors import NotFound
from flows import case_documents as render
from models.cases import Case, CaseHistory
from models.children import Child, full_name
from models.common import today_in
from models.organisations import Organisation, OrgKind, Region
from models.programmes import (
    NEED_OUTCOME_LABELS,
    SERVICE_FORM_LABELS,
    Ipr,
    NeedConclusion,
    NeedOutcome,
    PlannedService,
    ServiceForm,
    ServiceSession,
    SessionStatus,
)
from models.referrals import Referral
from models.routings import Consilium
from models.users import ROLE_LABELS, Role, User
from standards import Standard, load_standard
from statemachines.fire import region_of


class DocumentKind(StrEnum):
    conclusion = "conclusion"
    ipr = "ipr"
    recommendations = "recommendations"


TITLES: dict[DocumentKind, str] = {
    DocumentKind.conclusion: render.CONCLUSION_TITLE,
    DocumentKind.ipr: render.IPR_TITLE,
    DocumentKind.recommendations: render.RECOMMENDATIONS_TITLE,
}
# Why a document does not exist yet (the 404's message and the card's note).
MISSING: dict[DocumentKind, str] = {
    DocumentKind.conclusion: "Заключения ещё нет: нуждаемость в ранней помощи не определена",
    DocumentKind.ipr: "ИПРП ещё не утверждена",
    DocumentKind.recommendations: "Рекомендаций ещё нет: сопровождение не завершено",
}
# The audit row of a download: a read of the case's document, keyed by the case (the path names the kind).
AUDIT_ENTITY = "case_document"
AUTOMATIC_EXIT = "Окончание периода адаптации"
NO_EXIT = "не указано"


class CaseDocumentPublic(SQLModel):
    kind: DocumentKind
    title: str
    available: bool
    # The document's own date: the conclusion's, the ИПРП's approval, the completion.
    dated: date | None = None
    # Why it is not available yet (Russian), when it is not.
    note: str | None = None
    url: str | None = None
    page_url: str | None = None


class CaseDocumentsPublic(SQLModel):
    """GET /api/v1/cases/{case_id}/documents."""

    case_id: int
    items: list[CaseDocumentPublic]


def _conclusion(session: Session, case: Case) -> NeedConclusion | None:
    return session.exec(
        select(NeedConclusion)
        .where(NeedConclusion.case_id == case.id)
        .order_by(col(NeedConclusion.id).desc())
    ).first()


def _ipr(session: Session, case: Case) -> Ipr | None:
    """The programme in force; the latest one while a revision is being drawn up (a case has few)."""
    rows = session.exec(select(Ipr).where(Ipr.case_id == case.id).order_by(col(Ipr.id).desc())).all()
    return next((r for r in rows if r.status == "active"), rows[0] if rows else None)


def _completion(session: Session, case: Case) -> CaseHistory | None:
    if case.state != "completed":
        return None
    return session.exec(
        select(CaseHistory)
        .where(CaseHistory.case_id == case.id, CaseHistory.event == "complete")
        .order_by(col(CaseHistory.id).desc())
    ).first()


def _local_date(at: datetime, zone: str) -> date:
    return at.astimezone(ZoneInfo(zone)).date()


def case_documents(session: Session, principal: Principal, case_id: int) -> tuple[Case, CaseDocumentsPublic]:
    case = get_case(session, principal, case_id)
    return case, listing(session, case)


def listing(session: Session, case: Case) -> CaseDocumentsPublic:
    """The three documents of a case, each with its date and links, or why it does not exist yet."""
    assert case.id is not None
    region = region_of(session, case)
    conclusion, ipr, completion = _conclusion(session, case), _ipr(session, case), _completion(session, case)
    dates: dict[DocumentKind, date | None] = {
        DocumentKind.conclusion: conclusion.concluded_on if conclusion else None,
        DocumentKind.ipr: _local_date(ipr.created_at, region.timezone) if ipr else None,
        DocumentKind.recommendations: _local_date(completion.at, region.timezone) if completion else None,
    }
    exists = {
        DocumentKind.conclusion: conclusion is not None,
        DocumentKind.ipr: ipr is not None,
        DocumentKind.recommendations: completion is not None,
    }
    items = []
    for kind in DocumentKind:
        available = exists[kind]
        items.append(
            CaseDocumentPublic(
                kind=kind,
                title=TITLES[kind],
                available=available,
                dated=dates[kind],
                note=None if available else MISSING[kind],
                url=f"/api/v1/cases/{case.id}/documents/{kind.value}.pdf" if available else None,
                page_url=f"/cases/{case.id}/documents/{kind.value}.pdf" if available else None,
            )
        )
    return CaseDocumentsPublic(case_id=case.id, items=items)


def referral_document(
    session: Session, principal: Principal, referral_id: int, kind: DocumentKind
) -> tuple[Case, bytes]:
    """The document of the case a referral opened, as the referring organisation may have it — for
    whoever may see the referral, like its feedback document (flows/documents.feedback_pdf): only the
    case the referral opened (api/services/disclosure.opened), never one it was handed to or that was
    transferred away from the reader, and only while the family's latest consent to share with the
    referring organisation is given (disclosure.shares_with_referrers); the child as the referral sent
    it, and no consilium (the provider's inter-agency work)."""
    referral = visible(session, principal, referral_id)
    case = session.get(Case, referral.case_id) if referral.case_id else None
    if (
        case is None
        or not disclosure.opened(referral, case)
        or disclosure.transferred_away(principal, referral, case)
    ):
        raise NotFound("По этому направлению документов случая нет", field="referral_id")
    content = CONTENT[kind](session, case)  # NotFound if the document does not exist yet
    if not disclosure.shares_with_referrers(session, case.child_id):
        raise NotFound(
            "Документ подготовлен. Сведения не передаются: нет согласия родителя на их передачу"
            " направившей организации",
            field="kind",
        )
    sent = disclosure.sent_child(referral, session.get(Child, case.child_id))
    heading = replace(content.heading, child_name=sent.name, child_birth_date=sent.birth_date)
    if isinstance(content, render.RecommendationsContent):
        return case, render.recommendations_pdf(replace(content, heading=heading, consilia=[]))
    if isinstance(content, render.IprContent):
        return case, render.ipr_pdf(replace(content, heading=heading))
    return case, render.conclusion_pdf(replace(content, heading=heading))


def document(session: Session, principal: Principal, case_id: int, kind: DocumentKind) -> tuple[Case, bytes]:
    """The document as PDF for a caller who may read the case; NotFound (Russian) if it does not
    exist yet. Rendering takes ~10 ms of CPU (docs/readme/case-documents.md): done in the request."""
    case = get_case(session, principal, case_id)
    return case, RENDERERS[kind](session, case)


# --- content -------------------------------------------------------------------------------------


def _heading(session: Session, case: Case, provider_id: int | None = None) -> render.Heading:
    assert case.id is not None
    region = region_of(session, case)
    child = session.get(Child, case.child_id)
    provider = session.get(Organisation, provider_id or case.provider_id)
    assert child is not None and provider is not None
    details = ", ".join(x for x in (provider.address, provider.phone, provider.email) if x)
    return render.Heading(
        provider_name=provider.name,
        provider_details=details,
        region_name=region.name,
        case_id=case.id,
        child_name=full_name(child),
        child_birth_date=child.birth_date,
        generated_on=today_in(region.timezone),
    )


def _standard(session: Session, case: Case) -> tuple[Region, Standard]:
    region = region_of(session, case)
    return region, load_standard(region.code)


def _user_name(session: Session, user_id: int | None) -> str:
    user = session.get(User, user_id) if user_id else None
    return user.full_name if user else ""


def conclusion_content(session: Session, case: Case) -> render.ConclusionContent:
    row = _conclusion(session, case)
    if row is None:
        raise NotFound(MISSING[DocumentKind.conclusion], field="kind")
    _, standard = _standard(session, case)
    author = session.get(User, row.author_id)
    # The provider that concluded heads it (after a transfer the case is another's); a conclusion
    # recorded by the РРМЦ's supervisor is headed by the case's provider.
    author_org = session.get(Organisation, author.organisation_id) if author is not None else None
    provider_id = author_org.id if author_org is not None and author_org.kind == OrgKind.provider else None
    activities = []
    for item in row.activities:
        code = str(item.get("activity_code", ""))
        known = standard.service(code)
        activities.append(
            render.ActivityLine(
                known.label if known else code,
                int(str(item.get("count", 0))),
                int(str(item.get("minutes", 0))),
            )
        )
    return render.ConclusionContent(
        heading=_heading(session, case, provider_id),
        concluded_on=row.concluded_on,
        outcome_label=NEED_OUTCOME_LABELS[NeedOutcome(row.outcome)],
        text=row.text,
        duration_minutes=row.duration_minutes,
        form_labels=[SERVICE_FORM_LABELS[ServiceForm(f)] for f in row.forms],
        activities=activities,
        author_name=author.full_name if author else "",
        author_role=ROLE_LABELS[Role(author.role)] if author else "",
    )


def ipr_content(session: Session, case: Case) -> render.IprContent:
    ipr = _ipr(session, case)
    if ipr is None:
        raise NotFound(MISSING[DocumentKind.ipr], field="kind")
    region, standard = _standard(session, case)
    roles = {r.code: r.label for r in standard.specialist_roles}
    lines = []
    for service in session.exec(
        select(PlannedService).where(PlannedService.ipr_id == ipr.id).order_by(col(PlannedService.id))
    ):
        known, group = standard.service(service.service_code), standard.service_of(service.service_code)
        lines.append(
            render.ServiceLine(
                service_label=group.label if group else "",
                activity_label=known.label if known else service.service_code,
                role_label=roles.get(service.specialist_role, service.specialist_role),
                form_label=SERVICE_FORM_LABELS[ServiceForm(service.form)],
                count=service.count,
                minutes=service.minutes,
            )
        )
    edition = session.exec(
        select(func.count()).select_from(Ipr).where(Ipr.case_id == case.id, col(Ipr.id) <= ipr.id)
    ).one()
    assert ipr.id is not None
    return render.IprContent(
        heading=_heading(session, case),
        number=ipr.id,
        edition=edition,
        approved_on=_local_date(ipr.created_at, region.timezone),
        period_start=ipr.period_start,
        period_end=ipr.period_end,
        curator_name=_user_name(session, case.curator_id),
        goals=list(ipr.goals),
        services=lines,
        parent_agreed_on=ipr.parent_agreed_on,
        agreement_document=ipr.agreement_document_ref,
        superseded=ipr.status != "active",
    )


def _said(session: Session, case: Case, event: str) -> dict[str, Any]:
    """The payload of the case's latest `event`."""
    payload = session.exec(
        select(CaseHistory.payload)
        .where(CaseHistory.case_id == case.id, CaseHistory.event == event)
        .order_by(col(CaseHistory.id).desc())
        .limit(1)
    ).first()
    return dict(payload or {})


def recommendations_content(session: Session, case: Case) -> render.RecommendationsContent:
    completion = _completion(session, case)
    if completion is None:
        raise NotFound(MISSING[DocumentKind.recommendations], field="kind")
    region, standard = _standard(session, case)
    said = dict(completion.payload or {})
    reasons = {r.code: r.label for r in standard.exit_reasons("completed")}
    automatic = completion.actor_id is None
    code = str(said.get("reason_code") or "")
    exit_label = reasons.get(code, code) if code else (AUTOMATIC_EXIT if automatic else NO_EXIT)
    destination = str(said.get("destination") or "").strip()
    if not destination and case.destination_org_id is not None:
        org = session.get(Organisation, case.destination_org_id)
        destination = org.name if org else ""
    for event in ("enrol", "begin_transition"):
        destination = destination or str(_said(session, case, event).get("destination") or "").strip()
    referral = session.get(Referral, case.referral_id) if case.referral_id else None
    ipr = _ipr(session, case)
    held: dict[str, list[int]] = {}
    for service_code, status, n, minutes in session.exec(
        select(
            ServiceSession.service_code,
            ServiceSession.status,
            func.count(),
            func.coalesce(func.sum(ServiceSession.duration_minutes), 0),
        )
        .where(
            ServiceSession.case_id == case.id,
            col(ServiceSession.status).in_([SessionStatus.held, SessionStatus.missed]),
        )
        .group_by(col(ServiceSession.service_code), col(ServiceSession.status))
    ):
        counts = held.setdefault(service_code, [0, 0, 0])
        if status == SessionStatus.held:
            counts[0], counts[2] = int(n), int(minutes)
        else:
            counts[1] = int(n)
    lines = [
        render.HeldLine(s.label if (s := standard.service(code)) else code, *counts)
        for code, counts in sorted(held.items())
    ]
    consilia = [
        render.ConsiliumLine(_local_date(c.held_at, region.timezone), (c.recommendations or "").strip())
        for c in session.exec(
            select(Consilium).where(Consilium.case_id == case.id).order_by(col(Consilium.id))
        )
        if c.held_at is not None and (c.recommendations or "").strip()
    ]
    adaptation = (
        (case.adaptation_starts_on, case.adaptation_ends_on)
        if case.adaptation_starts_on and case.adaptation_ends_on
        else None
    )
    return render.RecommendationsContent(
        heading=_heading(session, case),
        exit_label=exit_label,
        destination=destination,
        referral_date=referral.referral_date if referral else None,
        programme=(ipr.period_start, ipr.period_end) if ipr else None,
        adaptation=adaptation,
        completed_on=_local_date(completion.at, region.timezone),
        completed_automatically=automatic,
        curator_name=_user_name(session, case.curator_id),
        held=lines,
        recommendations=str(said.get("recommendations") or "").strip(),
        summary=str(said.get("summary") or "").strip(),
        goals=list(ipr.goals) if ipr else [],
        consilia=consilia,
    )


CONTENT: dict[
    DocumentKind,
    Callable[[Session, Case], render.ConclusionContent | render.IprContent | render.RecommendationsContent],
] = {
    DocumentKind.conclusion: conclusion_content,
    DocumentKind.ipr: ipr_content,
    DocumentKind.recommendations: recommendations_content,
}
RENDERERS: dict[DocumentKind, Callable[[Session, Case], bytes]] = {
    DocumentKind.conclusion: lambda s, c: render.conclusion_pdf(conclusion_content(s, c)),
    DocumentKind.ipr: lambda s, c: render.ipr_pdf(ipr_content(s, c)),
    DocumentKind.recommendations: lambda s, c: render.recommendations_pdf(recommendations_content(s, c)),
}
