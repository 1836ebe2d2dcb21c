"""Transfer of a case to another provider («при смене организации», the 2025 letter, stage 2).

requested → accepted / refused / withdrawn. The sending provider (or the regional centre) requests
with a reason and the family's consent; the receiving provider accepts or refuses with a reason within
the standard's deadline; the requester may withdraw while it is pending. Accepting moves the case.
Effects (outbox) by event: request, accept, refuse, withdraw (api/services/transfers.py writes them).
"""

from __future__ import annotations

from models.users import Role
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
    )
)
