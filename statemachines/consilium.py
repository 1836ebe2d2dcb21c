"""Inter-agency consilium («межведомственный консилиум», the 2025 letter, stage 2): a meeting about
one case with participants from other organisations, invited through their channels with a minimal
summary; its decisions and recommendations are recorded and may lead to revising the ИПРП or to a
routing.

planned → held / cancelled.
"""

from __future__ import annotations

from models.users import Role
from statemachines.effects import ORGANISATION, Effect
from statemachines.workflows import Step, Workflow, register

ORGANISERS = frozenset({Role.curator, Role.supervisor, Role.intake_coordinator})

CONSILIUM = register(
    Workflow(
        name="consilium",
        label="Межведомственный консилиум",
        states=[
            ("planned", "Назначен"),
            ("held", "Проведён"),
            ("cancelled", "Отменён"),
        ],
        initial="planned",
        final=frozenset({"held", "cancelled"}),
        steps=[
            Step("hold", "planned", "held", "Записать решения консилиума", ORGANISERS),
            Step("cancel", "planned", "cancelled", "Отменить консилиум", ORGANISERS),
        ],
        # Not steps: one outbox row per invited organisation (api/services/consilia.py writes
        # them with enqueue, each with its own org_id), so each is delivered once, to it alone.
        effects={
            "invite": [Effect(ORGANISATION, "consilium_invitation", to="org")],
            "call_off": [Effect(ORGANISATION, "consilium_cancelled", to="org")],
        },
    )
)
