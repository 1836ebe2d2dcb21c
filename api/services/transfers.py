"""Transfers of a case to another provider: request, accept, refuse, withdraw, and who reads what.

The API routes (api/routes/transfers.py) and the pages (api/pages/transfers.py) both call these
functions; each checks the caller itself. The workflow (states, steps, effects) is
statemachines/transfer.py; every step goes through statemachines.workflows.step.

Who reads what (DESIGN §6):
- the requesting provider's coordinators, curators and head, and the region's РРМЦ, see its
  outgoing transfers; the receiving provider's coordinators and head its incoming ones;
- before acceptance the receiving provider sees only what it needs to decide (the child's name,
  birth date and municipality, the reason, the requesting organisation, the case's state) here,
  never the case card (api/scoping.case_scope: the case is still the other provider's);
- after acceptance the case is the new provider's; the old provider keeps the transfer row with
  the child's surname and initials only (enough to answer "where did this family go?"), no birth
  date, municipality or state; so does a receiving provider that refused, and either side of a
  withdrawn request that no longer owns the case.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, or_, select, update

from api.deps import Principal
from core.errors import Conflict, Forbidden, NotFound, Unprocessable
from models.cases import Case
from models.children import Child, full_name
from models.common import utcnow
from models.consents import Consent, ConsentKind, ConsentStatus, consent_date_problem
from models.deadlines import Deadline, DeadlineStatus
from models.organisations import Organisation, OrgKind, Region
from models.programmes import ServiceSession, SessionStatus
from models.teams import TeamMember
from models.transfers import Transfer, TransferCreate, TransferPublic
from standards import load_standard
from statemachines.effects import enqueue
from statemachines.guards import curator_problem
from statemachines.journey import FINAL_STATES, STATE_LABELS
from statemachines.transfer import RECEIVERS, SENDERS, TRANSFER
from statemachines.workflows import history, open_deadline, step

TIMER = "transfer.answer"
STATUSES = [name for name, _ in TRANSFER.states]
DIRECTIONS = ("incoming", "outgoing")
STAFF_ROLES = SENDERS | RECEIVERS


class TransferPending(Conflict):
    code = "transfer_pending"


# --- who may do what --------------------------------------------------------------------------


def scope(principal: Principal) -> Any:
    """The transfers `principal` may read; Forbidden for roles that never see them."""
    if principal.is_provider_staff and principal.role in STAFF_ROLES:
        if principal.role in RECEIVERS:
            return or_(
                Transfer.from_provider_id == principal.org.id, Transfer.to_provider_id == principal.org.id
            )
        return Transfer.from_provider_id == principal.org.id
    if principal.is_regional_supervisor:
        region_orgs = select(Organisation.id).where(Organisation.region_id == principal.org.region_id)
        return col(Transfer.from_provider_id).in_(region_orgs)
    raise Forbidden("Передачи случаев доступны координаторам, кураторам и руководителям организаций и РРМЦ")


def may_request(principal: Principal, case: Case) -> bool:
    """A case the caller may read (api/scoping.get_case): its provider's coordinator, curator or head,
    or the region's РРМЦ supervisor."""
    if principal.is_regional_supervisor:
        return True
    return principal.is_provider_staff and principal.role in SENDERS and case.provider_id == principal.org.id


def may_answer(principal: Principal, transfer: Transfer) -> bool:
    return (
        principal.is_provider_staff
        and principal.role in RECEIVERS
        and principal.org.id == transfer.to_provider_id
    )


def may_withdraw(principal: Principal, transfer: Transfer) -> bool:
    if principal.is_regional_supervisor:
        return True  # scope() keeps them to their region's transfers
    return (
        principal.is_provider_staff
        and principal.role in SENDERS
        and principal.org.id == transfer.from_provider_id
    )


def allowed_actions(principal: Principal, transfer: Transfer) -> list[str]:
    if transfer.status != "requested":
        return []
    actions = ["accept", "refuse"] if may_answer(principal, transfer) else []
    return actions + (["withdraw"] if may_withdraw(principal, transfer) else [])


# --- reading ----------------------------------------------------------------------------------


