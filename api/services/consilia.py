"""Inter-agency consilium («межведомственный консилиум»): planned for a case with participants from
other organisations, each invited through its channel with a minimal summary (one outbox row per
organisation, so each is told once); held with decisions and recommendations, which may lead to
routings (created in the same transaction) and to revising the ИПРП (recorded here; the curator
then takes the journey's own steps).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from api.deps import Principal
from api.services import routings
from core.errors import DomainError, Forbidden, NotFound, Unprocessable
from models.cases import Case
from models.common import utcnow
from models.organisations import Organisation
from models.outbox import Outbox
from models.routings import (
    Consilium,
    ConsiliumHold,
    ConsiliumIn,
    ConsiliumParticipant,
    ConsiliumPublic,
    ParticipantIn,
    ParticipantPublic,
    Routing,
)
from statemachines.consilium import CONSILIUM, ORGANISERS
from statemachines.effects import effect_rows
from statemachines.fire import region_of
from statemachines.workflows import history, step

REVISE_IPR_NOTE = "Консилиум рекомендовал пересмотреть ИПРП"


def require_organiser(principal: Principal) -> None:
    if not principal.is_provider_staff or principal.role not in ORGANISERS:
        raise Forbidden("Консилиум назначают куратор, координатор и руководитель организации")


def _participants(session: Session, case: Case, body: ConsiliumIn) -> list[ParticipantIn]:
    """The organisations, each once (a person named in `participants` wins over a bare id): active
    organisations of the case's region; the provider itself may be one of them."""
    chosen: dict[int, ParticipantIn] = {}
    for org_id in body.participant_org_ids:
        chosen.setdefault(org_id, ParticipantIn(organisation_id=org_id))
    for person in body.participants:
        chosen[person.organisation_id] = person
    provider = session.get(Organisation, case.provider_id)
    assert provider is not None
    found = {
        o.id: o
        for o in session.exec(select(Organisation).where(col(Organisation.id).in_(list(chosen))))
        if o.is_active and o.region_id == provider.region_id
    }
    for org_id in chosen:
        if org_id not in found:
            raise NotFound(
                f"Организация № {org_id} не найдена среди действующих организаций региона",
                field="participant_org_ids",
            )
    if not any(org_id != case.provider_id for org_id in chosen):
        raise Unprocessable(
            "Пригласите хотя бы одну другую организацию: консилиум межведомственный",
            field="participant_org_ids",
        )
    return list(chosen.values())


def _summary(session: Session, consilium: Consilium, case: Case) -> dict[str, str]:
    """What an invited organisation is told: when and where, who organises it and whom to call.
    No agenda text and no diagnosis (the child's name and birth date come with the message)."""
    zone = ZoneInfo(region_of(session, case).timezone)
    name, contact = routings.curator_contact(session, case)
    return {
        "consilium_id": str(consilium.id),
        "consilium_at": f"{consilium.scheduled_at.astimezone(zone):%d.%m.%Y %H:%M} ({zone.key})",
        "consilium_place": consilium.place,
        "curator_contact": contact or "—",
        "curator_name": name,
    }


def _tell(session: Session, trigger: str, case: Case, org_id: int, variables: dict[str, str]) -> int | None:
    """One organisation's outbox row for `trigger`; its id."""
    rows = effect_rows(
        trigger,
        case_id=case.id,
        referral_id=case.referral_id,
        context={"org_id": org_id, "vars": variables, "payload": {}},
    )
    ids = []
    for row in rows:
        outbox = Outbox(**row)
        session.add(outbox)
        session.flush()
        ids.append(outbox.id)
    return ids[0] if ids else None


def plan(
    session: Session, principal: Principal, case: Case, body: ConsiliumIn, now: datetime | None = None
) -> Consilium:
    require_organiser(principal)
    routings.require_own(principal, case)
    routings.require_open(case)
    now = now or utcnow()
    if body.scheduled_at <= now:
        raise Unprocessable("Консилиум нельзя назначить на прошедшее время", field="scheduled_at")
    people = _participants(session, case, body)
    assert case.id is not None
    consilium = Consilium(
        case_id=case.id,
        provider_id=case.provider_id,
        scheduled_at=body.scheduled_at,
        place=body.place,
        agenda=body.agenda,
        status=CONSILIUM.initial,
        created_by_id=principal.id,
        created_at=now,
    )
    session.add(consilium)
    session.flush()
    assert consilium.id is not None
    history(
        session,
        CONSILIUM,
        case,
        "plan",
        actor=principal.user,
        payload={"consilium_id": consilium.id, "organisation_ids": [p.organisation_id for p in people]},
        now=now,
    )
    summary = _summary(session, consilium, case)
    for person in people:
        invited = (
            _tell(session, CONSILIUM.trigger("invite"), case, person.organisation_id, summary)
            if person.organisation_id != case.provider_id
            else None
        )
        session.add(
            ConsiliumParticipant(
                consilium_id=consilium.id,
                organisation_id=person.organisation_id,
                person_name=(person.person_name or "").strip() or None,
                position=(person.position or "").strip() or None,
                invitation_outbox_id=invited,
            )
        )
    session.flush()
    return consilium


