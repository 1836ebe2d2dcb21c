"""The region's organisations: the list every role reads, and the administrator's registry (create,
edit, import from CSV).

One set of rules for every door: the API (api/routes/organisations.py) and the administrator's pages
(api/pages/admin.py) validate with the models below and call these functions. Every function is
scoped to the caller's region; the registry's changes are the region administrator's alone.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from sqlmodel import Session, col, select

from api.deps import Principal
from api.services import public_registry
from core.errors import Conflict, Forbidden, NotFound, Unprocessable
from models.cases import Case
from models.common import JsonBool, JsonInt, control_character, normalise_name, utcnow
from models.organisations import (
    AGE_MONTHS_MAX,
    ORG_KIND_LABELS,
    OWNERSHIP_LABELS,
    Organisation,
    OrgKind,
    Ownership,
)
from models.programmes import SERVICE_FORM_LABELS, ServiceForm
from models.users import ROLE_LABELS, Role, User, normalise_email

_PHONE = re.compile(r"^\+?[0-9 ()-]{7,20}$")
_INN = re.compile(r"^(\d{10}|\d{12})$")


def _blank_to_none(value: Any) -> Any:
    """A form's or a CSV's empty cell means "not given"."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _name(value: str) -> str:
    value = " ".join(value.split())
    if not value:
        raise ValueError("Укажите название организации")
    return value


def _inn(value: str | None) -> str | None:
    if value is not None and not _INN.match(value):
        raise ValueError("ИНН: 10 цифр (юридическое лицо) или 12 цифр")
    return value


def _phone(value: str | None) -> str | None:
    if value is not None and not _PHONE.match(value):
        raise ValueError("Телефон должен содержать от 7 до 20 цифр, например +7 800 000-00-00")
    return value


def _email(value: str | None) -> str | None:
    return normalise_email(value) if value is not None else None


