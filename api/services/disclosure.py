"""What a reader may learn about a referral and its child: DESIGN §6, «Matching never discloses».

The rule is written here once. The referral routes (api/routes/referrals.py, through
api/services/referrals.py), the feedback document (flows/documents.py) and the feedback messages
and webhooks to referring organisations (flows/targets.py: recipients and template context) all
take what they show from this module; a new door (a page, an export) must too.

Readers of a referral (api/scoping.referral_scope decides who may list it at all):

- The organisation **handling** it: the provider whose case the referral belongs to or, while a
  match waits for review, the provider reviewing it; and the region's РРМЦ supervisors. They see the
  child as stored, the case and the match. While a match waits, the reviewer sees only what it needs
  to compare (the child's identity as sent), not the criteria, comment or representatives of what
  may be another family's child.
- **Everyone else** who may list it: the referring organisation (or the provider's coordinator who
  registered a parent's own request), and the provider it was addressed to when another provider
  serves the child. Knowing an identifier opens nothing for them: they get the child as they sent
  it, never as stored, and the state and dates of *their own* referral only: the state of the case
  their referral opened; "передано" when it was handed to the provider already helping the child
  (no case, state, provider or child id); "зарегистрировано" while a match is being checked.
- The conclusion and the ИПРП reach those others (in the feedback document) only for the case their
  referral opened, and only while the family's latest recorded consent of kind
  `share_with_referrer` is `given`: a withdrawal recorded later stops it at once.
- Feedback about a case (e-mails, webhooks, the document attached) goes to the organisation whose
  referral opened the case, never to one that only linked a referral to it by identifier.

A child's СНИЛС, wherever it is shown (the API's child, the case page, the search): in full to the
provider's staff who register and coordinate the family (intake coordinator, curator, head); a
specialist, who gives sessions, and the region's supervisors see only its last two digits, enough
to tell two children apart in a list.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import exists, func
from sqlmodel import Session, SQLModel, col, select

from models.cases import Case, CaseHistory
from models.children import Child, format_snils, full_name
from models.consents import Consent, ConsentKind, ConsentStatus
from models.organisations import Organisation, Region
from models.programmes import Ipr, NeedConclusion, PlannedService
from models.referrals import (
    MATCH_FIELD_LABELS,
    MatchPublic,
    MatchStatus,
    Referral,
    ReferralPublic,
    SubmittedPublic,
)
from models.registry import MERGE_EVENTS
from models.users import Role, User
from statemachines.journey import STATE_LABELS
from statemachines.workflows import is_workflow_event

if TYPE_CHECKING:
    from api.deps import Principal

# A referral's own status, where it is not the state of the case it opened.
HANDED_OVER = "handed_over"
REGISTERED = "registered"
AWAITING_MATCH_REVIEW = "awaiting_match_review"
# For the provider a referral was addressed to, once the case it opened was transferred to another.
TRANSFERRED = "transferred"
STATUS_LABELS = {
    HANDED_OVER: "Передано организации, которая уже помогает ребёнку",
    TRANSFERRED: "Случай передан другой организации, оказывающей раннюю помощь",
    REGISTERED: "Зарегистрировано",
    AWAITING_MATCH_REVIEW: "Ожидает подтверждения совпадения",
}
NOT_KEPT = "сведения не сохранены"


def handler_id(referral: Referral, case: Case | None) -> int | None:
    """The provider handling the referral now: the reviewer while a match waits, else the case's."""
    if referral.match_status == MatchStatus.awaiting_review:
        return referral.match_reviewer_id
    return case.provider_id if case is not None else None


def opened(referral: Referral, case: Case | None) -> bool:
    """Whether `case` is the referral's own: the one it opened, not one it was linked to."""
    return case is not None and referral.id is not None and case.referral_id == referral.id


def handles(principal: Principal, referral: Referral, case: Case | None) -> bool:
    if principal.is_regional_supervisor:
        return True  # every case of the region; the referral scope keeps them to their region
    return principal.is_provider_staff and principal.org.id == handler_id(referral, case)


def transferred_away(principal: Principal, referral: Referral, case: Case | None) -> bool:
    """The reader is the provider the referral was addressed to, and the case it opened has been
    transferred to another provider (api/services/transfers.py): it keeps the referral it received,
    and learns nothing more of the case (no state, no case id, no feedback document)."""
    return (
        principal.is_provider_staff
        and case is not None
        and opened(referral, case)
        and referral.provider_id == principal.org.id
        and case.provider_id != principal.org.id
    )


