"""The public registry of early-help providers: what anyone may read without login (the federal plan's
«общедоступный в сети Интернет реестр ... поставщиков услуг в сфере ранней помощи», and the 2025
letter's «информирование родителей о ранней помощи с помощью QR-кода»).

Only a region's active providers that are public and can be reached (a phone or an e-mail) are
listed, and only the allow-list of `ProviderOpen` (models/organisations.py) leaves this module:
never users, webhooks, INN, nor anything about a case or a child. The API (api/routes/public.py)
and the pages (api/pages/public.py) call these functions; QR codes (segno) and A4 posters
(reportlab) are made here too.

A region has tens of providers, not thousands: the region's public providers are read in one query
and filtered in Python (municipality, form, age, a name search normalised as names are elsewhere:
casefold, ё→е), which is cheaper than teaching two databases to search JSON lists. The list read,
its search keys and its open views are kept per process for as long as the answers may be kept by
anyone (LIST_SECONDS, the lists' max-age): a region of 600 providers cost 40 ms a request to read and
build (bench/RESULTS.md). The organisations' doors (api/services/organisations.py) forget it.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from functools import cached_property, lru_cache
from typing import Any
from xml.sax.saxutils import escape

import segno
from sqlalchemy import event, or_
from sqlmodel import Session, col, select

from core.cache import Kept
from core.errors import NotFound
from models.common import normalise_name
from models.organisations import (
    AGE_MONTHS_MAX,
    OWNERSHIP_LABELS,
    Organisation,
    OrgKind,
    Ownership,
    ProviderOpen,
    Region,
    RegionOpen,
    form_labels,
)
from models.programmes import ServiceForm

# The longest name search a person types; longer is a 422 (and no work for a bot).
Q_MAX = 100


# --- addresses ----------------------------------------------------------------------------------


def base_url(public_url: str) -> str:
    return public_url.rstrip("/")


def region_page(public_url: str, region_code: str) -> str:
    return f"{base_url(public_url)}/public/{region_code}"


def provider_page(public_url: str, region_code: str, org_id: int) -> str:
    return f"{region_page(public_url, region_code)}/providers/{org_id}"


# --- reading ------------------------------------------------------------------------------------


def list_regions(session: Session) -> list[Region]:
    return list(session.exec(select(Region).order_by(col(Region.name), col(Region.id))))


def region_by_code(session: Session, region_code: str) -> Region:
    region = session.exec(select(Region).where(Region.code == region_code)).first()
    if region is None:
        raise NotFound("Регион не найден", field="region_code")
    return region


@dataclass(frozen=True, slots=True)
class PublicProvider:
    """A provider's public columns only, read as plain values (no ORM row: the webhook secret and the
    rest of the organisation are never even loaded, and a list of hundreds costs a few ms)."""

    id: int
    name: str
    ownership: str | None
    municipality: str | None
    address: str | None
    service_area: list[str]
    phone: str | None
    email: str | None
    site: str | None
    forms: list[str]
    age_from_months: int | None
    age_to_months: int | None
    free_places: int | None
    free_places_updated_at: datetime | None
    working_hours: str | None
    public_note: str | None


_COLUMNS = [getattr(Organisation, f.name) for f in fields(PublicProvider)]


def _public(region_id: int) -> Any:
    """The region's providers anyone may see: active, public, reachable (a phone or an e-mail)."""
    return (
        select(*_COLUMNS)
        .where(Organisation.region_id == region_id)
        .where(Organisation.kind == OrgKind.provider)
        .where(col(Organisation.is_active).is_(True))
        .where(col(Organisation.is_public).is_(True))
        .where(or_(col(Organisation.phone).is_not(None), col(Organisation.email).is_not(None)))
    )


def publication_problem(org: Organisation) -> str | None:
    """Why an organisation is not in the public registry (for the administrator), or None."""
    if org.kind != OrgKind.provider:
        return "не оказывает раннюю помощь"
    if not org.is_active:
        return "не действует"
    if not org.is_public:
        return "скрыта администратором"
    if not org.phone and not org.email:
        return "нет ни телефона, ни e-mail: родителям не связаться"
    return None