def _url(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:  # urlsplit's own complaint is English ("Invalid IPv6 URL")
        host = None
    if not host or parts.scheme not in ("https", "http") or " " in value:
        raise ValueError("Адрес webhook: полный адрес, начинающийся с https:// (или http:// в закрытой сети)")
    return value


def _area(value: Any) -> Any:
    """Municipalities as a list, or one string of them separated by commas or new lines."""
    if isinstance(value, str):
        value = re.split(r"[,\n]", value)
    if isinstance(value, list):
        seen: list[str] = []
        for item in value:
            if isinstance(item, str):
                item = " ".join(item.split())
                if not item:
                    continue
            if item not in seen:
                seen.append(item)
        return seen
    return value


Name = Annotated[str, Field(max_length=300), AfterValidator(_name)]
Inn = Annotated[
    Annotated[str, Field(max_length=12), AfterValidator(_inn)] | None, BeforeValidator(_blank_to_none)
]
Email = Annotated[
    Annotated[str, Field(max_length=254), AfterValidator(_email)] | None, BeforeValidator(_blank_to_none)
]
Phone = Annotated[
    Annotated[str, Field(max_length=32), AfterValidator(_phone)] | None, BeforeValidator(_blank_to_none)
]
Address = Annotated[Annotated[str, Field(max_length=500)] | None, BeforeValidator(_blank_to_none)]
WebhookUrl = Annotated[
    Annotated[str, Field(max_length=500), AfterValidator(_url)] | None, BeforeValidator(_blank_to_none)
]
Municipality = Annotated[str, Field(min_length=1, max_length=200)]
ServiceArea = Annotated[list[Municipality], BeforeValidator(_area), Field(max_length=200)]

# --- the public registry's fields (api/services/public_registry.py shows them to anyone) ---------

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def _site(value: str | None) -> str | None:
    """A site's address; a bare domain (example.org) is taken as https://example.org."""
    if value is None:
        return None
    if not _SCHEME.match(value):
        value = "https://" + value
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:  # urlsplit's own complaint is English ("Invalid IPv6 URL")
        host = None
    if host is None or parts.scheme not in ("https", "http") or any(c.isspace() for c in value):
        # The field's name is said by whoever shows the message (the form beside it, the CSV as «Сайт: …»).
        raise ValueError("Полный адрес, начинающийся с https:// или http://, например https://example.org")
    return value


def _one_line(value: str | None) -> str | None:
    return " ".join(value.split()) or None if value is not None else None


def _forms(value: Any) -> Any:
    """Forms as a list of codes, or one string of them separated by commas (a form, a CSV cell)."""
    if isinstance(value, str):
        value = [item.strip() for item in value.split(",") if item.strip()]
    return value


def _canonical_forms(value: list[ServiceForm]) -> list[ServiceForm]:
    """Each form once, in the catalogue's order."""
    return [form for form in ServiceForm if form in value]


Site = Annotated[
    Annotated[str, Field(max_length=500), AfterValidator(_site)] | None, BeforeValidator(_blank_to_none)
]
MunicipalityOrNone = Annotated[
    Annotated[str, Field(max_length=200), AfterValidator(_one_line)] | None, BeforeValidator(_blank_to_none)
]
OwnershipOrNone = Annotated[Ownership | None, BeforeValidator(_blank_to_none)]
Forms = Annotated[
    list[ServiceForm], BeforeValidator(_forms), Field(max_length=8), AfterValidator(_canonical_forms)
]
AgeMonths = Annotated[
    Annotated[JsonInt, Field(ge=0, le=AGE_MONTHS_MAX)] | None, BeforeValidator(_blank_to_none)
]
FreePlaces = Annotated[Annotated[JsonInt, Field(ge=0, le=100_000)] | None, BeforeValidator(_blank_to_none)]
WorkingHours = Annotated[
    Annotated[str, Field(max_length=300), AfterValidator(_one_line)] | None, BeforeValidator(_blank_to_none)
]
PublicNote = Annotated[Annotated[str, Field(max_length=1000)] | None, BeforeValidator(_blank_to_none)]

# The fields only a provider has (a clinic serves no ages in the registry).
PROVIDER_ONLY = ("forms", "age_from_months", "age_to_months", "free_places")
# The public registry's fields the administrator keeps.
PUBLIC_FIELDS = (
    "municipality",
    "ownership",
    "site",
    "forms",
    "age_from_months",
    "age_to_months",
    "free_places",
    "working_hours",
    "public_note",
    "is_public",
)
_INTEGER_TEXT = re.compile(r"^[+-]?\d{1,9}$")


def numbers_from_text(values: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """A form's or a CSV's numbers are text: "12" becomes 12 (what is not a number stays text and
    is refused by the model with its field)."""
    result = dict(values)
    for name in names:
        value = result.get(name)
        if isinstance(value, str) and _INTEGER_TEXT.match(value.strip()):
            result[name] = int(value.strip())
    return result


class OrganisationCreate(BaseModel):
    """A new organisation of the caller's region. A provider may name the municipalities it serves
    (none: the whole region); with a webhook address a secret is made and shown once."""

    model_config = ConfigDict(extra="forbid")
    name: Name
    kind: OrgKind
    inn: Inn = None
    email: Email = None
    phone: Phone = None
    address: Address = None
    service_area: ServiceArea = Field(
        default_factory=list, description="Муниципалитеты (только для организаций ранней помощи)"
    )
    webhook_url: WebhookUrl = Field(default=None, description="Адрес webhook системы организации")
    municipality: MunicipalityOrNone = Field(default=None, description="Где находится организация")
    ownership: OwnershipOrNone = Field(
        default=None, description="state — государственная (муниципальная), non_state — негосударственная"
    )
    site: Site = Field(default=None, description="Сайт (http:// или https://)")
    forms: Forms = Field(
        default_factory=list, description="Формы работы: in_person, remote, home, group (только поставщики)"
    )
    age_from_months: AgeMonths = Field(default=None, description="Возраст детей с (месяцев, 0–96)")
    age_to_months: AgeMonths = Field(default=None, description="Возраст детей до (месяцев, 0–96)")
    free_places: FreePlaces = Field(default=None, description="Свободные места (их дата — дата изменения)")
    working_hours: WorkingHours = Field(default=None, description="Часы работы")
    public_note: PublicNote = Field(default=None, description="Для родителей: что ещё важно знать")
    is_public: JsonBool = Field(default=True, description="Показывать в публичном реестре (поставщики)")


class OrganisationUpdate(BaseModel):
    """What changes: the fields given (null clears an optional one); the others stay."""

    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    kind: OrgKind | None = None
    inn: Inn = None
    email: Email = None
    phone: Phone = None
    address: Address = None
    service_area: ServiceArea | None = None
    webhook_url: WebhookUrl = None
    new_webhook_secret: bool = Field(
        default=False, description="Создать новый секрет webhook (старый перестаёт действовать)"
    )
    municipality: MunicipalityOrNone = None
    ownership: OwnershipOrNone = None
    site: Site = None
    forms: Forms | None = None
    age_from_months: AgeMonths = None
    age_to_months: AgeMonths = None
    free_places: FreePlaces = None
    working_hours: WorkingHours = None
    public_note: PublicNote = None
    is_public: JsonBool | None = None


class PublicInfoUpdate(BaseModel):
    """What a provider's head or intake coordinator keeps of their own organisation's public page:
    the free places (dated when given), the forms, the hours and the note. The fields given change
    (null clears one); the others stay."""

    model_config = ConfigDict(extra="forbid")
    free_places: FreePlaces = Field(default=None, description="Свободные места сейчас (null — не указывать)")
    forms: Forms | None = Field(default=None, description="Формы работы: in_person, remote, home, group")
    working_hours: WorkingHours = None
    public_note: PublicNote = None


class OrganisationAdmin(BaseModel):
    """An organisation as the region's administrator sees it (the webhook secret is never shown again)."""

    id: int
    name: str
    kind: OrgKind
    kind_label: str
    inn: str | None
    email: str | None
    phone: str | None
    address: str | None
    service_area: list[str]
    webhook_url: str | None
    is_active: bool
    created_at: datetime
    municipality: str | None
    ownership: Ownership | None
    site: str | None
    forms: list[ServiceForm]
    age_from_months: int | None
    age_to_months: int | None
    free_places: int | None
    free_places_updated_at: datetime | None
    working_hours: str | None
    public_note: str | None
    is_public: bool

    @classmethod
    def of(cls, org: Organisation) -> OrganisationAdmin:
        assert org.id is not None
        return cls(
            id=org.id,
            name=org.name,
            kind=org.kind,
            kind_label=ORG_KIND_LABELS[org.kind],
            inn=org.inn,
            email=org.email,
            phone=org.phone,
            address=org.address,
            service_area=list(org.service_area or []),
            webhook_url=org.webhook_url,
            is_active=org.is_active,
            created_at=org.created_at,
            municipality=org.municipality,
            ownership=org.ownership,
            site=org.site,
            forms=_canonical_forms([ServiceForm(f) for f in org.forms or [] if f in _FORM_CODES]),
            age_from_months=org.age_from_months,
            age_to_months=org.age_to_months,
            free_places=org.free_places,
            free_places_updated_at=org.free_places_updated_at,
            working_hours=org.working_hours,
            public_note=org.public_note,
            is_public=org.is_public,
        )


_FORM_CODES = frozenset(form.value for form in ServiceForm)


class OrganisationSaved(BaseModel):
    organisation: OrganisationAdmin
    # The webhook's new secret, shown this once; null when none was made.
    webhook_secret: str | None


class ImportCreated(BaseModel):
    line: int = Field(description="Номер строки файла (заголовок — строка 1)")
    id: int
    name: str


class ImportRefused(BaseModel):
    line: int = Field(description="Номер строки файла (заголовок — строка 1)")
    reason: str = Field(description="Почему строка не принята, по-русски")


class ImportReport(BaseModel):
    """Every line of the file: created (in one transaction) or refused with its reason."""

    created: list[ImportCreated]
    refused: list[ImportRefused]


# --- reading ----------------------------------------------------------------------------------


def require_admin(principal: Principal) -> None:
    if principal.role != Role.admin:
        raise Forbidden("Реестр организаций ведёт только администратор")


def list_organisations(
    session: Session, principal: Principal, *, kind: OrgKind | None = None, active_only: bool = True
) -> list[Organisation]:
    """The organisations of the caller's region, by name (every role may read the registry)."""
    query = select(Organisation).where(Organisation.region_id == principal.org.region_id)
    if active_only:
        query = query.where(col(Organisation.is_active).is_(True))
    if kind is not None:
        query = query.where(Organisation.kind == kind)
    return list(session.exec(query.order_by(col(Organisation.name), col(Organisation.id))))


def get_organisation(
    session: Session, principal: Principal, org_id: int, field: str = "org_id"
) -> Organisation:
    """One organisation of the administrator's region; NotFound (naming `field`) for another region's."""
    require_admin(principal)
    org = session.get(Organisation, org_id)
    if org is None or org.region_id != principal.org.region_id:
        raise NotFound("Организация не найдена", field=field)
    return org


# --- changing ---------------------------------------------------------------------------------


def _name_key(name: str) -> str:
    return normalise_name(name)


def _region_names(session: Session, region_id: int, except_id: int | None = None) -> set[str]:
    query = select(Organisation.id, Organisation.name).where(Organisation.region_id == region_id)
    return {_name_key(name) for org_id, name in session.exec(query) if org_id != except_id}


def _area_problem(kind: OrgKind, area: list[str]) -> str | None:
    if area and kind != OrgKind.provider:
        return "Муниципалитеты указываются только для организации, оказывающей раннюю помощь"
    return None


def _public_problem(kind: OrgKind, org: Organisation) -> tuple[str, str] | None:
    """(field, Russian message) when the public fields as they would be saved do not hold together."""
    if kind != OrgKind.provider:
        for name in PROVIDER_ONLY:
            if getattr(org, name) not in (None, []):
                return name, "Указывается только для организации, оказывающей раннюю помощь"
    low, high = org.age_from_months, org.age_to_months
    if low is not None and high is not None and low > high:
        return "age_to_months", "Возраст «до» не может быть меньше возраста «с»"
    return None


def _check_public(kind: OrgKind, org: Organisation) -> None:
    if problem := _public_problem(kind, org):
        raise Unprocessable(problem[1], field=problem[0])


def _set_free_places(org: Organisation, value: int | None) -> None:
    """The number with the moment it was stated (a family reads both); null clears both."""
    org.free_places = value
    org.free_places_updated_at = utcnow() if value is not None else None


def update_public_info(
    session: Session, principal: Principal, org_id: int, body: PublicInfoUpdate
) -> Organisation:
    """A provider's head or intake coordinator updates their own organisation's public page; the
    region's administrator may too. Another organisation's id is 404 (knowing it opens nothing)."""
    if principal.role not in (Role.supervisor, Role.intake_coordinator, Role.admin):
        raise Forbidden("Сведения для публичного реестра меняют руководитель организации и координатор")
    org = session.get(Organisation, org_id)
    own = principal.org.id == org_id if principal.role != Role.admin else True
    if org is None or org.region_id != principal.org.region_id or not own or org.kind != OrgKind.provider:
        raise NotFound("Организация не найдена", field="org_id")
    given = body.model_fields_set
    if "free_places" in given:
        _set_free_places(org, body.free_places)
    if "forms" in given:
        org.forms = [form.value for form in body.forms or []]
    for name in ("working_hours", "public_note"):
        if name in given:
            setattr(org, name, getattr(body, name))
    session.add(org)
    session.flush()
    public_registry.forget(session, org.region_id)
    return org


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


def create_organisation(
    session: Session, principal: Principal, body: OrganisationCreate, *, names: set[str] | None = None
) -> tuple[Organisation, str | None]:
    """The new organisation (flushed) and its webhook secret when it has a webhook (shown once).
    `names`: the region's name keys already known (an import passes one set for all its lines)."""
    require_admin(principal)
    return create_in_region(session, principal.org.region_id, body, names=names)


def create_in_region(
    session: Session, region_id: int, body: OrganisationCreate, *, names: set[str] | None = None
) -> tuple[Organisation, str | None]:
    """The same rules for the operator's CLI (`earlyhelp org add`), which has no principal."""
    if problem := _area_problem(body.kind, body.service_area):
        raise Unprocessable(problem, field="service_area")
    known = names if names is not None else _region_names(session, region_id)
    key = _name_key(body.name)
    if key in known:
        raise Conflict(f"Организация «{body.name}» в регионе уже есть", field="name")
    secret = _new_secret() if body.webhook_url else None
    org = Organisation(
        region_id=region_id,
        name=body.name,
        kind=body.kind,
        inn=body.inn,
        email=body.email,
        phone=body.phone,
        address=body.address,
        service_area=body.service_area,
        webhook_url=body.webhook_url,
        webhook_secret=secret,
        municipality=body.municipality,
        ownership=body.ownership,
        site=body.site,
        forms=[form.value for form in body.forms],
        age_from_months=body.age_from_months,
        age_to_months=body.age_to_months,
        working_hours=body.working_hours,
        public_note=body.public_note,
        is_public=body.is_public,
    )
    _set_free_places(org, body.free_places)
    _check_public(body.kind, org)
    session.add(org)
    session.flush()
    public_registry.forget(session, org.region_id)
    known.add(key)
    return org, secret


def _kind_problem(session: Session, org: Organisation, kind: OrgKind) -> str | None:
    """A kind change must not leave a user in a role the new kind cannot hold, nor cases without
    a provider."""
    from api.services.users import role_problem

    probe = Organisation(region_id=org.region_id, name=org.name, kind=kind)
    for user in session.exec(select(User).where(User.organisation_id == org.id)):
        if role_problem(user.role, probe):
            return (
                f"Вид не изменён: у организации есть пользователи с ролью «{ROLE_LABELS[user.role]}», "
                f"недоступной для вида «{ORG_KIND_LABELS[kind]}»"
            )
    if org.kind == OrgKind.provider:
        has_cases = session.exec(select(Case.id).where(Case.provider_id == org.id).limit(1)).first()
        if has_cases is not None:
            return "Вид не изменён: организация ведёт случаи ранней помощи"
    return None


def update_organisation(
    session: Session, principal: Principal, org_id: int, body: OrganisationUpdate
) -> tuple[Organisation, str | None]:
    """The changed organisation and a new webhook secret when one was made (new address or asked)."""
    org = get_organisation(session, principal, org_id)
    given = body.model_fields_set
    kind = body.kind if body.kind is not None else org.kind
    if kind != org.kind and (problem := _kind_problem(session, org, kind)):
        raise Conflict(problem, field="kind")
    area = (
        body.service_area if "service_area" in given and body.service_area is not None else org.service_area
    )
    if kind != OrgKind.provider and "service_area" not in given:
        area = []  # a provider that stops being one keeps no municipalities
    if problem := _area_problem(kind, area):
        raise Unprocessable(problem, field="service_area")
    if body.name is not None and _name_key(body.name) != _name_key(org.name):
        if _name_key(body.name) in _region_names(session, org.region_id, except_id=org.id):
            raise Conflict(f"Организация «{body.name}» в регионе уже есть", field="name")
        org.name = body.name
    # The public fields as they would be saved, checked before anything changes (a refusal must
    # leave the row as it was: the page shows the organisation again).
    public = {name: getattr(org, name) for name in PUBLIC_FIELDS}
    for name in PUBLIC_FIELDS:
        if name in given and name != "free_places":
            value = getattr(body, name)
            if name == "forms":
                value = [form.value for form in value or []]
            elif name == "is_public" and value is None:
                continue
            public[name] = value
    if kind != OrgKind.provider:
        for name in PROVIDER_ONLY:
            if name not in given:
                public[name] = [] if name == "forms" else None  # not a provider any more
    probe = Organisation(region_id=org.region_id, name=org.name, kind=kind, **public)
    if "free_places" in given:
        probe.free_places = body.free_places
    _check_public(kind, probe)
    org.kind = kind
    org.service_area = list(area)
    for name in ("inn", "email", "phone", "address"):
        if name in given:
            setattr(org, name, getattr(body, name))
    for name in PUBLIC_FIELDS:
        if name != "free_places":
            setattr(org, name, public[name])
    if "free_places" in given:
        _set_free_places(org, body.free_places)
    elif kind != OrgKind.provider:
        _set_free_places(org, None)
    secret: str | None = None
    if "webhook_url" in given and body.webhook_url != org.webhook_url:
        org.webhook_url = body.webhook_url
        secret = _new_secret() if body.webhook_url else None
        org.webhook_secret = secret
    elif body.new_webhook_secret and org.webhook_url:
        secret = _new_secret()
        org.webhook_secret = secret
    session.add(org)
    session.flush()
    public_registry.forget(session, org.region_id)
    return org, secret


# --- import from CSV --------------------------------------------------------------------------

# The file's columns: the key, its Russian heading (either may head the column), and what it holds.
CSV_COLUMNS: list[tuple[str, str, str]] = [
    ("name", "Название", "обязательно; не должно повторять название организации региона"),
    ("kind", "Вид", "обязательно; код (provider, health…) или название вида, как в списке ниже"),
    ("inn", "ИНН", "10 или 12 цифр"),
    ("email", "E-mail", "адрес для сообщений организации"),
    ("phone", "Телефон", "от 7 до 20 цифр, например +7 800 000-00-00"),
    ("address", "Адрес", ""),
    (
        "service_area",
        "Муниципалитеты",
        "только для организаций ранней помощи; через запятую (пусто — весь регион)",
    ),
    ("municipality", "Муниципалитет", "где находится организация"),
    (
        "ownership",
        "Форма собственности",
        "«государственная (муниципальная)» или «негосударственная» (коды state, non_state)",
    ),
    ("site", "Сайт", "адрес, начинающийся с https:// или http://"),
    (
        "forms",
        "Формы работы",
        "только для организаций ранней помощи; через запятую: очно, дистанционно, на дому, в группе",
    ),
    ("age_from_months", "Возраст с (мес.)", "только для организаций ранней помощи; 0–96"),
    ("age_to_months", "Возраст до (мес.)", "только для организаций ранней помощи; 0–96"),
    ("free_places", "Свободные места", "только для организаций ранней помощи; целое число, 0 и больше"),
    ("working_hours", "Часы работы", "например, пн–пт 9:00–18:00"),
]
_HEADINGS: dict[str, str] = {
    **{key: key for key, _, _ in CSV_COLUMNS},
    **{heading.casefold(): key for key, heading, _ in CSV_COLUMNS},
    "e-mail": "email",
    "email": "email",
}
_KINDS: dict[str, OrgKind] = {
    **{kind.value: kind for kind in OrgKind},
    **{label.casefold(): kind for kind, label in ORG_KIND_LABELS.items()},
}
_FIELD_LABELS = {key: heading for key, heading, _ in CSV_COLUMNS}
_OWNERSHIPS: dict[str, Ownership] = {
    **{o.value: o for o in Ownership},
    **{label.casefold(): o for o, label in OWNERSHIP_LABELS.items()},
    "государственная": Ownership.state,
    "муниципальная": Ownership.state,
}
_FORMS: dict[str, ServiceForm] = {
    **{f.value: f for f in ServiceForm},
    **{label.casefold(): f for f, label in SERVICE_FORM_LABELS.items()},
}

SAMPLE_CSV = (
    "\ufeffНазвание;Вид;ИНН;E-mail;Телефон;Адрес;Муниципалитеты;Муниципалитет;Форма собственности;Сайт;"
    "Формы работы;Возраст с (мес.);Возраст до (мес.);Свободные места;Часы работы\r\n"
    "ГБУЗ «Детская поликлиника № 2»;health;7701234567;dp2@example.org;+7 800 000-00-02;"
    "ул. Ленина, 5;;Центральный район;государственная (муниципальная);;;;;;\r\n"
    "Служба ранней помощи «Росток»;provider;;rostok@example.org;+7 800 000-00-03;ул. Мира, 1;"
    "Центральный район, Северный район;Северный район;негосударственная;https://rostok.example.org;"
    "очно, дистанционно, на дому;0;36;3;пн–пт 9:00–18:00\r\n"
    "ГБУ «Социально-реабилитационный центр»;Организация социального обслуживания;;;;;;;;;;;;;\r\n"
)


class CsvUnreadable(Unprocessable):
    """The file as a whole cannot be read (encoding, header, control character): nothing is created."""

    code = "csv_unreadable"


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]  # Excel's UTF-8 "with BOM"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CsvUnreadable(
            "Файл не в кодировке UTF-8: сохраните его в Excel как «CSV UTF-8 (разделитель — запятая)»"
        ) from None
    for number, line in enumerate(text.splitlines(), start=1):
        if char := control_character(line):
            raise CsvUnreadable(f"Строка {number}: недопустимый управляющий символ {char}")
    return text


