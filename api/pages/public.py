"""The public pages of the provider registry (no login): the regions, a region's page for parents with
the search, a provider's page with its QR code and poster; and `/my-organisation`, where a provider's
head or intake coordinator keeps the free places and the forms of their own organisation's page.

The public pages never look at a session cookie: they are the same for everyone (no staff menu, no
name in the header), and they read only what api/services/public_registry.py lets out.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from api.deps import SessionDep
from api.errors import validation_errors
from api.pages.web import PageAuditDep, PageUser, read_form, redirect, render, require_roles
from api.services import organisations as orgs
from api.services import public_registry as registry
from core.errors import DomainError
from models.common import IdParam
from models.organisations import AGE_MONTHS_MAX, OrgKind, Region
from models.programmes import SERVICE_FORM_LABELS, ServiceForm
from models.users import Role

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 25  # providers on one page of a region's list

RegionCode = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]
# The search form's fields arrive as text: a parent's typo is shown beside its field, not a 422 page.
Text = Annotated[str, Query(max_length=300)]
FORM_OPTIONS = [(form.value, label) for form, label in SERVICE_FORM_LABELS.items()]


def _public_url(request: Request) -> str:
    return str(request.app.state.settings.public_url)


def _api(region: Region) -> str:
    return f"/api/v1/public/regions/{region.code}"


@router.get("/public", response_class=HTMLResponse)
def regions_page(request: Request, session: SessionDep) -> HTMLResponse:
    return render(
        request,
        "pages/public/regions.html",
        {"title": "Ранняя помощь детям: организации по регионам", "regions": registry.list_regions(session)},
    )


def _search(
    municipality: str, form: str, age: str, q: str, places: list[str]
) -> tuple[registry.ProviderFilter, dict[str, str]]:
    """The form's values as a filter, and the Russian message beside each field that is wrong."""
    errors: dict[str, str] = {}
    chosen_form: ServiceForm | None = None
    if form:
        if form in {f.value for f in ServiceForm}:
            chosen_form = ServiceForm(form)
        else:
            errors["form"] = "Выберите форму работы из списка"
    age_months: int | None = None
    if age:
        if age.isascii() and age.isdigit() and int(age) <= AGE_MONTHS_MAX:
            age_months = int(age)
        else:
            errors["age"] = f"Возраст — целое число месяцев от 0 до {AGE_MONTHS_MAX}, например 18"
    if municipality and municipality not in places:
        errors["municipality"] = "Выберите муниципалитет из списка"
    if len(q) > registry.Q_MAX:
        errors["q"] = f"Не более {registry.Q_MAX} символов"
    where = registry.ProviderFilter(
        municipality=municipality if "municipality" not in errors else None,
        form=chosen_form,
        age_months=age_months,
        q=q if "q" not in errors else None,
    )
    return where, errors


