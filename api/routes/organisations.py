"""The region's organisations: the registry every role reads, and the administrator's changes to it
(create, edit, import from CSV). The queries and rules are in api/services/organisations.py, which
the administrator's pages call too."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from api.deps import AuditDep, CurrentUser, SessionDep
from api.limits import UnsupportedMediaType
from api.openapi import responses
from api.services import organisations as service
from models.common import IdParam
from models.organisations import OrganisationPublic, OrgKind

router = APIRouter(tags=["Организации"])


@router.get(
    "/organisations",
    response_model=list[OrganisationPublic],
    summary="Организации региона (например, kind=provider — реестр организаций ранней помощи)",
)
def list_organisations(
    principal: CurrentUser, session: SessionDep, kind: OrgKind | None = None
) -> list[OrganisationPublic]:
    return [OrganisationPublic.of(o) for o in service.list_organisations(session, principal, kind=kind)]


@router.post(
    "/organisations",
    response_model=service.OrganisationSaved,
    status_code=201,
    summary="Добавить организацию в реестр региона (администратор); секрет webhook показывается один раз",
    responses=responses(403, 409),
)
def create_organisation(
    body: service.OrganisationCreate, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> service.OrganisationSaved:
    org, secret = service.create_organisation(session, principal, body)
    audit("create", "organisation", org.id, None)
    return service.OrganisationSaved(organisation=service.OrganisationAdmin.of(org), webhook_secret=secret)


@router.patch(
    # Digits only: PATCH /organisations/import is then 405 (no such method), not a 422 about org_id.
    "/organisations/{org_id:int}",
    response_model=service.OrganisationSaved,
    summary="Изменить организацию региона (администратор)",
    responses=responses(403, 404, 409),
)
def update_organisation(
    org_id: IdParam,
    body: service.OrganisationUpdate,
    principal: CurrentUser,
    session: SessionDep,
    audit: AuditDep,
) -> service.OrganisationSaved:
    org, secret = service.update_organisation(session, principal, org_id, body)
    audit("update", "organisation", org.id, None)
    return service.OrganisationSaved(organisation=service.OrganisationAdmin.of(org), webhook_secret=secret)


@router.patch(
    "/organisations/{org_id:int}/public",
    response_model=OrganisationPublic,
    summary=(
        "Изменить сведения своей организации для публичного реестра: свободные места, формы работы, "
        "часы работы (руководитель, координатор; администратор региона)"
    ),
    description=(
        "Свободные места сохраняются с датой изменения — родители видят число вместе с датой. "
        "Чужая организация — 404."
    ),
    responses=responses(403, 404),
)
def update_public_info(
    org_id: IdParam,
    body: service.PublicInfoUpdate,
    principal: CurrentUser,
    session: SessionDep,
    audit: AuditDep,
) -> OrganisationPublic:
    org = service.update_public_info(session, principal, org_id, body)
    audit("update", "organisation", org.id, None)
    return OrganisationPublic.of(org)


_CSV_MEDIA = ("text/csv",)


async def _csv_body(request: Request) -> bytes | None:
    """The raw body of a CSV upload. The route has no body model, so api/limits.check_input does not
    read this body: the service refuses control characters itself; the body size limit holds for
    every route. The media type is judged after the caller's role (a 403 comes first)."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in _CSV_MEDIA:
        return None
    return await request.body()


_IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "description": (
            "Файл CSV в кодировке UTF-8 (допускается BOM), разделитель «;» или «,»; первая строка — "
            "заголовки: " + ", ".join(f"{key} ({heading})" for key, heading, _ in service.CSV_COLUMNS)
        ),
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


@router.post(
    "/organisations/import",
    response_model=service.ImportReport,
    summary="Загрузить организации из CSV (администратор): построчный отчёт о созданных и отклонённых",
    description=(
        "Тело — сам файл (Content-Type: text/csv). Строки без ошибок создаются в одной транзакции, "
        "остальные перечислены в refused с номером строки и причиной. Управляющие символы в файле, "
        "другая кодировка или неизвестный столбец — 422, и не создаётся ничего."
    ),
    responses=responses(403),
    openapi_extra=_IMPORT_BODY,
)
def import_organisations(
    data: Annotated[bytes | None, Depends(_csv_body)],
    principal: CurrentUser,
    session: SessionDep,
    audit: AuditDep,
) -> service.ImportReport:
    service.require_admin(principal)
    if data is None:
        raise UnsupportedMediaType("Тело запроса должно быть файлом CSV (заголовок Content-Type: text/csv)")
    report, created = service.import_csv(session, principal, data)
    audit.many("create", "organisation", [(org_id, None) for org_id in created])
    return report
