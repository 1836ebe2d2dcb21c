"""The public registry of providers (no login): JSON, CSV, QR codes and posters. Nothing about any child.

Every answer is the same for anyone, so it carries its own cache headers (a strong ETag and a short
public max-age; api/headers.py keeps them): a proxy or a browser asking again gets a 304 without a
body. The queries and the documents are in api/services/public_registry.py.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from pydantic import TypeAdapter
from sqlmodel import Session

from api.deps import SessionDep
from api.openapi import responses
from api.services import public_registry as registry
from models.common import IdParam
from models.organisations import AGE_MONTHS_MAX, ProviderOpen, Region, RegionOpen
from models.programmes import ServiceForm

router = APIRouter(prefix="/public", tags=["Публичный реестр поставщиков ранней помощи"])

RegionCode = Annotated[
    str,
    Path(
        min_length=1,
        max_length=32,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Код региона (см. GET /api/v1/public/regions)",
    ),
]
Municipality = Annotated[
    str | None, Query(max_length=200, description="Муниципалитет: где находится или кого обслуживает")
]
Form = Annotated[
    ServiceForm | None,
    Query(
        description="Форма работы: in_person — очно, remote — дистанционно, home — на дому, group — в группе"
    ),
]
AgeMonths = Annotated[
    int | None, Query(ge=0, le=AGE_MONTHS_MAX, description="Возраст ребёнка в месяцах (0–96)")
]
NameQuery = Annotated[
    str | None,
    Query(max_length=registry.Q_MAX, description="Часть названия (без учёта регистра; ё и е не различаются)"),
]

# Short: free places change during the day; the ETag saves the body when nothing changed.
LIST_CACHE = "public, max-age=60"
DOCUMENT_CACHE = "public, max-age=300"

_REGIONS = TypeAdapter(list[RegionOpen])
_PROVIDERS = TypeAdapter(list[ProviderOpen])
_STRINGS = TypeAdapter(list[str])


def _public_url(request: Request) -> str:
    return str(request.app.state.settings.public_url)


def _answer(
    request: Request, body: bytes, media_type: str, cache: str, filename: str | None = None
) -> Response:
    tag = registry.etag(body)
    headers = {"ETag": tag, "Cache-Control": cache}
    if filename:
        headers["Content-Disposition"] = f'inline; filename="{filename}"'
    if tag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def _provider(session: Session, region_code: str, org_id: int) -> tuple[Region, registry.PublicProvider]:
    region = registry.region_by_code(session, region_code)
    return region, registry.provider(session, region, org_id)


@router.get("/regions", response_model=list[RegionOpen], summary="Регионы с публичным реестром")
def regions(request: Request, session: SessionDep) -> Response:
    found = [registry.region_view(r, _public_url(request)) for r in registry.list_regions(session)]
    return _answer(request, _REGIONS.dump_json(found), "application/json", LIST_CACHE)


@router.get(
    "/regions/{region_code}/municipalities",
    response_model=list[str],
    summary="Муниципалитеты региона, где есть или куда выезжают организации ранней помощи (для фильтра)",
    responses=responses(404),
)
def municipalities(request: Request, region_code: RegionCode, session: SessionDep) -> Response:
    region = registry.region_by_code(session, region_code)
    names = registry.region_list(session, region).municipalities
    return _answer(request, _STRINGS.dump_json(names), "application/json", LIST_CACHE)


def _found(
    request: Request,
    session: Session,
    region_code: str,
    municipality: str | None,
    form: ServiceForm | None,
    age_months: int | None,
    q: str | None,
) -> list[ProviderOpen]:
    region = registry.region_by_code(session, region_code)
    where = registry.ProviderFilter(municipality=municipality, form=form, age_months=age_months, q=q)
    public_url = _public_url(request)
    return [registry.view(item, region, public_url) for item in registry.providers(session, region, where)]


@router.get(
    "/regions/{region_code}/providers",
    response_model=list[ProviderOpen],
    summary="Организации ранней помощи региона (без входа): поиск по муниципалитету, форме работы, возрасту",
    responses=responses(404),
)
def providers(
    request: Request,
    region_code: RegionCode,
    session: SessionDep,
    municipality: Municipality = None,
    form: Form = None,
    age_months: AgeMonths = None,
    q: NameQuery = None,
) -> Response:
    found = _found(request, session, region_code, municipality, form, age_months, q)
    return _answer(request, _PROVIDERS.dump_json(found), "application/json", LIST_CACHE)


_CSV: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {"schema": {"type": "string"}}}}}


@router.get(
    "/regions/{region_code}/providers.csv",
    summary="То же в CSV (UTF-8 с BOM, разделитель «;» — открывается в Excel)",
    response_class=Response,
    responses={**responses(404), **_CSV},
)
def providers_csv(
    request: Request,
    region_code: RegionCode,
    session: SessionDep,
    municipality: Municipality = None,
    form: Form = None,
    age_months: AgeMonths = None,
    q: NameQuery = None,
) -> Response:
    found = _found(request, session, region_code, municipality, form, age_months, q)
    response = _answer(
        request,
        registry.csv_bytes(found),
        "text/csv; charset=utf-8",
        LIST_CACHE,
        f"providers-{region_code}.csv",
    )
    response.headers["Content-Disposition"] = f'attachment; filename="providers-{region_code}.csv"'
    return response


@router.get(
    "/regions/{region_code}/providers/{org_id}",
    response_model=ProviderOpen,
    summary="Организация ранней помощи: адрес, контакты, формы работы, возраст детей, свободные места",
    responses=responses(404),
)
def provider(request: Request, region_code: RegionCode, org_id: IdParam, session: SessionDep) -> Response:
    region, org = _provider(session, region_code, org_id)
    view = registry.open_view(org, region, _public_url(request))
    return _answer(request, view.model_dump_json().encode(), "application/json", LIST_CACHE)


# --- QR codes and posters ---------------------------------------------------------------------

_SVG: dict[int | str, dict[str, Any]] = {200: {"content": {"image/svg+xml": {"schema": {"type": "string"}}}}}
_PNG: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}}
}
_PDF: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}}
}


@router.get(
    "/regions/{region_code}/qr.svg",
    summary="QR-код страницы региона в публичном реестре (SVG)",
    response_class=Response,
    responses={**responses(404), **_SVG},
)
def region_qr_svg(request: Request, region_code: RegionCode, session: SessionDep) -> Response:
    region = registry.region_by_code(session, region_code)
    url = registry.region_page(_public_url(request), region.code)
    return _answer(request, registry.qr_svg(url), "image/svg+xml", DOCUMENT_CACHE)


@router.get(
    "/regions/{region_code}/qr.png",
    summary="QR-код страницы региона в публичном реестре (PNG)",
    response_class=Response,
    responses={**responses(404), **_PNG},
)
def region_qr_png(request: Request, region_code: RegionCode, session: SessionDep) -> Response:
    region = registry.region_by_code(session, region_code)
    url = registry.region_page(_public_url(request), region.code)
    return _answer(request, registry.qr_png(url), "image/png", DOCUMENT_CACHE)


@router.get(
    "/regions/{region_code}/poster.pdf",
    summary="Плакат A4 для родителей с QR-кодом реестра региона (PDF)",
    response_class=Response,
    responses={**responses(404), **_PDF},
)
def region_poster(request: Request, region_code: RegionCode, session: SessionDep) -> Response:
    region = registry.region_by_code(session, region_code)
    url = registry.region_page(_public_url(request), region.code)
    pdf = registry.poster_pdf(region, url)
    return _answer(request, pdf, "application/pdf", DOCUMENT_CACHE, f"poster-{region.code}.pdf")


@router.get(
    "/regions/{region_code}/providers/{org_id}/qr.svg",
    summary="QR-код страницы организации в публичном реестре (SVG)",
    response_class=Response,
    responses={**responses(404), **_SVG},
)
def provider_qr_svg(
    request: Request, region_code: RegionCode, org_id: IdParam, session: SessionDep
) -> Response:
    region, _org = _provider(session, region_code, org_id)
    url = registry.provider_page(_public_url(request), region.code, org_id)
    return _answer(request, registry.qr_svg(url), "image/svg+xml", DOCUMENT_CACHE)


@router.get(
    "/regions/{region_code}/providers/{org_id}/qr.png",
    summary="QR-код страницы организации в публичном реестре (PNG)",
    response_class=Response,
    responses={**responses(404), **_PNG},
)
def provider_qr_png(
    request: Request, region_code: RegionCode, org_id: IdParam, session: SessionDep
) -> Response:
    region, _org = _provider(session, region_code, org_id)
    url = registry.provider_page(_public_url(request), region.code, org_id)
    return _answer(request, registry.qr_png(url), "image/png", DOCUMENT_CACHE)


@router.get(
    "/regions/{region_code}/providers/{org_id}/poster.pdf",
    summary="Плакат A4 для родителей с QR-кодом организации (PDF)",
    response_class=Response,
    responses={**responses(404), **_PDF},
)
def provider_poster(
    request: Request, region_code: RegionCode, org_id: IdParam, session: SessionDep
) -> Response:
    region, org = _provider(session, region_code, org_id)
    url = registry.provider_page(_public_url(request), region.code, org_id)
    pdf = registry.poster_pdf(region, url, org)
    return _answer(request, pdf, "application/pdf", DOCUMENT_CACHE, f"poster-{region.code}-{org_id}.pdf")