@router.get("/public/{region_code}", response_class=HTMLResponse)
def region_page(
    request: Request,
    region_code: RegionCode,
    session: SessionDep,
    municipality: Text = "",
    form: Text = "",
    age: Text = "",
    q: Text = "",
    page: Text = "",
) -> HTMLResponse:
    region = registry.region_by_code(session, region_code)
    request.state.zone = ZoneInfo(region.timezone)  # dates of free places in the region's time
    listed = registry.region_list(session, region)
    every, places = listed.providers, listed.municipalities
    values = {"municipality": municipality.strip(), "form": form.strip(), "age": age.strip(), "q": q.strip()}
    where, errors = _search(values["municipality"], values["form"], values["age"], values["q"], places)
    searched = any(values.values())
    found = [o for o in every if where.matches(o)] if not errors else []
    public_url = _public_url(request)
    query = urlencode({k: v for k, v in values.items() if v and k != "age"} | _age_param(values["age"]))
    # A page of providers at a time: a region of several hundred is one long list a parent scrolls
    # through on a phone, and each card costs its rendering (bench/RESULTS.md, issue 12).
    pages = max((len(found) + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    number = min(int(page), pages) if page.isascii() and page.isdigit() and 0 < int(page) < 10_000 else 1
    shown = found[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]
    return render(
        request,
        "pages/public/region.html",
        {
            "title": f"Ранняя помощь детям: {region.name}",
            "region": region,
            "providers": [registry.view(item, region, public_url) for item in shown],
            "found": len(found),
            "page": number,
            "pages": pages,
            "page_url": f"/public/{region.code}?{query}&" if query else f"/public/{region.code}?",
            "total": len(every),
            "searched": searched,
            "values": values,
            "errors": errors,
            "municipality_options": [(m, m) for m in places],
            "form_options": FORM_OPTIONS,
            "who_for": registry.WHO_FOR,
            "api": _api(region),
            "query": query,
            "region_url": registry.region_page(public_url, region.code),
        },
        422 if errors else 200,
    )


def _age_param(age: str) -> dict[str, str]:
    return {"age_months": age} if age.isascii() and age.isdigit() and int(age) <= AGE_MONTHS_MAX else {}


@router.get("/public/{region_code}/providers/{org_id}", response_class=HTMLResponse)
def provider_page(
    request: Request, region_code: RegionCode, org_id: IdParam, session: SessionDep
) -> HTMLResponse:
    region = registry.region_by_code(session, region_code)
    request.state.zone = ZoneInfo(region.timezone)
    org = registry.provider(session, region, org_id)
    view = registry.open_view(org, region, _public_url(request))
    return render(
        request,
        "pages/public/provider.html",
        {
            "title": view.name,
            "region": region,
            "provider": view,
            "ages": registry.ages_text(view),
            "api": f"{_api(region)}/providers/{org_id}",
        },
    )


# --- the provider's own page: free places, forms, hours ------------------------------------------

KEEPERS = (Role.supervisor, Role.intake_coordinator)


def _my_form(
    request: Request,
    principal: Any,
    session: SessionDep,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
    notice: str = "",
) -> HTMLResponse:
    org = principal.org
    region = session.get(Region, org.region_id)
    provider = org.kind == OrgKind.provider
    if values is None:
        values = {
            "free_places": "" if org.free_places is None else str(org.free_places),
            "forms": list(org.forms or []),
            "working_hours": org.working_hours or "",
            "public_note": org.public_note or "",
        }
    problem = registry.publication_problem(org)
    return render(
        request,
        "pages/public/my_organisation.html",
        {
            "title": "Наша организация в публичном реестре",
            "org": org,
            "provider": provider,
            "problem": problem,
            "region": region,
            "values": values,
            "errors": errors or {},
            "form_options": FORM_OPTIONS,
            "notice": notice,
            "page": registry.provider_page("", region.code, org.id) if region and org.id and provider else "",
        },
        status,
    )


@router.get("/my-organisation", response_class=HTMLResponse)
def my_organisation(request: Request, principal: PageUser, session: SessionDep) -> HTMLResponse:
    require_roles(principal, *KEEPERS)
    saved = request.query_params.get("saved") == "1"
    return _my_form(request, principal, session, notice="Сохранено" if saved else "")


@router.post("/my-organisation", response_class=HTMLResponse)
async def my_organisation_save(
    request: Request, principal: PageUser, session: SessionDep, audit: PageAuditDep
) -> Response:
    require_roles(principal, *KEEPERS)
    form = await read_form(request, principal)
    values: dict[str, Any] = {
        "free_places": form.get("free_places"),
        "forms": form.getlist("forms"),
        "working_hours": form.get("working_hours"),
        "public_note": form.get("public_note"),
    }
    if principal.org.kind != OrgKind.provider:
        return _my_form(request, principal, session)
    try:
        body = orgs.PublicInfoUpdate.model_validate(orgs.numbers_from_text(values, ("free_places",)))
    except ValidationError as error:
        found = {
            item["field"].split(".")[0] or "free_places": item["message"]
            for item in validation_errors(error.errors())
        }
        return _my_form(request, principal, session, values, found, 422)
    try:
        org = orgs.update_public_info(session, principal, principal.org.id or 0, body)
    except DomainError as error:
        session.rollback()
        return _my_form(
            request, principal, session, values, {error.field or "free_places": error.message}, 422
        )
    audit("update", "organisation", org.id, None)
    return redirect("/my-organisation?saved=1")
