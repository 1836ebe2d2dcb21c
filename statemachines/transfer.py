"""Transfer of a case to another provider («при смене организации», the 2025 letter, stage 2).

requested → accepted / refused / withdrawn. The sending provider (or the regional centre) requests
with a reason and the family's consent; the receiving provider accepts or refuses with a reason within
the standard's deadline; the requester may withdraw while it is pending. Accepting moves the case.
Effects (outbox) by event: the request goes to the receiving provider; the acceptance to the family
(the new provider's name and phone), the referrer (the state only) and the old provider; a refusal to
the requesting provider; a withdrawal to the receiving one. api/services/transfers.py names the
organisation (effects_context org_id) and the plain-string variables (vars) of each.
"""

from __future__ import annotations

from models.users import Role
from statemachines.effects import FAMILY, ORGANISATION, REFERRER, Effect
from statemachines.workflows import Step, Workflow, register

SENDERS = frozenset({Role.intake_coordinator, Role.curator, Role.supervisor})
RECEIVERS = frozenset({Role.intake_coordinator, Role.supervisor})

TRANSFER = register(
    Workflow(
        name="transfer",
        label="Передача в другую организацию",
        states=[
            ("requested", "Ожидает решения принимающей организации"),
            ("accepted", "Принята"),
            ("refused", "Отклонена"),
            ("withdrawn", "Отозвана"),
        ],
        initial="requested",
        final=frozenset({"accepted", "refused", "withdrawn"}),
        steps=[
            Step("accept", "requested", "accepted", "Принять случай", RECEIVERS),
            Step("refuse", "requested", "refused", "Отказать в приёме", RECEIVERS),
            Step("withdraw", "requested", "withdrawn", "Отозвать запрос", SENDERS),
        ],
        effects={
            "request": [Effect(ORGANISATION, "transfer_requested", to="org")],
            "accept": [
                Effect(FAMILY, "transfer_accepted"),
                Effect(REFERRER, "transfer_accepted"),
                Effect(ORGANISATION, "transfer_accepted", to="org"),
            ],
            "refuse": [Effect(ORGANISATION, "transfer_refused", to="org")],
            "withdraw": [Effect(ORGANISATION, "transfer_withdrawn", to="org")],
        },
    )
)
