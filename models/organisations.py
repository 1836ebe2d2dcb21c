"""Regions and organisations: who identifies, who provides, who supervises."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from zoneinfo import available_timezones

from pydantic import field_validator
from sqlalchemy import Column, String
from sqlmodel import Field, SQLModel

from models.common import JSONType, UTCDateTime, utcnow


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
        )
