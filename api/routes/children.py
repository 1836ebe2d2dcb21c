from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlmodel import col, select

from api.deps import AuditDep, CurrentUser, SessionDep
from api.openapi import responses
from api.scoping import child_scope, get_child, require_provider_staff
from core.errors import Conflict, Unprocessable
from models.cases import Case
from models.children import Child, ChildPublic, LegalRepresentative, RepresentativePublic, validate_snils
from models.common import IdParam, normalise_name, today_in
from models.consents import (
    CONSENT_LABELS,
    Consent,
    ConsentIn,
    ConsentPublic,
    ConsentStatus,
    consent_date_problem,
)
from models.organisations import Region
from models.users import Role
from statemachines import FINAL_STATES

router = APIRouter(tags=["Дети"], responses=responses(403))


def _public(child: Child, representatives: list[LegalRepresentative]) -> ChildPublic:
    data = {name: getattr(child, name) for name in ChildPublic.model_fields if name != "representatives"}
    data["representatives"] = [
        RepresentativePublic.model_validate(r, from_attributes=True) for r in representatives
    ]
    return ChildPublic.model_validate(data)


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
    query = select(Child).where(child_scope(principal))
    if snils:
        try:
            query = query.where(Child.snils == validate_snils(snils))
        except ValueError as error:
            raise Unprocessable(str(error), field="snils") from error
    if q:
        words = normalise_name(q).split(" ")
        if not any(words):
            raise Unprocessable("Введите часть ФИО", field="q")
        for word in words:
            escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(col(Child.name_key).like(f"%{escaped}%", escape="\\"))
    if not q and not snils:
        raise Unprocessable("Укажите ФИО (q) или СНИЛС (snils)", field="q")
    children = list(session.exec(query.order_by(Child.name_key).limit(limit)))
    reps: dict[int, list[LegalRepresentative]] = {}
    if children:
        for rep in session.exec(
            select(LegalRepresentative).where(col(LegalRepresentative.child_id).in_([c.id for c in children]))
        ):
            reps.setdefault(rep.child_id, []).append(rep)
    audit.many("search", "child", [(c.id, c.id) for c in children])
    return [_public(c, reps.get(c.id or 0, [])) for c in children]


@router.get(
    "/children/{child_id}",
    response_model=ChildPublic,
    summary="Сведения о ребёнке",
    responses=responses(404),
)
def get_child_detail(
    child_id: IdParam, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> ChildPublic:
    child = get_child(session, principal, child_id)
    reps = list(session.exec(select(LegalRepresentative).where(LegalRepresentative.child_id == child.id)))
    audit("read", "child", child.id, child.id)
    return _public(child, reps)


def _consent_public(row: Consent) -> ConsentPublic:
    assert row.id is not None
    return ConsentPublic(
        id=row.id,
        child_id=row.child_id,
        kind=row.kind,
        kind_label=CONSENT_LABELS[row.kind],
        status=row.status,
        date=row.date,
        document_ref=row.document_ref,
        recorded_at=row.recorded_at,
    )


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
    require_provider_staff(principal, {Role.intake_coordinator, Role.curator, Role.supervisor})
    child = get_child(session, principal, child_id)
    assert child.id is not None
    # Consents belong to the child, so they steer every provider's messages and what referrers see:
    # only the provider serving the child now records a consent given (not one with an old, closed
    # case); a withdrawal, which only narrows what is shared, any provider the child is known to.
    serving = (
        body.status == ConsentStatus.withdrawn
        or session.exec(
            select(Case.id).where(
                Case.child_id == child.id,
                Case.provider_id == principal.org.id,
                col(Case.state).not_in(FINAL_STATES),
            )
        ).first()
    )
    if not serving:
        raise Conflict(
            "Согласие регистрирует организация, которая сейчас сопровождает ребёнка", field="child_id"
        )
    region = session.get(Region, child.region_id)
    assert region is not None
    today = today_in(region.timezone)  # the region's today, not the server's
    if problem := consent_date_problem(body.date, today=today, birth_date=child.birth_date):
        raise Unprocessable(problem, field="date")
    row = Consent(child_id=child.id, recorded_by_id=principal.id, **body.model_dump())
    session.add(row)
    session.flush()
    audit("create", "consent", row.id, child.id)
    return _consent_public(row)


@router.get(
    "/children/{child_id}/consents",
    response_model=list[ConsentPublic],
    summary="Согласия (вся история)",
    responses=responses(404),
)
def list_consents(
    child_id: IdParam, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> list[ConsentPublic]:
    child = get_child(session, principal, child_id)
    audit("read", "consent", None, child.id)
    rows = session.exec(
        select(Consent).where(Consent.child_id == child.id).order_by(col(Consent.date), col(Consent.id))
    )
    return [_consent_public(r) for r in rows]
