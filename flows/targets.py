"""Who an effect reaches, by which channel, and what the templates get to say.

Resolved at delivery time, not when the transition commits: a family that withdrew its consent to
messages meanwhile gets none, and a corrected phone number is used.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, SQLModel, col, select

from api.services import disclosure
from core.config import Settings
from core.tokens import SESSION_LINK, key_store, session_link_expiry, session_link_token, short_code
from models.cases import Case
from models.children import Channel, Child, LegalRepresentative, full_name
from models.common import utcnow
from models.consents import Consent, ConsentKind, ConsentStatus
from models.deadlines import Deadline
from models.links import ShortLink
from models.organisations import Organisation, Region
from models.outbox import EffectKind, Outbox
from models.programmes import ServiceSession
from models.referrals import Referral
from models.users import Role, User
from standards import load_standard
from statemachines.journey import STATE_LABELS

AUDIENCE = {
    EffectKind.notify_family: "family",
    EffectKind.notify_organisation: "organisation",
    EffectKind.feedback_to_referrer: "referrer",
}
OUTCOME_LABELS = {
    "ipr": "нужна индивидуальная программа ранней помощи",
    "consultation": "рекомендованы консультации без разработки программы",
    "no_need": "нуждаемость в ранней помощи не выявлена",
}


@dataclass
class Target:
    recipient: str  # for people reading the delivery log
    channel: str  # email / sms / webhook / none
    address: str
    # Why it cannot be sent (status skipped/undeliverable), when it cannot.
    blocked: str | None = None
    unreachable: bool = False  # the family has no contact for its channel: tell the curator
    no_address: bool = False  # a member of staff who must be told has no address: undeliverable
    # The family chose to get no messages (consent withdrawn, "no messages"): not sending is the
    # right outcome, so it settles the effect instead of leaving it undelivered for a supervisor.
    by_choice: bool = False
    webhook_secret: str | None = None
    referral_id: int | None = None  # feedback: which referral's document to attach


@dataclass
class Resolved:
    region_code: str
    timezone: str
    audience: str
    state: str  # the case's state when the row was resolved
    context: dict[str, Any]
    targets: list[Target]


def _org_targets(org: Organisation, label: str, referral_id: int | None = None) -> list[Target]:
    targets = []
    if org.email:
        targets.append(Target(label, "email", org.email, referral_id=referral_id))
    if org.webhook_url:
        targets.append(
            Target(
                label, "webhook", org.webhook_url, webhook_secret=org.webhook_secret, referral_id=referral_id
            )
        )
    if not targets:
        targets.append(Target(label, "none", "-", blocked="у организации нет e-mail и webhook"))
    return targets


M = TypeVar("M", bound=SQLModel)


def _by_id(session: Session, model: type[M], ids: Iterable[Any]) -> dict[int, M]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.exec(select(model).where(col(model.id).in_(wanted)))  # type: ignore[attr-defined]
    return {row.id: row for row in rows}  # type: ignore[attr-defined]


@dataclass
class Known:
    """Everything a chunk of outbox rows refers to, read in about ten queries for the whole chunk
    (one row at a time it was ten queries per row, the relay's main database cost)."""

    cases: dict[int, Case]
    children: dict[int, Child]
    organisations: dict[int, Organisation]
    regions: dict[int, Region]
    users: dict[int, User]
    referrals: dict[int, Referral]
    representatives: dict[int, list[LegalRepresentative]]  # by child
    messages_withdrawn: set[int]  # children whose latest consent to messages is withdrawn
    sessions: dict[int, ServiceSession]
    deadlines: dict[int, Deadline]
    supervisors: dict[int, list[User]]  # by organisation

    @classmethod
    def load(cls, session: Session, rows: list[Outbox]) -> Known:
        cases = _by_id(session, Case, (r.case_id for r in rows))
        referrals = {
            ref.id or 0: ref
            for ref in session.exec(select(Referral).where(col(Referral.case_id).in_(list(cases))))
        }
        referrals |= _by_id(
            session, Referral, (r.referral_id for r in rows if r.referral_id not in referrals)
        )
        payloads = [r.context.get("payload") or {} for r in rows]
        organisations = _by_id(
            session,
            Organisation,
            [c.provider_id for c in cases.values()]
            + [p.get("destination_org_id") for p in payloads]
            + [r.context.get("org_id") for r in rows]
            + [ref.referring_org_id for ref in referrals.values()],
        )
        children = _by_id(session, Child, (c.child_id for c in cases.values()))
        family = [
            c.child_id
            for r in rows
            if r.kind == EffectKind.notify_family and (c := cases.get(r.case_id or 0))
        ]
        representatives: dict[int, list[LegalRepresentative]] = defaultdict(list)
        withdrawn: set[int] = set()
        if family:
            for rep in session.exec(
                select(LegalRepresentative)
                .where(col(LegalRepresentative.child_id).in_(family))
                .order_by(col(LegalRepresentative.id))
            ):
                representatives[rep.child_id].append(rep)
            latest: dict[int, str] = {}
            for child_id, status in session.exec(
                select(Consent.child_id, Consent.status)
                .where(col(Consent.child_id).in_(family), Consent.kind == ConsentKind.messages)
                .order_by(col(Consent.date).desc(), col(Consent.id).desc())
            ):
                latest.setdefault(child_id, status)
            withdrawn = {c for c, status in latest.items() if status == ConsentStatus.withdrawn}
        deadlines = _by_id(session, Deadline, (r.context.get("deadline_id") for r in rows))
        # A workflow's deadline may be another organisation's to keep (a transfer's answer is the
        # receiving provider's): its warnings and escalations go to that organisation.
        owners = {d.provider_id for d in deadlines.values()}
        organisations |= _by_id(session, Organisation, owners - organisations.keys())
        supervisors: dict[int, list[User]] = defaultdict(list)
        if any(r.context.get("to") == "supervisors" for r in rows):
            for head in session.exec(
                select(User)
                .where(
                    col(User.organisation_id).in_([c.provider_id for c in cases.values()] + list(owners)),
                    User.role == Role.supervisor,
                    col(User.is_active).is_(True),
                    col(User.email).is_not(None),
                )
                .order_by(col(User.id))
            ):
                supervisors[head.organisation_id].append(head)
        return cls(
            cases=cases,
            children=children,
            organisations=organisations,
            regions=_by_id(session, Region, (o.region_id for o in organisations.values())),
            users=_by_id(session, User, (c.curator_id for c in cases.values())),
            referrals=referrals,
            representatives=representatives,
            messages_withdrawn=withdrawn,
            sessions=_by_id(session, ServiceSession, (r.context.get("session_id") for r in rows)),
            deadlines=deadlines,
            supervisors=supervisors,
        )


def _family_targets(known: Known, child: Child) -> list[Target]:
    if child.id in known.messages_withdrawn:
        return [
            Target("семья", "none", "-", blocked="согласие на получение сообщений отозвано", by_choice=True)
        ]
    representatives = known.representatives.get(child.id or 0, [])
    if not representatives:
        return [Target("семья", "none", "-", blocked="нет законного представителя", unreachable=True)]
    targets = []
    for rep in representatives:
        if rep.preferred_channel == Channel.none:
            targets.append(
                Target(
                    rep.full_name, "none", "-", blocked="представитель отказался от сообщений", by_choice=True
                )
            )
            continue
        address = rep.phone if rep.preferred_channel == Channel.sms else rep.email
        if not address:
            what = "телефона" if rep.preferred_channel == Channel.sms else "e-mail"
            targets.append(
                Target(
                    rep.full_name, str(rep.preferred_channel), "-", blocked=f"нет {what}", unreachable=True
                )
            )
        else:
            targets.append(Target(rep.full_name, str(rep.preferred_channel), address))
    return targets


def _curator_not_reached(curator: User | None) -> Target:
    if curator is None:
        return Target("куратор", "none", "-", blocked="куратор не назначен")
    return Target(curator.full_name, "email", "-", blocked="у куратора не указан e-mail", no_address=True)


def resolve_many(
    session: Session, rows: list[Outbox], settings: Settings, links: Engine | None = None
) -> dict[int, Resolved]:
    """Recipients and template context for each row of a chunk, by outbox id.

    With `links` (an engine that writes), a family's link to a session is a short link
    (`/f/<code>`, made here and committed before anything is sent); without, the signed token."""
    known = Known.load(session, rows)
    codes: dict[int, str] = {}
    if links is not None:
        wanted = {
            planned.id: _link_expiry(known, planned, settings)
            for row in rows
            if row.kind == EffectKind.notify_family
            and (planned := known.sessions.get(row.context.get("session_id") or 0)) is not None
            and planned.id is not None
        }
        codes = session_short_links(links, wanted)
    return {row.id or 0: _resolve(row, known, settings, codes) for row in rows}


def _link_expiry(known: Known, planned: ServiceSession, settings: Settings) -> datetime:
    """Until when the family's link to a session answers: the standard's hours after it starts."""
    case = known.cases[planned.case_id]
    region = known.regions[known.organisations[case.provider_id].region_id]
    valid_for = timedelta(hours=load_standard(region.code).reminders.link_valid_hours_after)
    return session_link_expiry(planned.scheduled_at + valid_for, key_store(settings))


def session_short_links(engine: Engine, wanted: dict[int, datetime]) -> dict[int, str]:
    """The short code of each session's family link, made if missing, its expiry moved to the
    given time (a rescheduled session keeps its code); committed at once. By session id."""
    if not wanted:
        return {}
    table = ShortLink.__table__  # type: ignore[attr-defined]
    insert = sqlite_insert if engine.dialect.name == "sqlite" else postgresql_insert
    now = utcnow()
    with engine.begin() as connection:
        for session_id, expires_at in sorted(wanted.items()):
            statement = insert(table).values(
                code=short_code(),
                purpose=SESSION_LINK,
                session_id=session_id,
                expires_at=expires_at,
                created_at=now,
            )
            statement = statement.on_conflict_do_update(
                index_elements=["purpose", "session_id"], set_={"expires_at": statement.excluded.expires_at}
            )
            connection.execute(statement)
        found = connection.execute(
            sa_select(table.c.session_id, table.c.code).where(
                table.c.purpose == SESSION_LINK, table.c.session_id.in_(list(wanted))
            )
        ).all()
    return {session_id: code for session_id, code in found}


def _resolve_without_case(row: Outbox, known: Known) -> Resolved:
    """An effect about no case (a report made for the region: flows/reports.py) goes to the
    organisation its context names; its template gets the context's `vars` and the region's name."""
    org = known.organisations.get(row.context.get("org_id") or 0)
    if org is None:
        nobody = Target("организация", "none", "-", blocked="организация не найдена")
        return Resolved("", "UTC", AUDIENCE[EffectKind(row.kind)], "", {}, [nobody])
    region = known.regions[org.region_id]
    context: dict[str, Any] = {
        "case_id": None,
        "referral_id": "",
        "document_url": "",
        "region_name": region.name,
    }
    context |= {str(k): str(v) for k, v in (row.context.get("vars") or {}).items() if k not in context}
    targets = _org_targets(org, org.name)
    return Resolved(region.code, region.timezone, AUDIENCE[EffectKind(row.kind)], "", context, targets)


def _resolve(row: Outbox, known: Known, settings: Settings, codes: dict[int, str]) -> Resolved:
    case = known.cases.get(row.case_id or 0)
    if case is None and row.case_id is None:
        return _resolve_without_case(row, known)
    assert case is not None, "an effect of a case names a case that exists"
    child = known.children[case.child_id]
    provider = known.organisations[case.provider_id]
    region = known.regions[provider.region_id]
    curator = known.users.get(case.curator_id) if case.curator_id else None
    referral = known.referrals.get(row.referral_id or case.referral_id or 0)
    payload: dict[str, Any] = row.context.get("payload") or {}
    zone = ZoneInfo(region.timezone)

    public_url = settings.public_url
    session_at = response_url = ""
    if (planned := known.sessions.get(row.context.get("session_id") or 0)) is not None:
        session_at = f"{planned.scheduled_at.astimezone(zone):%d.%m.%Y %H:%M}"
        if (code := codes.get(planned.id or 0)) is None:
            code = session_link_token(
                planned.id or 0, _link_expiry(known, planned, settings), key_store(settings)
            )
        response_url = f"{public_url}/f/{code}"
    deadline_label = deadline_due = ""
    if (deadline := known.deadlines.get(row.context.get("deadline_id") or 0)) is not None:
        deadline_label = deadline.label
        deadline_due = f"{deadline.due_at.astimezone(zone):%d.%m.%Y}"
    context: dict[str, Any] = {
        "case_id": case.id,
        "child_first_name": child.first_name,
        "child_name": full_name(child),
        "child_birth_date": f"{child.birth_date:%d.%m.%Y}",
        "provider_name": provider.name,
        "provider_phone": provider.phone or "",
        "provider_address": provider.address or "",
        "curator_name": curator.full_name if curator else "",
        "state_label": STATE_LABELS[case.state],
        "reason": row.context.get("reason") or payload.get("explanation") or "",
        "outcome_label": OUTCOME_LABELS.get(str(payload.get("outcome")), ""),
        "destination": payload.get("destination") or "",
        "session_at": session_at,
        "response_url": response_url,
        "deadline_label": deadline_label,
        "deadline_due": deadline_due,
        "region_name": region.name,
        "referral_id": referral.id if referral else "",
        "referral_date": f"{referral.referral_date:%d.%m.%Y}" if referral else "",
        "document_url": f"{public_url}/api/v1/referrals/{referral.id}/feedback" if referral else "",
    }
    # A workflow's own template variables (a routing's purpose, a consilium's time...): plain
    # strings, chosen by the service that wrote the row, never free text about the child's health.
    context |= {str(k): str(v) for k, v in (row.context.get("vars") or {}).items() if k not in context}
    if row.template == "referral_rejected" and payload.get("reason_code"):
        from flows.documents import _reject_reason

        context["reason"] = _reject_reason(payload)

    kind = EffectKind(row.kind)
    targets: list[Target]
    if deadline is not None and deadline.provider_id != case.provider_id:
        # Kept by another organisation (statemachines/workflows.py): not the case's curator's.
        keeper = known.organisations[deadline.provider_id]
        context["curator_name"] = ""  # the other organisation's curator is not the keeper's business
        heads = known.supervisors.get(keeper.id or 0, []) if row.context.get("to") == "supervisors" else []
        targets = [Target(h.full_name, "email", h.email or "") for h in heads]
        targets = targets or _org_targets(keeper, keeper.name)
        return Resolved(region.code, region.timezone, AUDIENCE[kind], case.state, context, targets)
    if kind == EffectKind.notify_family:
        targets = _family_targets(known, child)
    elif kind == EffectKind.feedback_to_referrer:
        # The organisation whose referral opened this case hears back, about that referral only;
        # one that linked a referral to the case by identifier does not (api/services/disclosure.py).
        context |= disclosure.referrer_context(known.referrals.get(case.referral_id or 0), child)
        targets = []
        for ref in disclosure.feedback_referrals(case, known.referrals.values()):
            if org := known.organisations.get(ref.referring_org_id or 0):
                targets += _org_targets(org, org.name, referral_id=ref.id)
    else:
        to = row.context.get("to")
        if to in ("curator", "curator_or_provider") and curator is not None and curator.email:
            targets = [Target(curator.full_name, "email", curator.email)]
        elif to == "curator":
            # Written only when a curator is assigned; one without e-mail is on record, not dropped.
            targets = [_curator_not_reached(curator)]
        elif to == "curator_or_provider":
            # Staff notifications go to the curator, else to the organisation (models/users.py).
            missing = [_curator_not_reached(curator)] if curator is not None else []
            targets = missing + _org_targets(provider, provider.name)
        elif to == "supervisors":
            heads = known.supervisors.get(provider.id or 0, [])
            targets = [Target(h.full_name, "email", h.email or "") for h in heads] or _org_targets(
                provider, provider.name
            )
        elif to == "org":
            # A workflow's organisation (statemachines/workflows.py): the context names it.
            org = known.organisations.get(row.context.get("org_id") or 0)
            targets = (
                _org_targets(org, org.name)
                if org is not None
                else [Target("организация", "none", "-", blocked="организация не найдена")]
            )
        elif to == "destination":
            org = known.organisations.get(payload.get("destination_org_id") or 0)
            targets = (
                _org_targets(org, org.name)
                if org is not None
                else [Target("принимающая организация", "none", "-", blocked="организация не найдена")]
            )
        else:
            targets = _org_targets(provider, provider.name)
    return Resolved(region.code, region.timezone, AUDIENCE[kind], case.state, context, targets)


def feedback_documents(session: Session, rows: list[Outbox]) -> list[int]:
    """The referrals whose feedback PDF these rows will attach: e-mails to referring organisations."""
    cases = {r.case_id for r in rows if r.kind == EffectKind.feedback_to_referrer and r.case_id}
    if not cases:
        return []
    return [
        referral_id
        for referral_id in session.exec(
            select(Referral.id)
            .join(Organisation, col(Organisation.id) == col(Referral.referring_org_id))
            .where(
                col(Referral.case_id).in_(cases),
                disclosure.opened_its_case(),
                col(Organisation.email).is_not(None),
            )
        )
        if referral_id is not None
    ]


def webhook_body(row: Outbox, context: dict[str, Any], state: str, at: datetime) -> dict[str, Any]:
    """What an organisation's system receives: ids and statuses, no free text about the child.

    An organisation outside the case (a routing's or a consilium's, a receiving pre-school, the other
    provider of a transfer) gets the message's type and the case's number to quote, not the case's
    state, its referral or the referrer's feedback link."""
    outside = row.kind == EffectKind.notify_organisation and row.context.get("to") in ("org", "destination")
    return {
        "delivery": f"outbox-{row.id}",
        "type": row.template,
        "kind": str(row.kind),
        "case_id": context["case_id"],
        "referral_id": None if outside else context["referral_id"] or None,
        "state": None if outside else state,
        "state_label": None if outside else STATE_LABELS[state],
        "document_url": None if outside else context["document_url"] or None,
        "at": at.isoformat(),
    }
