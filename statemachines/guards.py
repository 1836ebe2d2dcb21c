"""Guards: each returns None when the event may proceed, or the reason (Russian) it may not."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from sqlmodel import Session, col, func, select

from models.cases import CaseHistory, ContactAttempt
from models.children import Child
from models.consents import Consent, ConsentKind, ConsentStatus
from models.users import Role, User
from statemachines.context import JourneyContext

Guard = Callable[[JourneyContext], str | None]


def current_consent(ctx: JourneyContext, kind: ConsentKind) -> ConsentStatus | None:
    row = ctx.session.exec(
        select(Consent.status)
        .where(Consent.child_id == ctx.case.child_id, Consent.kind == kind)
        .order_by(col(Consent.date).desc(), col(Consent.id).desc())
        .limit(1)
    ).first()
    return ConsentStatus(row) if row else None


def age_in_months(birth: date, on: date) -> int:
    months = (on.year - birth.year) * 12 + (on.month - birth.month)
    return months - 1 if on.day < birth.day else months


def personal_data_consent_given(ctx: JourneyContext) -> str | None:
    if current_consent(ctx, ConsentKind.personal_data) != ConsentStatus.given:
        return "Не зарегистрировано согласие законного представителя на обработку персональных данных"
    return None


def child_under_age_limit(ctx: JourneyContext) -> str | None:
    child = ctx.session.get(Child, ctx.case.child_id)
    assert child is not None
    birth = child.birth_date
    limit = ctx.standard.age.max_months_at_referral
    if age_in_months(birth, ctx.today) >= limit:
        return f"Возраст ребёнка превышает предельный по стандарту региона ({limit} мес.)"
    return None


def curator_problem(session: Session, provider_id: int, curator_id: int | None) -> str | None:
    """Why this user cannot be the case's curator, or None if they can (or none is named)."""
    if curator_id is None:
        return None
    user = session.get(User, curator_id)
    if (
        user is None
        or user.organisation_id != provider_id
        or user.role not in (Role.curator, Role.supervisor)
        or not user.is_active
    ):
        return "Куратором может быть назначен только куратор этой организации"
    return None


def curator_of_provider(ctx: JourneyContext) -> str | None:
    return curator_problem(ctx.session, ctx.case.provider_id, getattr(ctx.payload, "curator_id", None))


def conclusion_written(ctx: JourneyContext) -> str | None:
    if not ctx.payload.conclusion.strip():
        return "Не написано заключение о нуждаемости"
    return None


def ipr_has_goals(ctx: JourneyContext) -> str | None:
    if not any(goal.strip() for goal in ctx.payload.goals):
        return "В ИПРП не указаны цели"
    return None


def ipr_has_services(ctx: JourneyContext) -> str | None:
    if not ctx.payload.services:
        return "В ИПРП не указаны услуги"
    return None


def ipr_services_in_catalogue(ctx: JourneyContext) -> str | None:
    problems = []
    for service in ctx.payload.services:
        known = ctx.standard.service(service.service_code)
        if known is None:
            problems.append(f"услуги «{service.service_code}» нет в перечне стандарта")
        elif service.specialist_role and service.specialist_role not in known.specialist_roles:
            problems.append(f"услугу «{known.label}» не оказывает специалист «{service.specialist_role}»")
    return "ИПРП: " + "; ".join(problems) if problems else None


def ipr_period_valid(ctx: JourneyContext) -> str | None:
    if ctx.payload.period_end <= ctx.payload.period_start:
        return "Срок окончания ИПРП должен быть позже даты начала"
    return None


def parent_agreed_to_ipr(ctx: JourneyContext) -> str | None:
    agreement = ctx.payload.parent_agreement
    if agreement is None or not agreement.agreed:
        return "Нет согласия родителя (законного представителя) с ИПРП"
    return None


def _last_payload(ctx: JourneyContext, event: str) -> dict[str, object]:
    payload = ctx.session.exec(
        select(CaseHistory.payload)
        .where(CaseHistory.case_id == ctx.case.id, CaseHistory.event == event)
        .order_by(col(CaseHistory.id).desc())
        .limit(1)
    ).first()
    return dict(payload) if payload else {}


def transition_destination_recorded(ctx: JourneyContext) -> str | None:
    if ctx.payload.destination.strip() or _last_payload(ctx, "begin_transition").get("destination"):
        return None
    return "Не указано, куда перешёл ребёнок (ДОО или иная программа)"


def final_assessment_started(ctx: JourneyContext) -> str | None:
    if _last_payload(ctx, "start_assessment").get("kind") != "final":
        return "Завершить можно только после итоговой оценки реализации ИПРП"
    return None


def reason_given(ctx: JourneyContext) -> str | None:
    if not (ctx.reason or "").strip():
        return "Укажите причину"
    return None


def enough_failed_contacts(ctx: JourneyContext) -> str | None:
    needed = ctx.standard.contact.failed_attempts_for_lost_contact
    last_success = ctx.session.exec(
        select(func.max(ContactAttempt.at)).where(
            ContactAttempt.case_id == ctx.case.id, col(ContactAttempt.successful).is_(True)
        )
    ).one()
    failed = select(func.count()).where(
        ContactAttempt.case_id == ctx.case.id, col(ContactAttempt.successful).is_(False)
    )
    if last_success is not None:
        failed = failed.where(ContactAttempt.at > last_success)
    count = ctx.session.exec(failed).one()
    if count < needed:
        return (
            f"Связь можно признать утраченной после {needed} неудачных попыток связаться с семьёй; "
            f"зарегистрировано {count}"
        )
    return None