@dataclass(frozen=True)
class ProviderFilter:
    municipality: str | None = None
    form: ServiceForm | None = None
    age_months: int | None = None
    q: str | None = None

    @cached_property
    def _keys(self) -> tuple[str, str]:
        return normalise_name(self.municipality), normalise_name(self.q)

    def matches(self, item: Listed) -> bool:
        org = item.org
        if self.form is not None and self.form.value not in org.forms:
            return False
        if self.age_months is not None:
            low = org.age_from_months if org.age_from_months is not None else 0
            high = org.age_to_months if org.age_to_months is not None else AGE_MONTHS_MAX
            if not low <= self.age_months <= high:
                return False
        place, name = self._keys
        # An empty service area is the whole region; the provider's own municipality counts too.
        if place and item.area_keys and place not in item.area_keys and item.home_key != place:
            return False
        return not name or name in item.name_key


def _rows(session: Session, query: Any) -> list[PublicProvider]:
    found = []
    for row in session.connection().execute(query):
        values: dict[str, Any] = dict(row._mapping)
        values["service_area"] = list(values["service_area"] or [])
        values["forms"] = list(values["forms"] or [])
        found.append(PublicProvider(**values))
    return found


@dataclass(frozen=True, slots=True)
class Listed:
    """A public provider as the search compares it (its keys normalised once) and its open views."""

    org: PublicProvider
    name_key: str
    home_key: str
    area_keys: frozenset[str]
    views: dict[str, ProviderOpen] = field(default_factory=dict)  # by the public address


@dataclass(frozen=True, slots=True)
class RegionList:
    """The region's public providers by name, and the municipalities they are in or serve."""

    providers: list[Listed]
    municipalities: list[str]


# As long as the answers say anyone may keep them (api/routes/public.py, LIST_CACHE max-age).
LIST_SECONDS = 60.0
_lists: Kept[int, RegionList] = Kept(LIST_SECONDS)


def forget(session: Session, region_id: int) -> None:
    """A provider of the region is being written: its list is read anew in this process, now and
    once the change is committed (a request in between may have read it as it was)."""
    _lists.forget(region_id)
    event.listen(session, "after_commit", lambda _session: _lists.forget(region_id), once=True)


def region_list(session: Session, region: Region) -> RegionList:
    region_id = region.id
    assert region_id is not None

    def read() -> RegionList:
        found = [
            Listed(
                org=org,
                name_key=normalise_name(org.name),
                home_key=normalise_name(org.municipality),
                area_keys=frozenset(normalise_name(m) for m in org.service_area),
            )
            for org in _rows(session, _public(region_id))
        ]
        found.sort(key=lambda item: (item.name_key, item.org.id))
        return RegionList(found, _municipalities(found))

    return _lists.get(region_id, read)


def providers(session: Session, region: Region, where: ProviderFilter | None = None) -> list[Listed]:
    """The region's public providers that match, by name."""
    found = region_list(session, region).providers
    return found if where is None else [item for item in found if where.matches(item)]


def view(item: Listed, region: Region, public_url: str) -> ProviderOpen:
    """The provider's open view, built once per public address."""
    built = item.views.get(public_url)
    if built is None:
        built = item.views[public_url] = open_view(item.org, region, public_url)
    return built


def provider(session: Session, region: Region, org_id: int) -> PublicProvider:
    """One public provider of the region; 404 for anything else (another region's, hidden, a clinic)."""
    assert region.id is not None
    found = _rows(session, _public(region.id).where(Organisation.id == org_id))
    if not found:
        raise NotFound("Организация не найдена в публичном реестре региона", field="org_id")
    return found[0]


