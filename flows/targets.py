"""Who an effect reaches, by which channel, and what the templates get to say.

Resolved at delivery time, not when the transition commits: a family that withdrew its consent to
messages meanwhile gets none, and a corrected phone number is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from core.config import Settings
from core.tokens import session_link_token
from models.cases import Case
from models.children import Channel, Child, LegalRepresentative, full_name
from models.consents import Consent, ConsentKind, ConsentStatus
from models.deadlines import Deadline
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
    webhook_secret: str | None = None
    referral_id: int | None = None  # feedback: which referral's document to attach


@dataclass
class Resolved:
    region_code: str
    timezone: str
    audience: str
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


def _messages_allowed(session: Session, child_id: int) -> bool:
    status = session.exec(
        select(Consent.status)
        .where(Consent.child_id == child_id, Consent.kind == ConsentKind.messages)
        .order_by(col(Consent.date).desc(), col(Consent.id).desc())
        .limit(1)
    ).first()
    return status != ConsentStatus.withdrawn


def _family_targets(session: Session, child: Child) -> list[Target]:
    if not _messages_allowed(session, child.id or 0):
        return [Target("семья", "none", "-", blocked="согласие на получение сообщений отозвано")]
    representatives = session.exec(
        select(LegalRepresentative)
        .where(LegalRepresentative.child_id == child.id)
        .order_by(col(LegalRepresentative.id))
    ).all()
    if not representatives:
        return [Target("семья", "none", "-", blocked="нет законного представителя", unreachable=True)]
    targets = []
    for rep in representatives:
        if rep.preferred_channel == Channel.none:
            targets.append(Target(rep.full_name, "none", "-", blocked="представитель отказался от сообщений"))
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


def resolve(session: Session, row: Outbox, settings: Settings) -> Resolved:
    case = session.get(Case, row.case_id) if row.case_id else None
    assert case is not None, "every effect today belongs to a case"
    child = session.get(Child, case.child_id)
    provider = session.get(Organisation, case.provider_id)
    assert child is not None and provider is not None
    region = session.get(Region, provider.region_id)
    assert region is not None
    curator = session.get(User, case.curator_id) if case.curator_id else None
    referral = (
        session.get(Referral, row.referral_id or case.referral_id)
        if (row.referral_id or case.referral_id)
        else None
    )
    payload: dict[str, Any] = row.context.get("payload") or {}
    zone = ZoneInfo(region.timezone)

    public_url = settings.public_url
    session_at = response_url = ""
    if row.context.get("session_id"):
        planned = session.get(ServiceSession, row.context["session_id"])
        if planned is not None:
            session_at = f"{planned.scheduled_at.astimezone(zone):%d.%m.%Y %H:%M}"
            valid_for = timedelta(hours=load_standard(region.code).reminders.link_valid_hours_after)
            token = session_link_token(
                planned.id or 0, planned.scheduled_at + valid_for, settings.jwt_secret()
            )
            response_url = f"{public_url}/f/{token}"
    deadline_label = deadline_due = ""
    if row.context.get("deadline_id"):
        deadline = session.get(Deadline, row.context["deadline_id"])
        if deadline is not None:
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
    if row.template == "referral_rejected" and payload.get("reason_code"):
        from flows.documents import _reject_reason

        context["reason"] = _reject_reason(payload)

    kind = EffectKind(row.kind)
    targets: list[Target]
    if kind == EffectKind.notify_family:
        targets = _family_targets(session, child)
    elif kind == EffectKind.feedback_to_referrer:
        # Every organisation that referred this child into this case hears back.
        referrals = session.exec(
            select(Referral).where(Referral.case_id == case.id, col(Referral.referring_org_id).is_not(None))
        ).all()
        targets = []
        for ref in referrals:
            org = session.get(Organisation, ref.referring_org_id)
            if org is not None:
                targets += _org_targets(org, org.name, referral_id=ref.id)
    else:
        to = row.context.get("to")
        if to in ("curator", "curator_or_provider") and curator is not None and curator.email:
            targets = [Target(curator.full_name, "email", curator.email)]
        elif to == "curator":
            targets = []  # no curator yet: the provider's intake already has the referral
        elif to == "curator_or_provider":
            targets = _org_targets(provider, provider.name)
        elif to == "supervisors":
            heads = session.exec(
                select(User).where(
                    User.organisation_id == provider.id,
                    User.role == Role.supervisor,
                    col(User.is_active).is_(True),
                    col(User.email).is_not(None),
                )
            ).all()
            targets = [Target(h.full_name, "email", h.email or "") for h in heads] or _org_targets(
                provider, provider.name
            )
        elif to == "destination":
            org_id = payload.get("destination_org_id")
            org = session.get(Organisation, org_id) if org_id else None
            targets = _org_targets(org, org.name) if org is not None else []
        else:
            targets = _org_targets(provider, provider.name)
    return Resolved(region.code, region.timezone, AUDIENCE[kind], context, targets)


def webhook_body(row: Outbox, context: dict[str, Any], state: str, at: datetime) -> dict[str, Any]:
    """What an organisation's system receives: ids and statuses, no free text about the child."""
    return {
        "delivery": f"outbox-{row.id}",
        "type": row.template,
        "kind": str(row.kind),
        "case_id": context["case_id"],
        "referral_id": context["referral_id"] or None,
        "state": state,
        "state_label": STATE_LABELS[state],
        "document_url": context["document_url"] or None,
        "at": at.isoformat(),
    }
