"""Routing («маршрутизация», the 2025 letter, stage 2): the curator refers the family to another
organisation (medical, social, rehabilitation, ПМПК, education) with a purpose; that organisation
(or the curator) records the outcome.

sent → answered / expired / cancelled. An expired routing can still be answered late.
"""

from __future__ import annotations

from models.users import Role
from statemachines.workflows import Step, Workflow, register

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
    )
)