def visible(session: Session, principal: Principal, transfer_id: int) -> Transfer:
    transfer = session.exec(select(Transfer).where(Transfer.id == transfer_id, scope(principal))).first()
    if transfer is None:
        raise NotFound("Запрос о передаче не найден", field="transfer_id")
    return transfer


def initials(child: Child) -> str:
    rest = " ".join(f"{p[0]}." for p in (child.first_name, child.middle_name) if p)
    return f"{child.last_name} {rest}".strip()


def _shows_child(principal: Principal, transfer: Transfer, case: Case) -> bool:
    if principal.is_regional_supervisor:
        return True
    if case.provider_id == principal.org.id:
        return True  # the case is the reader's (now)
    return transfer.status == "requested" and transfer.to_provider_id == principal.org.id


def public(session: Session, principal: Principal, transfers: list[Transfer]) -> list[TransferPublic]:
    """Transfers as `principal` may see them; cases, children, organisations loaded in one go each."""
    if not transfers:
        return []
    case_ids = {t.case_id for t in transfers}
    cases = {c.id: c for c in session.exec(select(Case).where(col(Case.id).in_(case_ids)))}
    children = {
        c.id: c
        for c in session.exec(select(Child).where(col(Child.id).in_({c.child_id for c in cases.values()})))
    }
    org_ids = {t.from_provider_id for t in transfers} | {t.to_provider_id for t in transfers}
    orgs = {o.id: o for o in session.exec(select(Organisation).where(col(Organisation.id).in_(org_ids)))}
    pending = [t.case_id for t in transfers if t.status == "requested"]
    due = (
        {
            d.case_id: d.due_at
            for d in session.exec(
                select(Deadline).where(
                    col(Deadline.case_id).in_(pending),
                    Deadline.timer == TIMER,
                    Deadline.status == DeadlineStatus.open,
                )
            )
        }
        if pending
        else {}
    )
    labels = TRANSFER.state_labels
    result = []
    for t in transfers:
        assert t.id is not None
        case = cases[t.case_id]
        child = children[case.child_id]
        full = _shows_child(principal, t, case)
        direction = None
        if principal.is_provider_staff:
            direction = "outgoing" if t.from_provider_id == principal.org.id else "incoming"
        result.append(
            TransferPublic(
                id=t.id,
                case_id=t.case_id,
                from_provider_id=t.from_provider_id,
                from_provider_name=orgs[t.from_provider_id].name,
                to_provider_id=t.to_provider_id,
                to_provider_name=orgs[t.to_provider_id].name,
                status=t.status,
                status_label=labels[t.status],
                reason=t.reason,
                requested_at=t.requested_at,
                answered_at=t.answered_at,
                answer_reason=t.answer_reason,
                answer_due_at=due.get(t.case_id) if t.status == "requested" else None,
                direction=direction,
                child_name=full_name(child) if full else initials(child),
                child_birth_date=child.birth_date if full else None,
                municipality=child.municipality if full else None,
                case_state=case.state if full else None,
                case_state_label=STATE_LABELS[case.state] if full else None,
                # A case that ended while the request waited can no longer be taken over.
                allowed_actions=[
                    a
                    for a in allowed_actions(principal, t)
                    if a != "accept" or case.state not in FINAL_STATES
                ],
            )
        )
    return result


def listed(
    session: Session,
    principal: Principal,
    *,
    direction: str | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Transfer], list[TransferPublic], int]:
    if direction is not None and direction not in DIRECTIONS:
        raise Unprocessable("Направление: incoming (входящие) или outgoing (исходящие)", field="direction")
    if status is not None and status not in STATUSES:
        raise Unprocessable(f"Неизвестное состояние; допустимые: {', '.join(STATUSES)}", field="status")
    conditions = [scope(principal)]
    if direction == "incoming":
        conditions.append(Transfer.to_provider_id == principal.org.id)
    elif direction == "outgoing":
        conditions.append(Transfer.from_provider_id == principal.org.id)
    if status is not None:
        conditions.append(Transfer.status == status)
    total = session.exec(select(func.count()).select_from(Transfer).where(*conditions)).one()
    rows = list(
        session.exec(
            select(Transfer).where(*conditions).order_by(col(Transfer.id).desc()).offset(offset).limit(limit)
        )
    )
    return rows, public(session, principal, rows), total


