"""A case's ИПРП (individual early-help programme) with its planned services and their progress.

Read by GET /api/v1/cases/{case_id}/ipr and the case page. The case comes from api.scoping.get_case;
the caller writes the audit row.
"""

from __future__ import annotations

from sqlmodel import Session, col, func, select

from api.deps import Principal
from models.cases import Case
from models.programmes import (
    SERVICE_FORM_LABELS,
    Ipr,
    IprPublic,
    PlannedService,
    PlannedServicePublic,
    ServiceSession,
    SessionStatus,
)
from standards import load_standard
from statemachines.fire import region_of


def active_ipr(session: Session, case: Case) -> Ipr | None:
    """The case's ИПРП in force (a revision supersedes the previous one), if it has one."""
    return session.exec(
        select(Ipr).where(Ipr.case_id == case.id, Ipr.status == "active").order_by(col(Ipr.id).desc())
    ).first()


def current_ipr(session: Session, principal: Principal, case: Case) -> IprPublic | None:
    """The active ИПРП with each planned service's id, labels and sessions held/missed/planned."""
    ipr = active_ipr(session, case)
    if ipr is None:
        return None
    assert ipr.id is not None
    planned = list(
        session.exec(
            select(PlannedService).where(PlannedService.ipr_id == ipr.id).order_by(col(PlannedService.id))
        )
    )
    counts: dict[tuple[int, str], int] = {}
    if planned:
        rows = session.exec(
            select(ServiceSession.planned_service_id, ServiceSession.status, func.count())
            # By the case first (indexed): the planned-service ids alone would scan every session.
            .where(
                ServiceSession.case_id == case.id,
                col(ServiceSession.planned_service_id).in_([p.id for p in planned]),
            )
            .group_by(col(ServiceSession.planned_service_id), col(ServiceSession.status))
        ).all()
        counts = {(int(pid), str(status)): int(n) for pid, status, n in rows if pid is not None}
    standard = load_standard(region_of(session, case).code)
    roles = {r.code: r.label for r in standard.specialist_roles}
    services = []
    for p in planned:
        assert p.id is not None
        known = standard.service(p.service_code)
        services.append(
            PlannedServicePublic(
                id=p.id,
                service_code=p.service_code,
                service_label=known.label if known else p.service_code,
                specialist_role=p.specialist_role,
                specialist_role_label=roles.get(p.specialist_role, p.specialist_role),
                form=p.form,
                form_label=SERVICE_FORM_LABELS.get(p.form, str(p.form)),
                count=p.count,
                minutes=p.minutes,
                sessions_held=counts.get((p.id, SessionStatus.held), 0),
                sessions_missed=counts.get((p.id, SessionStatus.missed), 0),
                sessions_planned=counts.get((p.id, SessionStatus.planned), 0),
            )
        )
    return IprPublic(
        id=ipr.id,
        case_id=ipr.case_id,
        status=ipr.status,
        period_start=ipr.period_start,
        period_end=ipr.period_end,
        goals=list(ipr.goals),
        parent_agreed_on=ipr.parent_agreed_on,
        agreement_document_ref=ipr.agreement_document_ref,
        created_by_id=ipr.created_by_id,
        created_at=ipr.created_at,
        services=services,
    )