def _municipalities(found: Sequence[Listed]) -> list[str]:
    """The municipalities the region's providers are in or serve (for the search form's choice)."""
    seen: dict[str, str] = {}
    for item in found:
        for name in [item.org.municipality, *item.org.service_area]:
            if name:
                seen.setdefault(normalise_name(name), name)
    return [seen[key] for key in sorted(seen)]


def open_view(org: PublicProvider, region: Region, public_url: str) -> ProviderOpen:
    ownership = Ownership(org.ownership) if org.ownership else None
    forms = [form for form in ServiceForm if form.value in org.forms]
    # The values come from the database through the admin's validated models: built, not re-validated.
    return ProviderOpen.model_construct(
        id=org.id,
        region_code=region.code,
        name=org.name,
        ownership=ownership,
        ownership_label=OWNERSHIP_LABELS[ownership] if ownership else None,
        municipality=org.municipality,
        address=org.address,
        service_area=list(org.service_area or []),
        phone=org.phone,
        email=org.email,
        site=org.site,
        forms=forms,
        form_labels=form_labels(org.forms or []),
        age_from_months=org.age_from_months,
        age_to_months=org.age_to_months,
        free_places=org.free_places,
        free_places_updated_at=org.free_places_updated_at,
        working_hours=org.working_hours,
        public_note=org.public_note,
        page_url=provider_page(public_url, region.code, org.id),
    )


def region_view(region: Region, public_url: str) -> RegionOpen:
    return RegionOpen(code=region.code, name=region.name, page_url=region_page(public_url, region.code))


