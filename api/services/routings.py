"""Routing («маршрутизация»): the curator refers the family to another organisation and that
organisation (or the curator) records the outcome. The one layer the API and the pages call.

Who sees a routing (DESIGN §6): the provider's staff (their cases' routings, in full), the region's
РРМЦ, and the users of the organisation it is addressed to, who see the minimum (the child's name and
birth date, the kind of help, who sent it and whom to call), never the case itself nor the purpose.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from api.deps import Principal
from api.scoping import case_scope
from core.errors import Conflict, Forbidden, NotFound, Unprocessable
from models.cases import Case
from models.children import Child, full_name
from models.common import utcnow
from models.deadlines import Deadline, DeadlineStatus
from models.organisations import Organisation, OrgKind
from models.routings import (
    ROUTING_KIND_LABELS,
    ROUTING_OUTCOME_LABELS,
    Routing,
    RoutingAnswer,
    RoutingIn,
    RoutingIncoming,
    RoutingPublic,
)
from models.users import Role, User
from standards import load_standard
from statemachines.fire import region_of
from statemachines.journey import FINAL_STATES
from statemachines.routing import CURATORS, ROUTING
from statemachines.workflows import history, open_deadline, step

TIMER = "routing.answer"
# Organisations a family is not routed to: another provider takes the case by a transfer, and the
# regional centre supervises, it gives no help to a family.
NOT_TARGETS = {
    OrgKind.provider: "Направить семью в другую организацию ранней помощи можно только передачей случая",
    OrgKind.rrmc: "Региональный ресурсно-методический центр не принимает семьи по направлению",
}


def require_router(principal: Principal) -> None:
    """The case's curator, its coordinator, the provider's head."""
    if not principal.is_provider_staff or principal.role not in CURATORS:
        raise Forbidden("Направлять семью в другие организации могут куратор, координатор и руководитель")


def require_own(principal: Principal, case: Case) -> None:
    """Only the provider the case belongs to acts on it: a member of its team from another
    organisation reads it (api/scoping.py) and changes nothing."""
    if principal.org.id != case.provider_id:
        raise Forbidden("Действие доступно только организации, которая ведёт случай")


def require_open(case: Case) -> None:
    if case.state in FINAL_STATES:
        raise Conflict("Случай завершён: направить семью уже нельзя", field="case_id")


def target_org(session: Session, case: Case, org_id: int, field: str = "target_org_id") -> Organisation:
    """An active organisation of the case's region that is not an early-help provider."""
    provider = session.get(Organisation, case.provider_id)
    org = session.get(Organisation, org_id)
    if org is None or provider is None or not org.is_active or org.region_id != provider.region_id:
        raise NotFound("Организация не найдена среди действующих организаций региона", field=field)
    if org.kind in NOT_TARGETS:
        raise Unprocessable(NOT_TARGETS[OrgKind(org.kind)], field=field)
    return org


def curator_contact(session: Session, case: Case) -> tuple[str, str]:
    """Whom the organisation calls back: the curator (name, e-mail), else the provider's phone."""
    provider = session.get(Organisation, case.provider_id)
    curator = session.get(User, case.curator_id) if case.curator_id else None
    phone = provider.phone if provider and provider.phone else ""
    name = curator.full_name if curator else ""
    contact = ", ".join(x for x in ((curator.email if curator else None) or "", phone) if x)
    return name, contact


def create(
    session: Session,
    principal: Principal,
    case: Case,
    body: RoutingIn,
    *,
    public_url: str,
    consilium_id: int | None = None,
    now: datetime | None = None,
) -> Routing:
    require_router(principal)
    require_own(principal, case)
    require_open(case)
    org = target_org(session, case, body.target_org_id)
    assert case.id is not None and org.id is not None
    now = now or utcnow()
    region = region_of(session, case)
    zone = ZoneInfo(region.timezone)
    standard = load_standard(region.code)
    deadline = open_deadline(
        session,
        ROUTING,
        standard.workflows.routing.answer,
        case,
        provider_id=case.provider_id,
        region=region,
        standard=standard,
        now=now,
    )
    routing = Routing(
        case_id=case.id,
        provider_id=case.provider_id,
        target_org_id=org.id,
        kind=body.kind,
        activity_code=body.activity_code,
        purpose=body.purpose,
        status=ROUTING.initial,
        sent_by_id=principal.id,
        sent_at=now,
        due_at=deadline.due_at,
        deadline_id=deadline.id,
        consilium_id=consilium_id,
    )
    session.add(routing)
    session.flush()
    assert routing.id is not None
    name, contact = curator_contact(session, case)
    history(
        session,
        ROUTING,
        case,
        "send",
        actor=principal.user,
        payload={"routing_id": routing.id, "target_org_id": org.id, "kind": str(body.kind)},
        now=now,
        effects_context={
            "org_id": org.id,
            "routing_id": routing.id,
            # The message's words: no purpose text, no diagnosis (messages.yaml routing_request).
            "vars": {
                "routing_id": str(routing.id),
                "routing_kind": ROUTING_KIND_LABELS[body.kind],
                "routing_due": f"{deadline.due_at.astimezone(zone):%d.%m.%Y}",
                "curator_contact": contact or "—",
                "curator_name": name,
                "answer_url": f"{public_url.rstrip('/')}/routings",
            },
        },
    )
    return routing


