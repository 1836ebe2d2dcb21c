"""The receiving organisation's door (the transition as the 2025 letter has it): a ДОО's staff list
the children coming to it and confirm an enrolment (api/services/enrolments.py)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import AuditDep, CurrentUser, SessionDep
from api.openapi import responses
from api.services import enrolments as service
from models.common import IdParam
from models.enrolments import EnrolmentConfirm, EnrolmentPublic

router = APIRouter(tags=["Поступление в ДОО"], responses=responses(403))


@router.get(
    "/enrolments",
    response_model=list[EnrolmentPublic],
    summary="Дети, поступающие в организацию (ДОО) из службы ранней помощи",
)
def list_enrolments(principal: CurrentUser, session: SessionDep, audit: AuditDep) -> list[EnrolmentPublic]:
    items = service.list_enrolments(session, principal)
    audit.many("read", "case", [(case.id, case.child_id) for case, _ in items])
    return [item for _, item in items]


@router.post(
    "/enrolments/{case_id}/confirm",
    response_model=EnrolmentPublic,
    summary="Подтвердить поступление ребёнка: начинается период адаптации",
    # 409: the child is not expected any more (already enrolled); 422: an impossible date.
    responses=responses(404, 409),
)
def confirm_enrolment(
    case_id: IdParam, body: EnrolmentConfirm, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> EnrolmentPublic:
    case = service.confirm(session, principal, case_id, body.enrolled_on)
    audit("transition", "case", case.id, case.child_id)
    return service.public(session, case)