def own_status(referral: Referral, case: Case | None) -> tuple[str, str]:
    """The referral's own status, as anyone who may list it may know it."""
    if referral.match_status == MatchStatus.awaiting_review:
        return REGISTERED, STATUS_LABELS[REGISTERED]
    if case is not None and opened(referral, case):
        return case.state, STATE_LABELS[case.state]
    if case is not None:
        return HANDED_OVER, STATUS_LABELS[HANDED_OVER]
    return REGISTERED, STATUS_LABELS[REGISTERED]


@dataclass(frozen=True)
class SentChild:
    """The child as the referring organisation described it."""

    name: str
    first_name: str
    birth_date: date | None


def sent_child(referral: Referral, child: Child | None) -> SentChild:
    sent = (referral.submitted or {}).get("child")
    if sent:
        parts = (sent.get("last_name"), sent.get("first_name"), sent.get("middle_name"))
        return SentChild(
            " ".join(p for p in parts if p),
            sent.get("first_name") or "",
            date.fromisoformat(sent["birth_date"]) if sent.get("birth_date") else None,
        )
    # A referral registered before the submission was kept (migration 0007): the child it
    # registered is its own; a child it was only linked to is not.
    if child is not None and referral.match_status == MatchStatus.none and not referral.linked_to_existing:
        return SentChild(full_name(child), child.first_name, child.birth_date)
    return SentChild(NOT_KEPT, "", None)


M = TypeVar("M", bound=SQLModel)


def _by_id(session: Session, model: type[M], ids: Iterable[int | None]) -> dict[int, M]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.exec(select(model).where(col(model.id).in_(wanted)))  # type: ignore[attr-defined]
    return {row.id: row for row in rows}  # type: ignore[attr-defined]


def _last_moves(session: Session, case_ids: Iterable[int]) -> dict[int, datetime]:
    """When each case last changed state."""
    wanted = set(case_ids)
    if not wanted:
        return {}
    rows = session.exec(
        select(CaseHistory.case_id, func.max(CaseHistory.at))
        .where(col(CaseHistory.case_id).in_(wanted))
        .group_by(col(CaseHistory.case_id))
    )
    return {case_id: at for case_id, at in rows}


def referrals_public(
    session: Session, principal: Principal, referrals: Sequence[Referral]
) -> list[ReferralPublic]:
    """Referrals as `principal` may see them; children, organisations, cases loaded in one go each."""
    cases = _by_id(session, Case, (r.case_id for r in referrals))
    children = _by_id(session, Child, (r.child_id for r in referrals))
    orgs = _by_id(session, Organisation, (r.provider_id for r in referrals))
    moved = _last_moves(session, cases)
    result = []
    for referral in referrals:
        case = cases.get(referral.case_id or 0)
        child = children.get(referral.child_id or 0)
        addressed = orgs[referral.provider_id]
        if handles(principal, referral, case):
            result.append(_for_handler(principal, referral, case, child, addressed, moved))
        elif transferred_away(principal, referral, case):
            result.append(_for_former_provider(referral, child, addressed))
        else:
            result.append(_for_others(referral, case, child, addressed, moved))
    return result


def _common(referral: Referral, addressed: Organisation) -> dict[str, Any]:
    assert referral.id is not None
    return {
        "id": referral.id,
        "provider_id": referral.provider_id,
        "provider_name": addressed.name,
        "referring_org_id": referral.referring_org_id,
        "self_referral": referral.referring_org_id is None,
        "criteria": referral.criteria,
        "criteria_document_ref": referral.criteria_document_ref,
        "comment": referral.comment,
        "referral_date": referral.referral_date,
        "created_at": referral.created_at,
    }


def _for_others(
    referral: Referral,
    case: Case | None,
    child: Child | None,
    addressed: Organisation,
    moved: dict[int, datetime],
) -> ReferralPublic:
    sent = sent_child(referral, child)
    status, label = own_status(referral, case)
    own = case if case is not None and opened(referral, case) else None
    if own is not None:
        message = f"Направление зарегистрировано. Организация «{addressed.name}» свяжется с семьёй."
    elif status == HANDED_OVER:
        message = "Направление зарегистрировано и передано организации, которая уже помогает ребёнку."
    else:
        message = "Направление зарегистрировано и рассматривается."
    return ReferralPublic(
        **_common(referral, addressed),
        child_id=referral.child_id if own is not None else None,
        child_name=sent.name,
        child_birth_date=sent.birth_date,
        status=status,
        status_label=label,
        status_since=_since(referral, own, moved),
        case_id=own.id if own is not None else None,
        case_state=own.state if own is not None else None,
        case_state_label=STATE_LABELS[own.state] if own is not None else None,
        linked_to_existing=status == HANDED_OVER,
        message=message,
    )