# --- reading ----------------------------------------------------------------------------------


def _is_target_user(principal: Principal, routing: Routing) -> bool:
    return principal.org.id == routing.target_org_id and not principal.is_provider_staff


def _scope(principal: Principal) -> Any:
    if principal.is_provider_staff or principal.is_regional_supervisor:
        return col(Routing.case_id).in_(select(Case.id).where(case_scope(principal)))
    if principal.role in (Role.analyst, Role.admin):
        raise Forbidden("Направления семей в другие организации недоступны для вашей роли")
    return Routing.target_org_id == principal.org.id


def get_routing(session: Session, principal: Principal, routing_id: int) -> Routing:
    routing = session.exec(select(Routing).where(Routing.id == routing_id, _scope(principal))).first()
    if routing is None:
        raise NotFound("Направление не найдено", field="routing_id")
    return routing


def for_case(session: Session, principal: Principal, case: Case) -> list[RoutingPublic]:
    """The case's routings (the caller already passed api.scoping.get_case)."""
    rows = list(session.exec(select(Routing).where(Routing.case_id == case.id).order_by(col(Routing.id))))
    return public(session, principal, rows)


def _owners(session: Session, rows: list[Routing]) -> dict[int, int]:
    """The provider each routing's case belongs to now, by case id: a transferred case's routings
    are its new provider's to answer and cancel (Routing.provider_id is the one that sent it)."""
    ids = {r.case_id for r in rows}
    if not ids:
        return {}
    return dict(session.exec(select(Case.id, Case.provider_id).where(col(Case.id).in_(ids))).all())  # type: ignore[arg-type]


def public(session: Session, principal: Principal, rows: list[Routing]) -> list[RoutingPublic]:
    orgs = _names(session, {r.target_org_id for r in rows})
    owners = _owners(session, rows)
    labels = ROUTING.state_labels
    return [
        RoutingPublic(
            id=r.id or 0,
            case_id=r.case_id,
            provider_id=r.provider_id,
            target_org_id=r.target_org_id,
            target_org_name=orgs.get(r.target_org_id, ""),
            kind=r.kind,
            kind_label=ROUTING_KIND_LABELS.get(r.kind, r.kind),
            activity_code=r.activity_code,
            purpose=r.purpose,
            status=r.status,
            status_label=labels[r.status],
            sent_by_id=r.sent_by_id,
            sent_at=r.sent_at,
            due_at=r.due_at,
            consilium_id=r.consilium_id,
            outcome_code=r.outcome_code,
            outcome_label=ROUTING_OUTCOME_LABELS.get(r.outcome_code or ""),
            outcome=r.outcome,
            answered_at=r.answered_at,
            answered_by_id=r.answered_by_id,
            answered_by_org_id=r.answered_by_org_id,
            allowed_events=allowed_events(principal, r, owners[r.case_id]),
        )
        for r in rows
    ]


def _provider_side(principal: Principal, owner: int) -> bool:
    return principal.is_provider_staff and principal.org.id == owner and principal.role in CURATORS


def allowed_events(principal: Principal, routing: Routing, owner: int) -> list[str]:
    """`owner`: the provider the routing's case belongs to now."""
    events = ROUTING.events_from(routing.status)
    if _provider_side(principal, owner):
        return [e for e in events if e in ("answer", "cancel")]
    if _is_target_user(principal, routing):
        return [e for e in events if e == "answer"]
    return []


def _names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {
        o.id or 0: o.name for o in session.exec(select(Organisation).where(col(Organisation.id).in_(ids)))
    }


def listing(
    session: Session, principal: Principal, *, status: str | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[RoutingPublic] | list[RoutingIncoming], int]:
    """GET /routings: the provider's (РРМЦ: the region's) routings in full; for anyone else, those
    addressed to their organisation, in the minimal form."""
    from sqlmodel import func

    query = select(Routing).where(_scope(principal))
    if status is not None:
        query = query.where(Routing.status == status)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = list(
        session.exec(
            query.order_by(col(Routing.sent_at).desc(), col(Routing.id).desc()).limit(limit).offset(offset)
        )
    )
    if principal.is_provider_staff or principal.is_regional_supervisor:
        return public(session, principal, rows), total
    return incoming(session, rows), total


def incoming(session: Session, rows: list[Routing]) -> list[RoutingIncoming]:
    if not rows:
        return []
    cases = {c.id: c for c in session.exec(select(Case).where(col(Case.id).in_({r.case_id for r in rows})))}
    children = {
        c.id: c
        for c in session.exec(select(Child).where(col(Child.id).in_({c.child_id for c in cases.values()})))
    }
    providers = _names(session, {c.provider_id for c in cases.values()})
    labels = ROUTING.state_labels
    items = []
    for r in rows:
        case = cases[r.case_id]
        child = children[case.child_id]
        name, contact = curator_contact(session, case)
        items.append(
            RoutingIncoming(
                id=r.id or 0,
                case_id=r.case_id,
                kind=r.kind,
                kind_label=ROUTING_KIND_LABELS.get(r.kind, r.kind),
                status=r.status,
                status_label=labels[r.status],
                child_name=full_name(child),
                child_birth_date=f"{child.birth_date:%d.%m.%Y}",
                provider_name=providers.get(case.provider_id, ""),
                curator_name=name,
                curator_contact=contact,
                sent_at=r.sent_at,
                due_at=r.due_at,
                outcome_code=r.outcome_code,
                outcome_label=ROUTING_OUTCOME_LABELS.get(r.outcome_code or ""),
                outcome=r.outcome,
                answered_at=r.answered_at,
            )
        )
    return items


