"""A case's multidisciplinary team and the agreements on inter-agency interaction that let another
organisation's staff join it (api/services/teams.py, api/services/agreements.py)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import AuditDep, CurrentUser, SessionDep
from api.openapi import responses
from api.scoping import get_case
from api.services import agreements, teams
from models.common import IdParam
from models.teams import AgreementIn, AgreementPublic, TeamMemberIn, TeamPublic

router = APIRouter(responses=responses(403))


@router.get(
    "/cases/{case_id}/team",
    response_model=TeamPublic,
    summary="Междисциплинарная команда случая: ведущий специалист (куратор) и участники",
    tags=["Команда случая"],
    responses=responses(404),
)
def get_team(case_id: IdParam, principal: CurrentUser, session: SessionDep, audit: AuditDep) -> TeamPublic:
    case = get_case(session, principal, case_id)
    audit("read", "team", case.id, case.child_id)
    return teams.team(session, case)


@router.post(
    "/cases/{case_id}/team",
    response_model=TeamPublic,
    status_code=201,
    summary="Включить специалиста в команду случая",
    tags=["Команда случая"],
    responses=responses(404, 409),
)
def add_team_member(
    case_id: IdParam, body: TeamMemberIn, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> TeamPublic:
    case = get_case(session, principal, case_id)
    member = teams.add_member(session, principal, case, body)
    audit("create", "team_member", member.id, case.child_id)
    return teams.team(session, case)


@router.post(
    "/cases/{case_id}/team/{member_id}/remove",
    response_model=TeamPublic,
    summary="Исключить участника из команды случая",
    tags=["Команда случая"],
    responses=responses(404, 409),
)
def remove_team_member(
    case_id: IdParam, member_id: IdParam, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> TeamPublic:
    case = get_case(session, principal, case_id)
    member = teams.remove_member(session, principal, case, member_id)
    audit("update", "team_member", member.id, case.child_id)
    return teams.team(session, case)


@router.get(
    "/agreements",
    response_model=list[AgreementPublic],
    summary="Соглашения о межведомственном взаимодействии",
    tags=["Соглашения"],
)
def list_agreements(
    principal: CurrentUser, session: SessionDep, provider_id: IdParam | None = None
) -> list[AgreementPublic]:
    return agreements.list_agreements(session, principal, provider_id=provider_id)


@router.post(
    "/agreements",
    response_model=AgreementPublic,
    status_code=201,
    summary="Зарегистрировать соглашение о межведомственном взаимодействии",
    tags=["Соглашения"],
)
def create_agreement(
    body: AgreementIn, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> AgreementPublic:
    agreement = agreements.create_agreement(session, principal, body)
    audit("create", "agreement", agreement.id, None)
    return agreement


@router.post(
    "/agreements/{agreement_id}/end",
    response_model=AgreementPublic,
    summary="Прекратить соглашение (его участники выходят из команд случаев организации)",
    tags=["Соглашения"],
    responses=responses(404, 409),
)
def end_agreement(
    agreement_id: IdParam, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> AgreementPublic:
    agreement = agreements.end_agreement(session, principal, agreement_id)
    audit("update", "agreement", agreement.id, None)
    return agreement
