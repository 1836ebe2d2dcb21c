"""Guards: each returns None when the event may proceed, or the reason (Russian) it may not.

Each guard names what it is about (`field`, the dotted path an API error names) and whether it
needs what the caller sends with the event (`needs_request`: the payload or the reason). A guard
that does not is a precondition: the case detail checks it before anyone presses a button, and
shows the event as blocked with the reason (statemachines.fire.available_events).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Protocol

from dateutil.relativedelta import relativedelta
from sqlmodel import Session, col, func, select

from models.cases import CaseHistory, ContactAttempt
from models.children import Child
from models.consents import Consent, ConsentKind, ConsentStatus, consent_date_problem
from models.organisations import Organisation, OrgKind
from models.programmes import SERVICE_FORM_LABELS, ServiceForm
from models.users import Role, User
from statemachines.context import JourneyContext


class Guard(Protocol):
    __name__: str
    field: str | None
    needs_request: bool

    def __call__(self, ctx: JourneyContext) -> str | None: ...


Check = Callable[[JourneyContext], str | None]


def guard(field: str | None, *, needs_request: bool = True) -> Callable[[Check], Guard]:
    """Mark a guard with the field it is about and whether it needs the request to be checked."""

    def mark(check: Check) -> Guard:
        check.field = field  # type: ignore[attr-defined]
        check.needs_request = needs_request  # type: ignore[attr-defined]
        return check  # type: ignore[return-value]

    return mark


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


@guard(None, needs_request=False)
def personal_data_consent_given(ctx: JourneyContext) -> str | None:
    if current_consent(ctx, ConsentKind.personal_data) != ConsentStatus.given:
        return "Не зарегистрировано согласие законного представителя на обработку персональных данных"
    return None


def _child(ctx: JourneyContext) -> Child:
    child = ctx.session.get(Child, ctx.case.child_id)
    assert child is not None
    return child


@guard(None, needs_request=False)
def child_under_age_limit(ctx: JourneyContext) -> str | None:
    birth = _child(ctx).birth_date
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


@guard("payload.curator_id")
def curator_of_provider(ctx: JourneyContext) -> str | None:
    return curator_problem(ctx.session, ctx.case.provider_id, getattr(ctx.payload, "curator_id", None))


@guard("payload.conclusion")
def conclusion_written(ctx: JourneyContext) -> str | None:
    if not ctx.payload.conclusion.strip():
        return "Не написано заключение о нуждаемости"
    return None


# The section of the catalogue a conclusion plans from: a programme's services, or the consultations
# without one (344н; the 2025 letter names the latter section).
OUTCOME_SECTIONS = {"ipr": "with_ipr", "consultation": "without_ipr"}


@guard("payload.forms")
def conclusion_forms_given(ctx: JourneyContext) -> str | None:
    p = ctx.payload
    if str(p.outcome) not in OUTCOME_SECTIONS:
        return "При заключении «нуждаемость не выявлена» форма услуг не указывается" if p.forms else None
    if not p.forms:
        return "В заключении не указана форма предоставления услуг"
    return None


@guard("payload.activities")
def conclusion_activities_valid(ctx: JourneyContext) -> str | None:
    """The conclusion's activities: known, of the outcome's section, within the standard's numbers,
    deliverable in one of the forms it sets (344н: kinds, number of activities, their duration)."""
    p = ctx.payload
    section = OUTCOME_SECTIONS.get(str(p.outcome))
    if section is None:
        refusal = "При заключении «нуждаемость не выявлена» мероприятия не назначаются"
        return refusal if p.activities else None
    if not p.activities:
        return "В заключении не указаны мероприятия: их вид, количество и продолжительность"
    problems = []
    seen: set[str] = set()
    forms = {str(f) for f in p.forms}
    for item in p.activities:
        known = ctx.standard.service(item.activity_code)
        service = ctx.standard.service_of(item.activity_code)
        if known is None or service is None:
            problems.append(f"мероприятия «{item.activity_code}» нет в стандарте")
            continue
        if item.activity_code in seen:
            problems.append(f"мероприятие «{known.label}» указано дважды")
        seen.add(item.activity_code)
        if service.section != section:
            where = "без разработки ИПРП" if section == "without_ipr" else "в рамках ИПРП"
            problems.append(f"мероприятие «{known.label}» не оказывается {where}")
        if item.count > known.max_count:
            most = known.max_count
            problems.append(f"«{known.label}»: не больше {most} по стандарту, указано {item.count}")
        if item.minutes > known.minutes:
            problems.append(
                f"«{known.label}»: не дольше {known.minutes} мин. по стандарту, указано {item.minutes}"
            )
        if forms and not forms & set(known.forms):
            allowed = ", ".join(SERVICE_FORM_LABELS[ServiceForm(f)] for f in known.forms)
            problems.append(f"«{known.label}» оказывается только в формах: {allowed}")
    return "Заключение: " + "; ".join(problems) if problems else None


def _exit_reason_problem(ctx: JourneyContext, state: str) -> str | None:
    code = ctx.payload.reason_code
    if code is None:
        return None
    reasons = ctx.standard.exit_reasons(state)
    if code not in {r.code for r in reasons}:
        allowed = ", ".join(f"{r.code} ({r.label})" for r in reasons)
        return f"Неизвестная причина «{code}»; допустимые: {allowed}"
    return None


@guard("payload.reason_code")
def completion_reason_known(ctx: JourneyContext) -> str | None:
    return _exit_reason_problem(ctx, "completed")


@guard("payload.reason_code")
def decline_reason_known(ctx: JourneyContext) -> str | None:
    return _exit_reason_problem(ctx, "declined")


@guard("payload.goals")
def ipr_has_goals(ctx: JourneyContext) -> str | None:
    if not any(goal.strip() for goal in ctx.payload.goals):
        return "В ИПРП не указаны цели"
    return None


@guard("payload.services")
def ipr_has_services(ctx: JourneyContext) -> str | None:
    if not ctx.payload.services:
        return "В ИПРП не указаны услуги"
    return None


@guard("payload.services")
def ipr_services_in_catalogue(ctx: JourneyContext) -> str | None:
    problems = []
    for service in ctx.payload.services:
        known = ctx.standard.service(service.service_code)
        if known is None:
            problems.append(f"услуги «{service.service_code}» нет в перечне стандарта")
        elif service.specialist_role and service.specialist_role not in known.specialist_roles:
            problems.append(f"услугу «{known.label}» не оказывает специалист «{service.specialist_role}»")
        elif service.form not in known.forms:  # the activity's forms of 344н
            allowed = ", ".join(SERVICE_FORM_LABELS[ServiceForm(f)] for f in known.forms)
            problems.append(f"услуга «{known.label}» оказывается только в формах: {allowed}")
    return "ИПРП: " + "; ".join(problems) if problems else None


@guard("payload.period_end")
def ipr_period_valid(ctx: JourneyContext) -> str | None:
    if ctx.payload.period_end <= ctx.payload.period_start:
        return "Срок окончания ИПРП должен быть позже даты начала"
    return None


def age_limit_date(birth: date, months: int) -> date:
    """The day a child born on `birth` reaches `months` of age."""
    return birth + relativedelta(months=months)


@guard("payload.period_end")
def ipr_within_age_limit(ctx: JourneyContext) -> str | None:
    """The programme ends by the day the child reaches the standard's age limit (early help is for
    children up to it; what follows is the transition)."""
    limit = ctx.standard.age.max_months_at_referral
    last = age_limit_date(_child(ctx).birth_date, limit)
    if ctx.payload.period_end > last:
        return (
            f"ИПРП должна закончиться не позже {last:%d.%m.%Y}: в этот день ребёнку исполнится"
            f" {limit} мес. (предел стандарта региона)"
        )
    return None


@guard("payload.parent_agreement")
def parent_agreed_to_ipr(ctx: JourneyContext) -> str | None:
    agreement = ctx.payload.parent_agreement
    if agreement is None or not agreement.agreed:
        return "Нет согласия родителя (законного представителя) с ИПРП"
    return None


@guard("payload.parent_agreement.date")
def parent_agreement_dated(ctx: JourneyContext) -> str | None:
    agreement = ctx.payload.parent_agreement
    if agreement is None:
        return None  # parent_agreed_to_ipr says so
    problem = consent_date_problem(agreement.date, today=ctx.today, birth_date=_child(ctx).birth_date)
    return f"Согласие родителя с ИПРП: {problem}" if problem else None


# Who may receive a child at the transition: a pre-school (ДОО) or another programme of the region.
RECEIVING_KINDS = (OrgKind.education, OrgKind.social, OrgKind.ngo)


@guard("payload.destination_org_id")
def destination_can_receive(ctx: JourneyContext) -> str | None:
    """The receiving organisation is told the child's name: only a real, active one of the case's
    region, of a kind that receives children."""
    org_id = ctx.payload.destination_org_id
    if org_id is None:
        return None
    org = ctx.session.get(Organisation, org_id)
    provider = ctx.session.get(Organisation, ctx.case.provider_id)
    assert provider is not None
    if org is None or org.region_id != provider.region_id:
        return "Принимающая организация не найдена в регионе"
    if not org.is_active:
        return "Принимающая организация не действует"
    if org.kind not in RECEIVING_KINDS:
        return (
            "Принимающей организацией может быть только образовательная организация (ДОО),"
            " организация социального обслуживания или некоммерческая организация"
        )
    return None


def _last_payload(ctx: JourneyContext, event: str) -> dict[str, object]:
    payload = ctx.session.exec(
        select(CaseHistory.payload)
        .where(CaseHistory.case_id == ctx.case.id, CaseHistory.event == event)
        .order_by(col(CaseHistory.id).desc())
        .limit(1)
    ).first()
    return dict(payload) if payload else {}


@guard("payload.destination")
def enrolment_destination_given(ctx: JourneyContext) -> str | None:
    """Where the child went: a receiving organisation or a programme in words, now or at begin_transition."""
    p = ctx.payload
    if p.destination_org_id is not None or p.destination.strip() or ctx.case.destination_org_id is not None:
        return None
    if _last_payload(ctx, "begin_transition").get("destination"):
        return None
    return "Не указано, куда поступил ребёнок (ДОО или иная программа)"


# An enrolment is a fact (or the date agreed with the pre-school): not more than this ahead of today.
ENROLMENT_DAYS_AHEAD = 31


def transition_began_on(ctx: JourneyContext) -> date | None:
    """The day (in the region's zone) the case last entered `transition`."""
    at = ctx.session.exec(
        select(CaseHistory.at)
        .where(CaseHistory.case_id == ctx.case.id, CaseHistory.to_state == "transition")
        .order_by(col(CaseHistory.id).desc())
        .limit(1)
    ).first()
    return at.astimezone(ctx.timezone).date() if at is not None else None


@guard("payload.enrolled_on")
def enrolment_date_plausible(ctx: JourneyContext) -> str | None:
    enrolled = ctx.payload.enrolled_on
    began = transition_began_on(ctx)
    if began is not None and enrolled < began:
        return f"Дата поступления не может быть раньше начала перехода ({began:%d.%m.%Y})"
    latest = ctx.today + timedelta(days=ENROLMENT_DAYS_AHEAD)
    if enrolled > latest:
        return f"Дата поступления не может быть позже {latest:%d.%m.%Y}"
    return None


@guard("payload.adaptation_ends_on")
def adaptation_ends_after_start(ctx: JourneyContext) -> str | None:
    ends = ctx.payload.adaptation_ends_on
    if ends is not None and ends <= ctx.payload.enrolled_on:
        return "Период адаптации должен закончиться позже даты поступления ребёнка"
    return None


@guard(None, needs_request=False)
def adaptation_over(ctx: JourneyContext) -> str | None:
    """The case completes when the adaptation period ends (on its last day or later)."""
    ends = ctx.case.adaptation_ends_on
    if ends is not None and ctx.today < ends:
        return f"Период адаптации ещё не закончился: он продлится до {ends:%d.%m.%Y}"
    return None


@guard(None, needs_request=False)
def final_assessment_started(ctx: JourneyContext) -> str | None:
    if _last_payload(ctx, "start_assessment").get("kind") != "final":
        return "Завершить можно только после итоговой оценки реализации ИПРП"
    return None


@guard("reason")
def reason_given(ctx: JourneyContext) -> str | None:
    if not (ctx.reason or "").strip():
        return "Укажите причину"
    return None


@guard(None, needs_request=False)
def enough_failed_contacts(ctx: JourneyContext) -> str | None:
    needed = ctx.standard.contact.failed_attempts_for_lost_contact
    # One query (the case detail runs this guard for every open case): failures after the last success.
    last_success = (
        select(func.max(ContactAttempt.at))
        .where(ContactAttempt.case_id == ctx.case.id, col(ContactAttempt.successful).is_(True))
        .scalar_subquery()
    )
    count = ctx.session.exec(
        select(func.count()).where(
            ContactAttempt.case_id == ctx.case.id,
            col(ContactAttempt.successful).is_(False),
            (last_success.is_(None)) | (col(ContactAttempt.at) > last_success),
        )
    ).one()
    if count < needed:
        return (
            f"Связь можно признать утраченной после {needed} неудачных попыток связаться с семьёй; "
            f"зарегистрировано {count}"
        )
    return None
