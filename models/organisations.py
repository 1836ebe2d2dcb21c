"""Regions and organisations: who identifies, who provides, who supervises."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from zoneinfo import available_timezones

from pydantic import field_validator
from sqlalchemy import Column, String
from sqlmodel import Field, SQLModel

from models.common import JSONType, UTCDateTime, utcnow
from models.programmes import SERVICE_FORM_LABELS, ServiceForm


class OrgKind(StrEnum):
    health = "health"
    social = "social"
    education = "education"
    ngo = "ngo"
    pmpk = "pmpk"
    mse = "mse"
    orphanage = "orphanage"
    provider = "provider"
    rrmc = "rrmc"


ORG_KIND_LABELS: dict[OrgKind, str] = {
    OrgKind.health: "Медицинская организация",
    OrgKind.social: "Организация социального обслуживания",
    OrgKind.education: "Образовательная организация",
    OrgKind.ngo: "Некоммерческая организация",
    OrgKind.pmpk: "ПМПК",
    OrgKind.mse: "Бюро МСЭ",
    OrgKind.orphanage: "Организация для детей-сирот",
    OrgKind.provider: "Организация, оказывающая раннюю помощь",
    OrgKind.rrmc: "Региональный ресурсно-методический центр",
}


class Ownership(StrEnum):
    """A provider's form of ownership, as the federal plan asks the public registry to show it."""

    state = "state"
    non_state = "non_state"


OWNERSHIP_LABELS: dict[Ownership, str] = {
    Ownership.state: "государственная (муниципальная)",
    Ownership.non_state: "негосударственная",
}

# The ages of early help: from birth to 3 years, and the adaptation that may run past the third
# birthday; a provider's range is kept within 0..96 months (8 years) to catch typos, not to judge.
AGE_MONTHS_MAX = 96


class Region(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    name: str = Field(max_length=200)
    # IANA zone: working days and quiet hours are computed in it.
    timezone: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value not in available_timezones():
            raise ValueError(f"Неизвестный часовой пояс: {value}")
        return value


class Organisation(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    region_id: int = Field(foreign_key="region.id", index=True)
    name: str = Field(max_length=300)
    kind: OrgKind = Field(sa_column=Column(String(16), nullable=False, index=True))
    inn: str | None = Field(default=None, max_length=12)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=32)
    address: str | None = Field(default=None, max_length=500)
    # The organisation's own system: signed JSON webhooks (HMAC-SHA256 with webhook_secret).
    webhook_url: str | None = Field(default=None, max_length=500)
    webhook_secret: str | None = Field(default=None, max_length=128)
    # Municipalities served (providers only); an empty list means the whole region.
    service_area: list[str] = Field(default_factory=list, sa_type=JSONType)
    is_active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    # --- the public registry of providers (api/services/public_registry.py): what a family needs
    # to choose one. Shown to anyone without login, so nothing here is about a person.
    # Where the provider itself is (a municipality of the region); service_area is where it serves.
    municipality: str | None = Field(default=None, max_length=200)
    ownership: Ownership | None = Field(default=None, sa_column=Column(String(16), nullable=True))
    site: str | None = Field(default=None, max_length=500)
    # ServiceForm codes (models/programmes.py) the provider offers: in_person, remote, home, group.
    forms: list[str] = Field(default_factory=list, sa_type=JSONType)
    age_from_months: int | None = None
    age_to_months: int | None = None
    free_places: int | None = None
    # When free_places was last stated: a family reads the number with its date.
    free_places_updated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    working_hours: str | None = Field(default=None, max_length=300)
    public_note: str | None = Field(default=None, max_length=1000)
    # Shown in the public registry (a provider is, unless the administrator hides it).
    is_public: bool = True


def form_labels(forms: list[str]) -> list[str]:
    """The Russian labels of the forms, in the catalogue's order (unknown codes are skipped)."""
    return [label for form, label in SERVICE_FORM_LABELS.items() if form.value in forms]


class OrganisationPublic(SQLModel):
    id: int
    region_id: int
    name: str
    kind: OrgKind
    kind_label: str
    service_area: list[str]
    email: str | None
    phone: str | None
    address: str | None
    # The public registry's fields (providers; empty or null for the others).
    municipality: str | None = None
    ownership: Ownership | None = None
    site: str | None = None
    forms: list[ServiceForm] = []
    age_from_months: int | None = None
    age_to_months: int | None = None
    free_places: int | None = None
    free_places_updated_at: datetime | None = None
    working_hours: str | None = None

    @classmethod
    def of(cls, org: Organisation) -> OrganisationPublic:
        assert org.id is not None
        return cls(
            id=org.id,
            region_id=org.region_id,
            name=org.name,
            kind=org.kind,
            kind_label=ORG_KIND_LABELS[org.kind],
            service_area=org.service_area,
            email=org.email,
            phone=org.phone,
            address=org.address,
            municipality=org.municipality,
            ownership=org.ownership,
            site=org.site,
            forms=[ServiceForm(f) for f in org.forms or [] if f in ServiceForm.__members__],
            age_from_months=org.age_from_months,
            age_to_months=org.age_to_months,
            free_places=org.free_places,
            free_places_updated_at=org.free_places_updated_at,
            working_hours=org.working_hours,
        )


class ProviderOpen(SQLModel):
    """A provider as the public registry shows it to anyone, without login: an allow-list of the
    organisation's public fields. Never its users, webhook, INN or anything about a case or child."""

    id: int
    region_code: str
    name: str
    ownership: Ownership | None
    ownership_label: str | None
    municipality: str | None
    address: str | None
    service_area: list[str] = Field(description="Муниципалитеты, где оказывается помощь; пусто — весь регион")
    phone: str | None
    email: str | None
    site: str | None
    forms: list[ServiceForm]
    form_labels: list[str]
    age_from_months: int | None
    age_to_months: int | None
    free_places: int | None
    free_places_updated_at: datetime | None
    working_hours: str | None
    public_note: str | None
    page_url: str = Field(description="Страница организации в публичном реестре (её же ведёт QR-код)")


class RegionOpen(SQLModel):
    code: str
    name: str
    page_url: str
