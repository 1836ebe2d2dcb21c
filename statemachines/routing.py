"""Routing («маршрутизация», the 2025 letter, stage 2): the curator refers the family to another
organisation (medical, social, rehabilitation, ПМПК, education) with a purpose; that organisation
(or the curator) records the outcome.

sent → answered / expired / cancelled. An expired routing can still be answered late.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from models.users import Role
from statemachines.effects import ORGANISATION, Effect
from statemachines.workflows import EXPIRE_HANDLERS, Step, Workflow, register

CURATORS = frozenset({Role.curator, Role.supervisor, Role.intake_coordinator})

ROUTING = register(
    Workflow(
        name="routing",
        label="Маршрутизация",
        states=[
            ("sent", "Направлено, ждём ответа"),
            ("answered", "Получен ответ"),
            ("expired", "Срок ответа истёк"),
            ("cancelled", "Отменено"),
        ],
        initial="sent",
        final=frozenset({"answered", "cancelled"}),
        steps=[
            # Roles are checked by the service: the answer may come from the receiving organisation
            # (any of its staff) or from the curator.
            Step("answer", ["sent", "expired"], "answered", "Зафиксировать результат"),
            Step("expire", "sent", "expired", "Срок ответа истёк"),
            Step("cancel", ["sent", "expired"], "cancelled", "Отменить направление", CURATORS),
        ],
        # The organisation is told through its channel (e-mail, webhook) with the minimum of
        # personal data; the curator hears of the answer and of a routing left unanswered.
        effects={
            "send": [Effect(ORGANISATION, "routing_request", to="org")],
            "answer": [Effect(ORGANISATION, "routing_answered", to="curator_or_provider")],
            "expire": [Effect(ORGANISATION, "routing_expired", to="curator_or_provider")],
            "cancel": [Effect(ORGANISATION, "routing_cancelled", to="org")],
        },
    )
)


def _expire(session: Session, deadline_id: int, now: datetime) -> None:
    # Registered here, not in the service, so that a worker that never imports the API has it.
    from api.services.routings import expire

    expire(session, deadline_id, now)


EXPIRE_HANDLERS["routing"] = _expire