def _for_former_provider(referral: Referral, child: Child | None, addressed: Organisation) -> ReferralPublic:
    sent = sent_child(referral, child)
    return ReferralPublic(
        **_common(referral, addressed),
        child_id=None,
        child_name=sent.name,
        child_birth_date=sent.birth_date,
        status=TRANSFERRED,
        status_label=STATUS_LABELS[TRANSFERRED],
        status_since=referral.match_decided_at or referral.created_at,
        case_id=None,
        case_state=None,
        case_state_label=None,
        linked_to_existing=False,
        message="Случай передан другой организации, оказывающей раннюю помощь; сведения о нём у неё.",
    )


def _for_handler(
    principal: Principal,
    referral: Referral,
    case: Case | None,
    child: Child | None,
    addressed: Organisation,
    moved: dict[int, datetime],
) -> ReferralPublic:
    sent = sent_child(referral, child)
    pending = referral.match_status == MatchStatus.awaiting_review
    status, label = own_status(referral, case)
    if pending:
        status, label = AWAITING_MATCH_REVIEW, STATUS_LABELS[AWAITING_MATCH_REVIEW]
    data = _common(referral, addressed)
    submitted = SubmittedPublic.model_validate(referral.submitted) if referral.submitted else None
    mismatch = referral.match_mismatch or []
    if pending:
        labels = ", ".join(MATCH_FIELD_LABELS.get(f, f) for f in mismatch)
        found = (
            f"Сведения о ребёнке совпадают с ребёнком, известным вашей организации, не полностью"
            f" (не совпадает: {labels})."
            if mismatch
            else "Сведения о ребёнке совпадают с ребёнком, которого сопровождала ваша организация;"
            " направление адресовано другой организации."
        )
        message = f"{found} Подтвердите или отклоните совпадение: POST /api/v1/referrals/{referral.id}/match."
        if not (principal.is_provider_staff and principal.org.id == referral.provider_id):
            # What may be another family's child: its identity to compare, nothing more.
            data |= {"criteria": [], "criteria_document_ref": None, "comment": None}
            if submitted is not None:
                submitted = SubmittedPublic(
                    child=submitted.child.model_copy(update={"address": None}), representatives=[]
                )
    elif case is not None and not opened(referral, case):
        message = f"Ребёнок уже сопровождается: направление присоединено к случаю № {case.id}."
    else:
        message = f"Направление зарегистрировано. Организация «{addressed.name}» свяжется с семьёй."
    match = None
    if referral.match_status != MatchStatus.none:
        match = MatchPublic(
            status=referral.match_status,
            matched_child_id=referral.matched_child_id,
            mismatched_fields=mismatch,
            mismatched_labels=[MATCH_FIELD_LABELS.get(f, f) for f in mismatch],
            reviewer_org_id=referral.match_reviewer_id,
            decided_by_id=referral.match_decided_by_id,
            decided_at=referral.match_decided_at,
        )
    return ReferralPublic(
        **data,
        child_id=referral.child_id,
        child_name=full_name(child) if child is not None else sent.name,
        child_birth_date=child.birth_date if child is not None else sent.birth_date,
        status=status,
        status_label=label,
        status_since=_since(referral, case, moved),
        case_id=case.id if case is not None else None,
        case_state=case.state if case is not None else None,
        case_state_label=STATE_LABELS[case.state] if case is not None else None,
        linked_to_existing=referral.linked_to_existing,
        match=match,
        submitted=submitted,
        message=message,
    )


def _since(referral: Referral, case: Case | None, moved: dict[int, datetime]) -> datetime:
    if case is not None and case.id in moved:
        return moved[case.id]
    return referral.match_decided_at or referral.created_at


def shares_with_referrers(session: Session, child_id: int) -> bool:
    """The family's latest recorded consent to share the conclusion and the ИПРП with referring
    organisations is `given` (a later withdrawal wins)."""
    status = session.exec(
        select(Consent.status)
        .where(Consent.child_id == child_id, Consent.kind == ConsentKind.share_with_referrer)
        .order_by(col(Consent.date).desc(), col(Consent.id).desc())
        .limit(1)
    ).first()
    return status == ConsentStatus.given


