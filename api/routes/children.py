from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import AuditDep, CurrentUser, SessionDep
from api.openapi import responses
from api.services import children as service
from models.children import ChildPublic
from models.common import IdParam
from models.consents import ConsentIn, ConsentPublic

router = APIRouter(tags=["Дети"], responses=responses(403))


@router.get(
    "/children",
    response_model=list[ChildPublic],
    summary="Поиск ребёнка по ФИО (без учёта регистра, ё = е) или СНИЛС",
)
def search_children(
    principal: CurrentUser,
    session: SessionDep,
    audit: AuditDep,
    q: Annotated[str | None, Query(max_length=200, description="Часть ФИО")] = None,
    snils: Annotated[str | None, Query(max_length=14)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> list[ChildPublic]:
    children, _ = service.search(session, principal, q=q, snils=snils, limit=limit)
    reps = service.representatives(session, children)
    audit.many("search", "child", [(c.id, c.id) for c in children])
    return [service.public(principal, c, reps.get(c.id or 0, [])) for c in children]


@router.get(
    "/children/{child_id}",
    response_model=ChildPublic,
    summary="Сведения о ребёнке",
    responses=responses(404),
)
def get_child_detail(
    child_id: IdParam, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> ChildPublic:
    child = service.detail(session, principal, child_id)
    audit("read", "child", child.id, child.id)
    return child


@router.post(
    "/children/{child_id}/consents",
    response_model=ConsentPublic,
    status_code=201,
    summary="Зарегистрировать согласие или его отзыв",
    responses=responses(404, 409),
)
def add_consent(
    child_id: IdParam, body: ConsentIn, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> ConsentPublic:
    row = service.add_consent(session, principal, child_id, body)
    audit("create", "consent", row.id, row.child_id)
    return service.consent_public(row)


@router.get(
    "/children/{child_id}/consents",
    response_model=list[ConsentPublic],
    summary="Согласия (вся история)",
    responses=responses(404),
)
def list_consents(
    child_id: IdParam, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> list[ConsentPublic]:
    child, rows = service.consents(session, principal, child_id)
    audit("read", "consent", None, child.id)
    return rows
