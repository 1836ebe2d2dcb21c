from __future__ import annotations

from fastapi import APIRouter
from sqlmodel import col, select

from api.deps import CurrentUser, SessionDep
from models.organisations import Organisation, OrganisationPublic, OrgKind

router = APIRouter(tags=["Организации"])


@router.get(
    "/organisations",
    response_model=list[OrganisationPublic],
    summary="Организации региона (например, kind=provider — реестр организаций ранней помощи)",
)
def list_organisations(
    principal: CurrentUser, session: SessionDep, kind: OrgKind | None = None
) -> list[OrganisationPublic]:
    query = select(Organisation).where(
        Organisation.region_id == principal.org.region_id, col(Organisation.is_active).is_(True)
    )
    if kind is not None:
        query = query.where(Organisation.kind == kind)
    return [OrganisationPublic.of(o) for o in session.exec(query.order_by(Organisation.name))]