def etag(body: bytes) -> str:
    """A strong validator of the answer itself: a client (or a proxy) asking again gets a 304."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


# --- CSV ----------------------------------------------------------------------------------------

# Excel in a Russian locale opens a CSV with «;» and a UTF-8 BOM as columns with Cyrillic.
CSV_DELIMITER = ";"
CSV_HEADINGS: list[tuple[str, str]] = [
    ("id", "Номер"),
    ("name", "Название"),
    ("ownership", "Форма собственности"),
    ("municipality", "Муниципалитет"),
    ("address", "Адрес"),
    ("service_area", "Обслуживаемые муниципалитеты"),
    ("phone", "Телефон"),
    ("email", "E-mail"),
    ("site", "Сайт"),
    ("forms", "Формы работы"),
    ("age_from_months", "Возраст с (мес.)"),
    ("age_to_months", "Возраст до (мес.)"),
    ("free_places", "Свободные места"),
    ("free_places_updated_at", "Свободные места на дату"),
    ("working_hours", "Часы работы"),
    ("page_url", "Страница в реестре"),
]


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # A cell starting with = + - @ is a formula to a spreadsheet (CSV injection): quote it as text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _phone_like(text) else text


def _phone_like(text: str) -> bool:
    return text.startswith("+") and all(c.isdigit() or c in " +()-" for c in text)


def csv_bytes(views: Sequence[ProviderOpen]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=CSV_DELIMITER, lineterminator="\r\n")
    writer.writerow([heading for _, heading in CSV_HEADINGS])
    for view in views:
        row: list[str] = []
        for key, _ in CSV_HEADINGS:
            value = getattr(view, key)
            if key == "ownership":
                value = view.ownership_label
            elif key == "service_area":
                value = ", ".join(value) if value else "весь регион"
            elif key == "forms":
                value = ", ".join(view.form_labels)
            elif key == "free_places_updated_at":
                value = f"{value:%d.%m.%Y}" if isinstance(value, datetime) else None
            row.append(_cell(value))
        writer.writerow(row)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


# --- QR codes -----------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _qr(url: str) -> segno.QRCode:
    # Error correction M (15 %): a poster survives a crease or a smudge.
    return segno.make_qr(url, error="m")


def qr_svg(url: str) -> bytes:
    out = io.BytesIO()
    _qr(url).save(out, kind="svg", scale=8, border=4, xmldecl=False, svgns=True, title=url, unit=None)
    return out.getvalue()


def qr_png(url: str) -> bytes:
    out = io.BytesIO()
    _qr(url).save(out, kind="png", scale=10, border=4)
    return out.getvalue()


# --- the A4 poster ------------------------------------------------------------------------------

WHO_FOR = [
    "ребёнку установлена инвалидность",
    "у ребёнка IV или V группа здоровья",
    "ребёнок воспитывается в организации для детей-сирот",
    "семья в трудной жизненной ситуации или в социально опасном положении",
    "у ребёнка есть особенности развития или поведения",
    "вас беспокоит, как развивается ваш малыш",
]


def ages_text(org: PublicProvider | ProviderOpen) -> str:
    low, high = org.age_from_months, org.age_to_months
    if low is None and high is None:
        return ""
    if high is None:
        return f"с {low} мес."
    if low is None:
        return f"до {high} мес."
    return f"от {low} до {high} мес."


def poster_pdf(region: Region, url: str, org: PublicProvider | None = None) -> bytes:
    """An A4 poster for a clinic's wall: a headline for parents, who early help is for, the
    provider's contacts (or the region's registry), the big QR code and its address printed under it."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfgen.canvas import Canvas
    from reportlab.platypus import Paragraph

    from flows.documents import _fonts

    regular, bold = _fonts()
    # Bold words by the face's name: <b> would need a font family registered for the whole process.
    strong = f'<font name="{bold}">{{}}</font>'
    width, height = A4
    margin = 18 * mm
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=A4, pageCompression=1, invariant=True)
    title = "Ранняя помощь" + (f": {org.name}" if org else f": {region.name}")
    canvas.setTitle(title)
    canvas.setAuthor("earlyhelp")

    headline = ParagraphStyle("headline", fontName=bold, fontSize=26, leading=31)
    lead = ParagraphStyle("lead", fontName=regular, fontSize=14, leading=19)
    text = ParagraphStyle("text", fontName=regular, fontSize=12, leading=16)
    name = ParagraphStyle("name", fontName=bold, fontSize=15, leading=19)

    # The text blocks, measured before any is drawn: when a long name or address leaves the QR code
    # less than 60 mm, the list of criteria gives way (the public page has it).
    blocks: list[tuple[str, ParagraphStyle, float]] = [
        ("Ранняя помощь детям от рождения до 3 лет", headline, 4 * mm),
        (
            "Бесплатная помощь семьям, если малыш развивается не так, как хотелось бы. "
            "Специалисты помогут ребёнку и подскажут родителям, как заниматься с ним дома.",
            lead,
            3 * mm,
        ),
        (strong.format("Обратитесь, если:") + " " + "; ".join(WHO_FOR) + ".", text, 5 * mm),
    ]
    if org is not None:
        blocks.append((escape(org.name), name, 2 * mm))
        details = [
            ("Адрес", org.address),
            ("Телефон", org.phone),
            ("E-mail", org.email),
            ("Сайт", org.site),
            ("Формы работы", ", ".join(form_labels(org.forms or []))),
            ("Возраст детей", ages_text(org)),
            ("Часы работы", org.working_hours),
        ]
        blocks += [
            (strong.format(label + ":") + " " + escape(value), text, 1 * mm)
            for label, value in details
            if value
        ]
    else:
        blocks.append((f"Организации ранней помощи: {escape(region.name)}", name, 2 * mm))
        blocks.append(
            (
                "Адреса, телефоны, формы работы (очно, дистанционно, на дому) и свободные места — "
                "в публичном реестре по QR-коду.",
                text,
                1 * mm,
            )
        )
    footer = margin + 22 * mm

    def laid_out(
        items: list[tuple[str, ParagraphStyle, float]],
    ) -> tuple[list[tuple[Paragraph, float]], float]:
        placed, used = [], 0.0
        for html, style, gap in items:
            paragraph = Paragraph(html, style)
            _, h = paragraph.wrap(width - 2 * margin, height)
            placed.append((paragraph, h + gap))
            used += h + gap
        return placed, used

    placed, used = laid_out(blocks)
    if height - margin - used - footer - 6 * mm < 60 * mm:
        placed, used = laid_out(blocks[:2] + blocks[3:])
    y = height - margin
    for paragraph, step in placed:
        paragraph.drawOn(canvas, margin, y - paragraph.height)
        y -= step

    # The QR code fills what is left above the address line, at most 110 mm square.
    size = min(110 * mm, y - footer - 6 * mm)
    size = max(size, 50 * mm)
    matrix = [list(row) for row in _qr(url).matrix_iter(border=0)]
    modules = len(matrix)
    cell = size / modules
    left = (width - size) / 2
    top = footer + size + 4 * mm
    canvas.setFillColorRGB(0, 0, 0)
    for r, row in enumerate(matrix):
        for c, dark in enumerate(row):
            if dark:
                canvas.rect(left + c * cell, top - (r + 1) * cell, cell, cell, stroke=0, fill=1)
    canvas.setFont(regular, 12)
    canvas.drawCentredString(
        width / 2, footer + 4 * mm - 14, "Наведите камеру телефона на QR-код или откройте:"
    )
    canvas.setFont(bold, 13 if len(url) < 70 else 10)
    canvas.drawCentredString(width / 2, footer - 16, url)
    canvas.showPage()
    canvas.save()
    return out.getvalue()


