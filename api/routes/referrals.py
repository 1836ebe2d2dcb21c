from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response
from sqlmodel import Session

from api.deps import Audit, AuditDep, CurrentUser, Principal, SessionDep
from api.openapi import responses
from api.services import referrals as service
from models.common import INT32_MAX, IdParam
from models.referrals import (
    MatchDecision,
    MatchDecisionIn,
    MatchDecisionPublic,
    ReferralCreate,
    ReferralPublic,
)

router = APIRouter(tags=["Направления"], responses=responses(403))


@router.post(
    "/referrals",
    response_model=ReferralPublic,
    status_code=201,
    summary="Зарегистрировать направление",
    responses={
        200: {
            "model": ReferralPublic,
            "description": "Повтор запроса с тем же Idempotency-Key: прежний ответ",
            "headers": {"Idempotent-Replayed": {"schema": {"type": "string", "enum": ["true"]}}},
        },
        **responses(409),
    },
)
def create_referral(
    body: ReferralCreate,
    response: Response,
    principal: CurrentUser,
    session: SessionDep,
    audit: AuditDep,
    idempotency_key: Annotated[str | None, Header(max_length=100)] = None,
) -> ReferralPublic:
    result = service.register(session, principal, body, idempotency_key)
    if not result.created:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    audit("create" if result.created else "read", "referral", result.row.id, result.row.child_id)
    return result.referral


@router.get("/referrals", summary="Направления (свои — для направившей организации)")
def list_referrals(
    principal: CurrentUser,
    session: SessionDep,
    audit: AuditDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=INT32_MAX)] = 0,
) -> dict[str, object]:
    rows, items, total = service.listed(session, principal, limit, offset)
    audit.many("read", "referral", [(r.id, r.child_id) for r in rows])
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get(
    "/referrals/{referral_id}",
    response_model=ReferralPublic,
    summary="Направление и его статус",
    responses=responses(404),
)
def get_referral(
    referral_id: IdParam, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> ReferralPublic:
    referral = service.visible(session, principal, referral_id)
    public = service.publish(session, principal, [referral])[0]
    audit("read", "referral", referral.id, referral.child_id)
    return public


@router.post(
    "/referrals/{referral_id}/match",
    response_model=MatchDecisionPublic,
    summary="Подтвердить или отклонить совпадение ребёнка по направлению",
    description=(
        "Для направления в статусе awaiting_match_review: сведения о ребёнке совпали с уже известным "
        "ребёнком не полностью, или случай ребёнка закрыт в другой организации. Решает организация, "
        "которая сопровождает (сопровождала) ребёнка (координатор, куратор или руководитель). "
        "confirm — направление присоединяется к открытому случаю ребёнка (или, если открытого нет, "
        "открывает случай в организации, куда было направлено); refuse — ребёнок "
        "регистрируется отдельно, со своим случаем в организации, куда было направлено."
    ),
    responses=responses(404, 409),
)
def decide_match(
    referral_id: IdParam, body: MatchDecisionIn, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> MatchDecisionPublic:
    referral = service.decide_match(session, principal, referral_id, body.decision)
    assert referral.id is not None
    audit("update", "referral_match", referral.id, referral.child_id)
    if body.decision == MatchDecision.confirm and referral.linked_to_existing:
        message = "Совпадение подтверждено: направление присоединено к открытому случаю ребёнка."
    elif body.decision == MatchDecision.confirm:
        message = (
            "Совпадение подтверждено: открытого случая у ребёнка нет, направление открыло случай "
            "в организации, куда оно было направлено."
        )
    else:
        message = (
            "Совпадение отклонено: ребёнок зарегистрирован отдельно, направление передано "
            "в организацию, куда оно было направлено."
        )
    return MatchDecisionPublic(referral_id=referral.id, decision=body.decision, message=message)


@router.get(
    "/referrals/{referral_id}/feedback",
    response_class=Response,
    summary="Документ обратной связи по направлению (PDF)",
    responses={200: {"content": {"application/pdf": {}}}, **responses(404)},
)
def get_feedback(
    referral_id: IdParam, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> Response:
    return feedback_pdf(session, principal, audit, referral_id)


def feedback_pdf(session: Session, principal: Principal, audit: Audit, referral_id: int) -> Response:
    """The feedback document as the API and the referral's page both answer it."""
    referral, pdf = service.feedback_document(session, principal, referral_id)
    audit("read", "feedback", referral.id, referral.child_id)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="feedback-{referral.id}.pdf"'},
    )