def _delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in (";", ",", "\t")}
    return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ";"


def _reason(error: ValidationError) -> str:
    from api.errors import validation_errors

    parts = []
    for item in validation_errors(error.errors()):
        column = _FIELD_LABELS.get(item["field"].split(".")[0], item["field"])
        parts.append(f"{column}: {item['message']}" if column else item["message"])
    return "; ".join(parts)


@dataclass
class ParsedLine:
    line: int
    values: dict[str, str] = field(default_factory=dict)
    problem: str | None = None


def parse_csv(data: bytes) -> list[ParsedLine]:
    """The file's data lines with their line numbers (the header is line 1); CsvUnreadable when
    the file as a whole cannot be read."""
    text = _decode(data)
    if not text.strip():
        raise CsvUnreadable("Файл пуст: первая строка — заголовки столбцов, далее по строке на организацию")
    first = text.splitlines()[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first))
    try:
        header = next(reader)
        columns: list[str] = []
        for heading in header:
            key = _HEADINGS.get(heading.strip().casefold())
            if key is None:
                raise CsvUnreadable(
                    f"Неизвестный столбец «{heading.strip()}»: допустимы "
                    + ", ".join(f"«{h}»" for _, h, _ in CSV_COLUMNS)
                )
            if key in columns:
                raise CsvUnreadable(f"Столбец «{_FIELD_LABELS[key]}» указан дважды")
            columns.append(key)
        for required in ("name", "kind"):
            if required not in columns:
                raise CsvUnreadable(f"Нет столбца «{_FIELD_LABELS[required]}»")
        lines: list[ParsedLine] = []
        start = reader.line_num + 1
        for row in reader:
            number, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue
            parsed = ParsedLine(line=number)
            if len(row) > len(columns):
                parsed.problem = f"значений больше, чем столбцов ({len(row)} вместо {len(columns)})"
            else:
                parsed.values = {key: cell.strip() for key, cell in zip(columns, row, strict=False)}
            lines.append(parsed)
    except csv.Error as error:
        raise CsvUnreadable(f"Строка {reader.line_num}: файл CSV повреждён ({error})") from None
    if not lines:
        raise CsvUnreadable("В файле нет строк с организациями: только заголовок")
    return lines