def pending_for_case(session: Session, principal: Principal, case: Case) -> TransferPublic | None:
    """The case's pending transfer as the case card shows it (the card's reader may read the case)."""
    row = session.exec(
        select(Transfer).where(Transfer.case_id == case.id, Transfer.status == "requested")
    ).first()
    return public(session, principal, [row])[0] if row is not None else None


def targets(session: Session, case: Case) -> list[Organisation]:
    """The providers a case may be transferred to: the region's other active providers."""
    region_id = session.exec(select(Organisation.region_id).where(Organisation.id == case.provider_id)).one()
    return list(
        session.exec(
            select(Organisation)
            .where(
                Organisation.region_id == region_id,
                Organisation.kind == OrgKind.provider,
                col(Organisation.is_active).is_(True),
                Organisation.id != case.provider_id,
            )
            .order_by(col(Organisation.name))
        )
    )


def child_id_of(session: Session, transfer: Transfer) -> int:
    return session.exec(select(Case.child_id).where(Case.id == transfer.case_id)).one()


def audit_rows(session: Session, transfers: list[Transfer]) -> list[tuple[int | None, int | None]]:
    """(transfer id, child id) of each, for the audit log's read rows: one query."""
    if not transfers:
        return []
    children = dict(
        session.exec(
            select(Case.id, Case.child_id).where(col(Case.id).in_({t.case_id for t in transfers}))
        ).all()
    )
    return [(t.id, children.get(t.case_id)) for t in transfers]


# --- changing ---------------------------------------------------------------------------------


def _region(session: Session, org_id: int) -> Region:
    return session.exec(select(Region).join(Organisation).where(Organisation.id == org_id)).one()


def _names(session: Session, transfer: Transfer) -> dict[str, Any]:
    source = session.get(Organisation, transfer.from_provider_id)
    target = session.get(Organisation, transfer.to_provider_id)
    assert source is not None and target is not None
    return {
        "transfer_id": transfer.id,
        "from_provider_id": source.id,
        "from_provider_name": source.name,
        "to_provider_id": target.id,
        "to_provider_name": target.name,
        "to_provider_phone": target.phone or "",
    }


def _vars(names: dict[str, Any], answer_due: str = "") -> dict[str, str]:
    return {
        "from_provider_name": names["from_provider_name"],
        "to_provider_name": names["to_provider_name"],
        "to_provider_phone": names["to_provider_phone"] or "—",
        "answer_due": answer_due,
    }


def _payload(names: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in names.items() if k != "to_provider_phone"}


def _has_consent(session: Session, child_id: int) -> bool:
    status = session.exec(
        select(Consent.status)
        .where(Consent.child_id == child_id, Consent.kind == ConsentKind.transfer)
        .order_by(col(Consent.date).desc(), col(Consent.id).desc())
        .limit(1)
    ).first()
    return status == ConsentStatus.given


def _target_problem(session: Session, case: Case, target_id: int) -> str | None:
    if target_id == case.provider_id:
        return "Случай уже сопровождает эта организация: выберите другую"
    target = session.get(Organisation, target_id)
    source = session.get(Organisation, case.provider_id)
    assert source is not None
    if target is None or target.region_id != source.region_id:
        return "Организация не найдена в регионе"
    if target.kind != OrgKind.provider:
        return "Эта организация не оказывает раннюю помощь: передать случай можно только такой организации"
    if not target.is_active:
        return "Организация не работает в системе"
    return None


