"""Which effects follow which event: data beside the journey, read by `fire`.

Each effect becomes one outbox row in the transition's transaction; a Prefect flow of the same
name (flows/) delivers it. Templates are in the standard (standards/messages.yaml).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from models.common import utcnow
from models.outbox import EffectKind, Outbox, OutboxStatus
from models.referrals import Referral

FAMILY = EffectKind.notify_family
ORGANISATION = EffectKind.notify_organisation
REFERRER = EffectKind.feedback_to_referrer


@dataclass(frozen=True)
class Effect:
    kind: EffectKind
    template: str
    # notify_organisation only: "provider" (its intake), "destination" (the receiving
    # pre-school), "curator", "curator_or_provider", "supervisors" (the provider's head, else
    # the provider), or "org": the organisation whose id is the context's `org_id` (the workflows:
    # a receiving provider, a routing's organisation, a consilium's participant).
    to: str | None = None
    # The effect happens only when the event's payload names this (a curator assigned, a receiving
    # organisation given): otherwise there is nobody it is for, and no outbox row is written.
    requires: str | None = None


EFFECTS: dict[str, list[Effect]] = {
    "refer": [Effect(ORGANISATION, "new_referral", to="provider")],
    # A referral naming a child in an open case is handed to the provider serving it (the case's);
    # one whose identity fields disagree waits for that provider (else the one that served the
    # child last: the case given) to confirm or refuse the match.
    "referral_handed_over": [Effect(ORGANISATION, "referral_handed_over", to="provider")],
    "match_review_requested": [Effect(ORGANISATION, "match_review_requested", to="provider")],
    "accept": [
        Effect(FAMILY, "need_determination_invitation"),
        Effect(REFERRER, "referral_accepted"),
        Effect(ORGANISATION, "case_assigned", to="curator", requires="curator_id"),
    ],
    "reject": [Effect(FAMILY, "referral_rejected"), Effect(REFERRER, "referral_rejected")],
    "determine_need": [Effect(FAMILY, "need_determined"), Effect(REFERRER, "need_determined")],
    "approve_ipr": [Effect(FAMILY, "ipr_agreed"), Effect(REFERRER, "ipr_agreed")],
    "begin_transition": [
        Effect(FAMILY, "transition_started"),
        Effect(ORGANISATION, "transition_receiving", to="destination", requires="destination_org_id"),
    ],
    # The child entered a ДОО or another programme: the adaptation period begins (no diagnosis).
    "enrol": [
        Effect(FAMILY, "adaptation_started"),
        Effect(REFERRER, "adaptation_started"),
        Effect(ORGANISATION, "enrolment_recorded", to="destination", requires="destination_org_id"),
    ],
    "complete": [Effect(FAMILY, "journey_completed"), Effect(REFERRER, "journey_completed")],
    "decline": [Effect(REFERRER, "declined")],
    "mark_lost_contact": [Effect(REFERRER, "lost_contact")],
    # Not journey events, but effects all the same.
    "curator_assigned": [Effect(ORGANISATION, "case_assigned", to="curator", requires="curator_id")],
    "session_planned": [Effect(FAMILY, "appointment_confirmation")],
    "family_unreachable": [Effect(ORGANISATION, "family_unreachable", to="curator_or_provider")],
    "session_missed": [Effect(ORGANISATION, "session_missed", to="curator_or_provider")],
    "contact_rule_reached": [Effect(ORGANISATION, "contact_rule_reached", to="curator_or_provider")],
    "reschedule_requested": [Effect(ORGANISATION, "reschedule_requested", to="curator_or_provider")],
    "session_reminder": [Effect(FAMILY, "session_reminder")],
    # Deadlines (sweeps): the curator is warned, the provider's head told when one is missed.
    "deadline_warning": [Effect(ORGANISATION, "deadline_warning", to="curator_or_provider")],
    "deadline_escalate": [Effect(ORGANISATION, "deadline_overdue", to="supervisors")],
    "deadline_remind_family": [Effect(FAMILY, "deadline_reminder")],
}


def register_effects(effects: dict[str, list[Effect]]) -> None:
    """Workflows (statemachines/workflows.py) add their effects beside the journey's."""
    for trigger, listed in effects.items():
        if EFFECTS.get(trigger, listed) != listed:
            raise ValueError(f"effects of {trigger!r} registered twice")
        EFFECTS[trigger] = list(listed)


def effect_rows(
    trigger: str,
    *,
    case_id: int | None,
    referral_id: int | None = None,
    context: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The outbox rows `trigger` calls for, as plain values (sweeps insert thousands at once)."""
    now = utcnow()
    payload = (context or {}).get("payload") or {}
    return [
        {
            "case_id": case_id,
            "referral_id": referral_id,
            "kind": effect.kind,
            "template": effect.template,
            "context": {**(context or {}), "trigger": trigger, "to": effect.to},
            "status": OutboxStatus.pending,
            "attempts": 0,
            "available_at": now,
            "created_at": now,
        }
        for effect in EFFECTS.get(trigger, [])
        if effect.requires is None or payload.get(effect.requires) is not None
    ]


def enqueue(
    session: Session,
    trigger: str,
    *,
    case_id: int | None,
    referral_id: int | None = None,
    context: dict[str, Any] | None = None,
) -> None:
    """Write the outbox rows `trigger` calls for, in the caller's transaction.

    Feedback goes to the organisation whose referral opened the case (api/services/disclosure.py):
    a case a family came with on its own has nobody to give feedback to, so none is written (an
    effect written for nobody would wait as undelivered for ever).
    """
    rows = effect_rows(trigger, case_id=case_id, referral_id=referral_id, context=context)
    if any(row["kind"] == REFERRER for row in rows):
        referral = session.get(Referral, referral_id) if referral_id is not None else None
        if referral is None or referral.referring_org_id is None:
            rows = [row for row in rows if row["kind"] != REFERRER]
    session.add_all(Outbox(**row) for row in rows)