def audit_rows(
    session: Session, rows: Sequence[RoutingPublic | RoutingIncoming]
) -> list[tuple[int | None, int | None]]:
    """(routing id, child id) of each, for the audit log's rows: one query."""
    if not rows:
        return []
    ids = {r.case_id for r in rows}
    children = dict(session.exec(select(Case.id, Case.child_id).where(col(Case.id).in_(ids))).all())
    return [(r.id, children.get(r.case_id)) for r in rows]


def child_of(session: Session, routing: Routing) -> int:
    return session.exec(select(Case.child_id).where(Case.id == routing.case_id)).one()


# --- steps ------------------------------------------------------------------------------------


def _case(session: Session, routing: Routing) -> Case:
    case = session.get(Case, routing.case_id)
    assert case is not None
    return case


def _close_deadline(session: Session, routing: Routing, status: DeadlineStatus, now: datetime) -> None:
    deadline = session.get(Deadline, routing.deadline_id) if routing.deadline_id else None
    if deadline is not None and deadline.status == DeadlineStatus.open:
        deadline.status = status
        deadline.closed_at = now
        deadline.paused_at = None
        session.add(deadline)


def _vars(session: Session, routing: Routing, case: Case) -> dict[str, Any]:
    zone = ZoneInfo(region_of(session, case).timezone)
    org = session.get(Organisation, routing.target_org_id)
    return {
        "routing_id": str(routing.id),
        "routing_kind": ROUTING_KIND_LABELS.get(routing.kind, routing.kind),
        "routing_org": org.name if org else "",
        "routing_sent": f"{routing.sent_at.astimezone(zone):%d.%m.%Y}",
        "routing_outcome": ROUTING_OUTCOME_LABELS.get(routing.outcome_code or "", ""),
    }


def answer(
    session: Session, principal: Principal, routing: Routing, body: RoutingAnswer, now: datetime | None = None
) -> Routing:
    """The outcome, from the organisation it was sent to or from the case's provider. An expired
    routing still takes a late answer."""
    case = _case(session, routing)
    if not _provider_side(principal, case.provider_id) and not _is_target_user(principal, routing):
        raise Forbidden("Записать результат могут организация, в которую направлена семья, и куратор случая")
    now = now or utcnow()
    step(
        session,
        ROUTING,
        routing,
        "answer",
        case=case,
        actor=principal.user,
        payload={"routing_id": routing.id, "outcome_code": str(body.outcome_code)},
        values={
            "outcome_code": str(body.outcome_code),
            "outcome": body.outcome or None,
            "answered_at": now,
            "answered_by_id": principal.id,
            "answered_by_org_id": principal.org.id,
        },
        now=now,
        effects_context={
            "org_id": routing.target_org_id,
            "vars": _vars(session, routing, case)
            | {"routing_outcome": ROUTING_OUTCOME_LABELS[body.outcome_code]},
        },
    )
    _close_deadline(session, routing, DeadlineStatus.met, now)
    return routing


def cancel(
    session: Session, principal: Principal, routing: Routing, reason: str, now: datetime | None = None
) -> Routing:
    case = _case(session, routing)
    if not principal.is_provider_staff or principal.org.id != case.provider_id:
        raise Forbidden("Отменить направление может только организация, которая ведёт случай")
    now = now or utcnow()
    step(
        session,
        ROUTING,
        routing,
        "cancel",
        case=case,
        actor=principal.user,
        payload={"routing_id": routing.id},
        reason=reason or None,
        values={"cancelled_reason": reason or None},
        now=now,
        effects_context={"org_id": routing.target_org_id, "vars": _vars(session, routing, case)},
    )
    _close_deadline(session, routing, DeadlineStatus.cancelled, now)
    return routing


def expire(session: Session, deadline_id: int, now: datetime) -> None:
    """The routing.answer deadline fell due (the deadline sweep): the routing is marked expired and
    the curator told; the organisation may still answer late."""
    routing = session.exec(select(Routing).where(Routing.deadline_id == deadline_id)).first()
    if routing is None:
        return
    if routing.status == "sent":
        case = _case(session, routing)
        step(
            session,
            ROUTING,
            routing,
            "expire",
            case=case,
            actor=None,
            payload={"routing_id": routing.id},
            reason="Автоматически: истёк срок ответа организации",
            now=now,
            effects_context={"org_id": routing.target_org_id, "vars": _vars(session, routing, case)},
        )
    _close_deadline(session, routing, DeadlineStatus.missed, now)
