"""SQLModel tables and the API's schemas, one module per domain.

Importing this package registers every table on SQLModel.metadata (Alembic and tests rely on it).
"""

# Modules whose tables are registered by importing them (the registry's merges, the report runs).
from models import registry as _registry  # noqa: F401
from models import reports as _reports  # noqa: F401
from models.audit import AuditLog
from models.cases import Case, CaseHistory, ContactAttempt
from models.children import Child, LegalRepresentative
from models.consents import Consent
from models.deadlines import Deadline
from models.links import ShortLink
from models.organisations import Organisation, Region
from models.outbox import Delivery, Outbox
from models.programmes import Ipr, NeedConclusion, PlannedService, ServiceSession, SessionReminder
from models.referrals import Referral
from models.routings import Consilium, ConsiliumParticipant, Routing
from models.teams import Agreement, TeamMember
from models.transfers import Transfer
from models.users import ApiToken, User

__all__ = [
    "Agreement",
    "ApiToken",
    "AuditLog",
    "Case",
    "CaseHistory",
    "Child",
    "Consent",
    "Consilium",
    "ConsiliumParticipant",
    "ContactAttempt",
    "Deadline",
    "Delivery",
    "Ipr",
    "LegalRepresentative",
    "NeedConclusion",
    "Organisation",
    "Outbox",
    "PlannedService",
    "Referral",
    "Region",
    "Routing",
    "ServiceSession",
    "SessionReminder",
    "ShortLink",
    "TeamMember",
    "Transfer",
    "User",
]