@dataclass
class Feedback:
    """What the feedback document on one referral may say: the referring organisation's view."""

    referral: Referral
    region: Region
    addressed: Organisation
    referrer: Organisation | None
    child_name: str
    child_birth_date: date | None
    status_label: str
    # The provider serving the child under this referral's own case; None when handed over.
    provider: Organisation | None = None
    curator_name: str | None = None
    history: list[CaseHistory] = field(default_factory=list)
    # Filled only with the family's consent to share; `*_withheld` says one exists but is not shared.
    conclusion: NeedConclusion | None = None
    conclusion_withheld: bool = False
    ipr: Ipr | None = None
    services: list[PlannedService] = field(default_factory=list)
    ipr_withheld: bool = False


def feedback(session: Session, referral_id: int) -> Feedback:
    referral = session.get(Referral, referral_id)
    assert referral is not None
    addressed = session.get(Organisation, referral.provider_id)
    assert addressed is not None
    region = session.get(Region, addressed.region_id)
    assert region is not None
    referrer = session.get(Organisation, referral.referring_org_id) if referral.referring_org_id else None
    case = session.get(Case, referral.case_id) if referral.case_id else None
    child = session.get(Child, referral.child_id) if referral.child_id else None
    sent = sent_child(referral, child)
    _, label = own_status(referral, case)
    view = Feedback(
        referral=referral,
        region=region,
        addressed=addressed,
        referrer=referrer,
        child_name=sent.name,
        child_birth_date=sent.birth_date,
        status_label=label,
    )
    if case is None or not opened(referral, case):
        return view
    view.provider = session.get(Organisation, case.provider_id)
    curator = session.get(User, case.curator_id) if case.curator_id else None
    view.curator_name = curator.full_name if curator else None
    # The journey's steps: a transfer, a routing or a consilium is the provider's inter-agency work,
    # not a state of the child's (and not the referrer's business).
    view.history = [
        row
        for row in session.exec(
            select(CaseHistory).where(CaseHistory.case_id == case.id).order_by(col(CaseHistory.id))
        )
        if not is_workflow_event(row.event) and row.event not in MERGE_EVENTS
    ]
    conclusion = session.exec(
        select(NeedConclusion)
        .where(NeedConclusion.case_id == case.id)
        .order_by(col(NeedConclusion.id).desc())
    ).first()
    ipr = session.exec(select(Ipr).where(Ipr.case_id == case.id, Ipr.status == "active")).first()
    shared = (conclusion is not None or ipr is not None) and shares_with_referrers(session, case.child_id)
    if conclusion is not None:
        view.conclusion, view.conclusion_withheld = (conclusion, False) if shared else (None, True)
    if ipr is not None:
        view.ipr, view.ipr_withheld = (ipr, False) if shared else (None, True)
        if shared:
            view.services = list(session.exec(select(PlannedService).where(PlannedService.ipr_id == ipr.id)))
    return view


def feedback_referrals(case: Case, referrals: Iterable[Referral]) -> list[Referral]:
    """The referrals whose referring organisation hears back about `case`: the one that opened it."""
    return sorted(
        (r for r in referrals if opened(r, case) and r.referring_org_id is not None), key=lambda r: r.id or 0
    )


def opened_its_case() -> Any:
    """SQL: the referral opened the case it belongs to (feedback_referrals, in a query)."""
    return exists().where(col(Case.id) == col(Referral.case_id), col(Case.referral_id) == col(Referral.id))


def referrer_context(referral: Referral | None, child: Child) -> dict[str, str]:
    """What messages to a referring organisation may say about the child: what it sent."""
    if referral is None:
        return {"child_name": "", "child_first_name": "", "child_birth_date": ""}
    sent = sent_child(referral, child)
    return {
        "child_name": sent.name,
        "child_first_name": sent.first_name,
        "child_birth_date": f"{sent.birth_date:%d.%m.%Y}" if sent.birth_date else "",
    }


SNILS_ROLES = frozenset({Role.intake_coordinator, Role.curator, Role.supervisor})


def shown_snils(principal: Principal, snils: str | None) -> str | None:
    """The СНИЛС as this reader may see it: its 11 digits, or masked but for its control digits."""
    if not snils:
        return None
    if principal.is_provider_staff and principal.role in SNILS_ROLES:
        return snils
    return f"***-***-*** {snils[-2:]}"


def display_snils(value: str | None) -> str:
    """For a page: 11 digits as 123-456-789 01; a masked value as it is."""
    if not value:
        return "—"
    return format_snils(value) if value.isdigit() and len(value) == 11 else value