def _line_body(values: dict[str, str]) -> OrganisationCreate:
    """A line as the create model; ValueError with the Russian reason when the kind is unknown."""
    raw_kind = values.get("kind", "").strip()
    kind = _KINDS.get(raw_kind.casefold())
    if kind is None:
        if not raw_kind:
            raise ValueError("Вид: не указан")
        raise ValueError(f"Вид: неизвестный вид «{raw_kind}»")
    body: dict[str, Any] = {key: value for key, value in values.items() if key != "kind"}
    body["kind"] = kind.value
    # Russian words for the codes (what a person types into a spreadsheet); anything else is left
    # for the model to refuse with its field.
    if raw := body.get("ownership", "").strip():
        body["ownership"] = _OWNERSHIPS.get(raw.casefold(), raw)
    if raw := body.get("forms", "").strip():
        body["forms"] = [
            _FORMS.get(item.strip().casefold(), item.strip()) for item in raw.split(",") if item.strip()
        ]
    body = numbers_from_text(body, ("age_from_months", "age_to_months", "free_places"))
    return OrganisationCreate.model_validate(body)


def import_csv(session: Session, principal: Principal, data: bytes) -> tuple[ImportReport, list[int]]:
    """Create the organisations of the file's valid lines (in the caller's transaction) and report
    each refused line with its reason; the ids created (to audit)."""
    require_admin(principal)
    lines = parse_csv(data)
    names = _region_names(session, principal.org.region_id)
    created: list[ImportCreated] = []
    refused: list[ImportRefused] = []
    for parsed in lines:
        if parsed.problem:
            refused.append(ImportRefused(line=parsed.line, reason=parsed.problem.capitalize()))
            continue
        try:
            body = _line_body(parsed.values)
        except ValidationError as error:
            refused.append(ImportRefused(line=parsed.line, reason=_reason(error)))
            continue
        except ValueError as error:
            refused.append(ImportRefused(line=parsed.line, reason=str(error)))
            continue
        try:
            # Every check comes before the row is added: a refused line leaves nothing behind.
            org, _secret = create_organisation(session, principal, body, names=names)
        except (Conflict, Unprocessable) as error:
            column = _FIELD_LABELS.get(error.field or "", "")
            message = error.message
            refused.append(
                ImportRefused(line=parsed.line, reason=f"{column}: {message}" if column else message)
            )
            continue
        assert org.id is not None
        created.append(ImportCreated(line=parsed.line, id=org.id, name=org.name))
    return ImportReport(created=created, refused=refused), [c.id for c in created]