def request(
    session: Session, principal: Principal, case: Case, body: TransferCreate, now: datetime | None = None
) -> Transfer:
    """Open a transfer request; the case is the caller's (api/scoping.get_case). Raises Forbidden,
    Unprocessable (closed case, target, reason, consent) or TransferPending (409)."""
    assert case.id is not None
    if not may_request(principal, case):
        raise Forbidden("Передать случай может координатор, куратор или руководитель организации, или РРМЦ")
    if case.state in FINAL_STATES:
        raise Unprocessable("Случай закрыт; передать его нельзя", field="case_id")
    if problem := _target_problem(session, case, body.to_provider_id):
        raise Unprocessable(problem, field="to_provider_id")
    reason = body.reason.strip()
    if not reason:
        raise Unprocessable("Укажите причину передачи", field="reason")
    pending = session.exec(
        select(Transfer).where(Transfer.case_id == case.id, Transfer.status == "requested")
    ).first()
    if pending is not None:
        raise TransferPending("Случай уже передаётся: дождитесь ответа или отзовите запрос", field="case_id")
    now = now or utcnow()
    region = _region(session, case.provider_id)
    child = session.get(Child, case.child_id)
    assert child is not None
    if body.consent is not None:
        today = now.astimezone(ZoneInfo(region.timezone)).date()
        if problem := consent_date_problem(body.consent.date, today=today, birth_date=child.birth_date):
            raise Unprocessable(problem, field="consent.date")
        session.add(
            Consent(
                child_id=child.id or 0,
                kind=ConsentKind.transfer,
                status=ConsentStatus.given,
                date=body.consent.date,
                document_ref=(body.consent.document_ref or "").strip() or None,
                recorded_by_id=principal.id,
                recorded_at=now,
            )
        )
    elif not _has_consent(session, case.child_id):
        raise Unprocessable(
            "Нет согласия семьи на передачу сведений в другую организацию: укажите дату и документ согласия",
            field="consent",
        )
    transfer = Transfer(
        case_id=case.id,
        from_provider_id=case.provider_id,
        to_provider_id=body.to_provider_id,
        status=TRANSFER.initial,
        reason=reason,
        requested_by_id=principal.id,
        requested_at=now,
    )
    try:
        with session.begin_nested():
            session.add(transfer)
    except IntegrityError:
        raise TransferPending(
            "Случай уже передаётся: дождитесь ответа или отзовите запрос", field="case_id"
        ) from None
    zone = ZoneInfo(region.timezone)
    standard = load_standard(region.code)
    deadline = open_deadline(
        session,
        TRANSFER,
        standard.workflows.transfer.answer,
        case,
        provider_id=body.to_provider_id,  # the receiving provider answers; its head is told if late
        region=region,
        standard=standard,
        now=now,
    )
    names = _names(session, transfer)
    history(
        session,
        TRANSFER,
        case,
        "request",
        actor=principal.user,
        payload=_payload(names),
        reason=reason,
        now=now,
        effects_context={
            "org_id": transfer.to_provider_id,
            "vars": _vars(names, f"{deadline.due_at.astimezone(zone):%d.%m.%Y}"),
        },
    )
    session.flush()
    return transfer


def _close_deadline(session: Session, case_id: int, now: datetime, *, cancel: bool) -> None:
    row = session.exec(
        select(Deadline).where(
            Deadline.case_id == case_id, Deadline.timer == TIMER, Deadline.status == DeadlineStatus.open
        )
    ).first()
    if row is None:
        return
    if cancel:
        row.status = DeadlineStatus.cancelled
    else:
        row.status = DeadlineStatus.met if now <= row.due_at else DeadlineStatus.missed
    row.closed_at = now
    row.paused_at = None
    session.add(row)


def _case_of(session: Session, transfer: Transfer) -> Case:
    case = session.get(Case, transfer.case_id)
    assert case is not None
    return case