# --- the demo -----------------------------------------------------------------------------------

_DEMO: list[dict[str, Any]] = [
    {
        "municipality": "Центральный район",
        "address": "г. Демонстрационный, ул. Садовая, д. 7",
        "ownership": Ownership.state.value,
        "site": "https://first-steps.example.org",
        "forms": ["in_person", "remote", "home", "group"],
        "age_from_months": 0,
        "age_to_months": 36,
        "free_places": 4,
        "working_hours": "пн–пт 9:00–18:00",
        "public_note": "Первая встреча — в течение 10 рабочих дней после обращения.",
    },
    {
        "municipality": "Южный район",
        "address": "г. Южноград, пр. Мира, д. 21",
        "ownership": Ownership.state.value,
        "site": "https://nadezhda.example.org",
        "forms": ["in_person", "remote"],
        "age_from_months": 0,
        "age_to_months": 48,
        "free_places": 0,
        "working_hours": "пн–сб 8:30–17:00",
        "public_note": None,
    },
]


# A non-state provider the demo adds beside the two state ones (no staff: it shows in the registry only).
DEMO_NON_STATE: dict[str, Any] = {
    "name": "АНО «Центр ранней помощи „Кораблик“»",
    "municipality": "Северный район",
    "address": "г. Северск, ул. Лесная, д. 3, офис 12",
    "phone": "+7 800 000-00-44",
    "email": "korablik@example.org",
    "ownership": Ownership.non_state.value,
    "site": "https://korablik.example.org",
    "forms": ["in_person", "home", "group"],
    "service_area": ["Северный район", "Центральный район"],
    "age_from_months": 6,
    "age_to_months": 36,
    "free_places": 2,
    "working_hours": "вт–сб 10:00–19:00",
    "public_note": "Группы для родителей с малышами по субботам.",
}


def demo_public_fields(session: Session, orgs: Sequence[Organisation]) -> None:
    """Give the demo region's providers what a public page shows, and add a non-state one (called
    by api/demo.py's load_demo)."""
    from models.common import utcnow

    found = [org for org in orgs if org.kind == OrgKind.provider]
    now = utcnow()
    for org, values in zip(found, _DEMO, strict=False):
        for key, value in values.items():
            setattr(org, key, value)
        org.free_places_updated_at = now
        session.add(org)
    if found:
        session.add(
            Organisation(
                region_id=found[0].region_id,
                kind=OrgKind.provider,
                free_places_updated_at=now,
                **DEMO_NON_STATE,
            )
        )
    session.flush()