def get_consilium(session: Session, principal: Principal, consilium_id: int) -> tuple[Consilium, Case]:
    """A consilium of a case the caller may see (api.scoping.case_scope); 404 otherwise."""
    from api.scoping import case_scope

    found = session.exec(
        select(Consilium, Case)
        .join(Case, col(Case.id) == Consilium.case_id)
        .where(Consilium.id == consilium_id, case_scope(principal))
    ).first()
    if found is None:
        raise NotFound("Консилиум не найден", field="consilium_id")
    return found[0], found[1]


def hold(
    session: Session,
    principal: Principal,
    consilium: Consilium,
    case: Case,
    body: ConsiliumHold,
    *,
    public_url: str,
    now: datetime | None = None,
) -> Consilium:
    """Decisions recorded; the routings they call for created in the same transaction (a bad one
    refuses the whole request: the caller's transaction rolls back)."""
    require_organiser(principal)
    routings.require_own(principal, case)
    now = now or utcnow()
    step(
        session,
        CONSILIUM,
        consilium,
        "hold",
        case=case,
        actor=principal.user,
        payload={"consilium_id": consilium.id, "revise_ipr": body.revise_ipr, "routings": len(body.routings)},
        values={
            "decisions": body.decisions,
            "recommendations": body.recommendations.strip() or None,
            "revise_ipr": body.revise_ipr,
            "held_at": now,
            "recorded_by_id": principal.id,
        },
        now=now,
    )
    for i, wanted in enumerate(body.routings):
        try:
            routings.create(
                session, principal, case, wanted, public_url=public_url, consilium_id=consilium.id, now=now
            )
        except DomainError as error:
            error.field = f"routings.{i}.{error.field}" if error.field else f"routings.{i}"
            raise
    return consilium


def cancel(
    session: Session,
    principal: Principal,
    consilium: Consilium,
    case: Case,
    reason: str,
    now: datetime | None = None,
) -> Consilium:
    """Called off; each invited organisation is told (one row each, as the invitations)."""
    require_organiser(principal)
    routings.require_own(principal, case)
    now = now or utcnow()
    summary = _summary(session, consilium, case)
    step(
        session,
        CONSILIUM,
        consilium,
        "cancel",
        case=case,
        actor=principal.user,
        payload={"consilium_id": consilium.id},
        reason=reason or None,
        values={"cancelled_reason": reason or None},
        now=now,
    )
    invited = session.exec(
        select(ConsiliumParticipant.organisation_id).where(
            ConsiliumParticipant.consilium_id == consilium.id,
            col(ConsiliumParticipant.invitation_outbox_id).is_not(None),
        )
    )
    for org_id in invited:
        _tell(session, CONSILIUM.trigger("call_off"), case, org_id, summary)
    return consilium


def for_case(session: Session, principal: Principal, case: Case) -> list[ConsiliumPublic]:
    rows = list(
        session.exec(
            select(Consilium).where(Consilium.case_id == case.id).order_by(col(Consilium.scheduled_at))
        )
    )
    return public(session, principal, rows)


def public(session: Session, principal: Principal, rows: list[Consilium]) -> list[ConsiliumPublic]:
    ids = [r.id for r in rows]
    people = list(
        session.exec(
            select(ConsiliumParticipant)
            .where(col(ConsiliumParticipant.consilium_id).in_(ids))
            .order_by(col(ConsiliumParticipant.id))
        )
    )
    orgs = {
        o.id: o.name
        for o in session.exec(
            select(Organisation).where(col(Organisation.id).in_({p.organisation_id for p in people}))
        )
    }
    routed: dict[int, list[int]] = {}
    for routing_id, consilium_id in session.exec(
        select(Routing.id, Routing.consilium_id)
        .where(col(Routing.consilium_id).in_(ids))
        .order_by(col(Routing.id))
    ):
        routed.setdefault(consilium_id or 0, []).append(routing_id or 0)
    organiser = principal.is_provider_staff and principal.role in ORGANISERS
    owners = dict(
        session.exec(
            select(Case.id, Case.provider_id).where(col(Case.id).in_({r.case_id for r in rows}))
        ).all()  # type: ignore[arg-type]
    )
    labels = CONSILIUM.state_labels
    result = []
    for r in rows:
        # The case's provider now (a transferred case's consilia are its new provider's to hold).
        owner = owners.get(r.case_id)
        allowed = CONSILIUM.events_from(r.status) if organiser and principal.org.id == owner else []
        result.append(
            ConsiliumPublic(
                id=r.id or 0,
                case_id=r.case_id,
                provider_id=r.provider_id,
                scheduled_at=r.scheduled_at,
                place=r.place,
                agenda=r.agenda,
                status=r.status,
                status_label=labels[r.status],
                decisions=r.decisions,
                recommendations=r.recommendations,
                revise_ipr=r.revise_ipr,
                held_at=r.held_at,
                recorded_by_id=r.recorded_by_id,
                created_by_id=r.created_by_id,
                created_at=r.created_at,
                participants=[
                    ParticipantPublic(
                        organisation_id=p.organisation_id,
                        organisation_name=orgs.get(p.organisation_id, ""),
                        person_name=p.person_name,
                        position=p.position,
                        invited=p.invitation_outbox_id is not None,
                    )
                    for p in people
                    if p.consilium_id == r.id
                ],
                routing_ids=routed.get(r.id or 0, []),
                allowed_events=allowed,
            )
        )
    return result


def revise_ipr_recommended(rows: list[ConsiliumPublic]) -> bool:
    return any(r.status == "held" and r.revise_ipr for r in rows)