def accept(
    session: Session,
    principal: Principal,
    transfer: Transfer,
    curator_id: int | None,
    now: datetime | None = None,
) -> Case:
    """The receiving provider takes the case: owner, curator, open deadlines (clocks unchanged) and
    the case's version change in one transaction; the old provider's planned sessions are cancelled."""
    if not may_answer(principal, transfer):
        raise Forbidden("Принять запрос может координатор или руководитель принимающей организации")
    case = _case_of(session, transfer)
    if problem := curator_problem(session, transfer.to_provider_id, curator_id):
        raise Unprocessable(problem, field="curator_id")
    if transfer.status == "requested" and case.state in FINAL_STATES:
        raise Unprocessable("Случай закрыт; принять его нельзя", field="case_id")
    if transfer.status == "requested" and not _has_consent(session, case.child_id):
        # The family's consent is the guard of the whole transfer, not only of its request.
        raise Unprocessable(
            "Семья отозвала согласие на передачу сведений в другую организацию: принять случай нельзя",
            field="consent",
        )
    now = now or utcnow()
    names = _names(session, transfer)
    step(
        session,
        TRANSFER,
        transfer,
        "accept",
        case=case,
        actor=principal.user,
        payload=_payload(names) | {"curator_id": curator_id},
        values={"answered_by_id": principal.id, "answered_at": now},
        bump_case=True,
        now=now,
        effects_context={"org_id": transfer.from_provider_id, "vars": _vars(names)},
    )
    _close_deadline(session, case.id or 0, now, cancel=False)
    session.execute(
        update(Case)
        .where(Case.id == case.id)  # type: ignore[arg-type]
        .values(provider_id=transfer.to_provider_id, curator_id=curator_id, updated_at=now)
    )
    # The clocks go on: only the owner of each open deadline changes, never its dates.
    session.execute(
        update(Deadline)
        .where(Deadline.case_id == case.id, Deadline.status == DeadlineStatus.open)  # type: ignore[arg-type]
        .values(provider_id=transfer.to_provider_id)
    )
    # The team was the old provider's: its memberships (and those it invited under its own
    # agreements) end; the new curator builds the team again. Else they would read the case still.
    session.execute(
        update(TeamMember)
        .where(
            col(TeamMember.case_id) == case.id,
            col(TeamMember.removed_at).is_(None),
            col(TeamMember.organisation_id) != transfer.to_provider_id,
        )
        .values(removed_at=now, removed_by_id=principal.id)
    )
    # The old provider's specialists no longer serve the family: their planned sessions are cancelled,
    # with a note (the new provider plans its own). Past ones stay for the new owner to mark.
    note = f"Отменено: случай передан в «{names['to_provider_name']}»"
    for planned in session.exec(
        select(ServiceSession).where(
            ServiceSession.case_id == case.id,
            ServiceSession.status == SessionStatus.planned,
            col(ServiceSession.scheduled_at) >= now,
        )
    ):
        planned.status = SessionStatus.cancelled
        planned.notes = (f"{planned.notes}\n{note}" if planned.notes else note)[:2000]
        planned.updated_at = now
        session.add(planned)
    session.flush()
    session.refresh(case)
    if curator_id is not None:
        enqueue(
            session,
            "curator_assigned",
            case_id=case.id,
            referral_id=case.referral_id,
            context={"payload": {"curator_id": curator_id}, "actor_id": principal.id},
        )
    return case


def refuse(
    session: Session, principal: Principal, transfer: Transfer, reason: str, now: datetime | None = None
) -> None:
    if not may_answer(principal, transfer):
        raise Forbidden("Отказать может координатор или руководитель принимающей организации")
    reason = reason.strip()
    if not reason:
        raise Unprocessable("Укажите причину отказа", field="reason")
    # The requesting provider hears of the refusal; the deadline was answered (met or missed).
    _close(
        session, principal, transfer, "refuse", reason, tell=transfer.from_provider_id, cancel=False, now=now
    )


def withdraw(
    session: Session,
    principal: Principal,
    transfer: Transfer,
    reason: str | None,
    now: datetime | None = None,
) -> None:
    if not may_withdraw(principal, transfer):
        raise Forbidden("Отозвать запрос может запросившая организация или РРМЦ")
    reason = (reason or "").strip() or None
    # The receiving provider hears it need not answer; its deadline is cancelled.
    _close(
        session, principal, transfer, "withdraw", reason, tell=transfer.to_provider_id, cancel=True, now=now
    )


def _close(
    session: Session,
    principal: Principal,
    transfer: Transfer,
    event: str,
    reason: str | None,
    *,
    tell: int,
    cancel: bool,
    now: datetime | None,
) -> None:
    """A request ends without moving the case (refused or withdrawn)."""
    case = _case_of(session, transfer)
    now = now or utcnow()
    names = _names(session, transfer)
    step(
        session,
        TRANSFER,
        transfer,
        event,
        case=case,
        actor=principal.user,
        payload=_payload(names),
        reason=reason,
        values={"answered_by_id": principal.id, "answered_at": now, "answer_reason": reason},
        now=now,
        effects_context={"org_id": tell, "vars": _vars(names)},
    )
    _close_deadline(session, case.id or 0, now, cancel=cancel)
    session.flush()


def require_staff(principal: Principal) -> None:
    """Forbidden for roles that never see transfers (the same rule as `scope`)."""
    scope(principal)
