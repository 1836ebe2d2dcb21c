"""The case page: the child and family, the journey as a picture, history, deadlines, deliveries,
consents, sessions, contact attempts, and a form for each event the caller may fire now.

Everything is read and changed through the services the API uses (api/services/): the case
through api.scoping.get_case, its card through cases.detail, events through the one door
(statemachines.fire, via cases.fire_event), sessions through attendance, contact attempts through
contacts. A form that fails re-renders the page with the error summary and what the user typed;
a stale version shows the fresh card.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from api.deps import Principal, SessionDep
from api.errors import validation_errors
from api.pages import case_sections
from api.pages.journey_svg import journey_svg
from api.pages.web import Form, PageAudit, PageAuditDep, PageUser, read_form, redirect, region_zone, render
from api.scoping import get_case
from api.services import attendance, contacts, programmes
from api.services import cases as service
from api.services import children as children_service
from api.services import organisations as organisations_service
from api.services import users as users_service
from api.services.disclosure import display_snils
from core.errors import Conflict, DomainError, Forbidden, NotFound, Unprocessable
from core.text import plural
from models.cases import CONTACT_CHANNEL_LABELS, Case, ContactAttemptIn, ContactChannel
from models.children import RELATION_LABELS
from models.common import IdParam, today_in, utcnow
from models.consents import CONSENT_LABELS
from models.events import ASSESSMENT_KIND_LABELS, REJECT_REASON_LABELS, AssessmentKind
from models.outbox import DELIVERY_CHANNEL_LABELS, MESSAGE_LABELS
from models.programmes import (
    NEED_OUTCOME_LABELS,
    SERVICE_FORM_LABELS,
    SESSION_STATUS_LABELS,
    STEP_SERVICES,
    WITHOUT_IPR_STATES,
    IprPublic,
    ServiceForm,
    SessionIn,
    SessionUpdate,
)
from models.users import Role, User
from standards import Standard, load_standard
from statemachines import EVENTS, FINAL_STATES, STATE_LABELS, StaleVersion
from statemachines.fire import PayloadInvalid, region_of
from statemachines.guards import RECEIVING_KINDS, age_in_months

router = APIRouter(include_in_schema=False)

# Rows of the ИПРП editor's service table: empty rows are ignored (no script adds rows).
SERVICE_ROWS = 5
# Events that are steps forward, shown open; the others (refusals, the clock stop) in a fold.
SECONDARY_EVENTS = ("reject", "suspend", "decline", "mark_lost_contact")
# Events with a free-text reason, and whether the guard requires it.
REASON_EVENTS = {"suspend": True, "decline": True, "revise_ipr": False, "mark_lost_contact": False}

DONE: dict[str, str] = {
    **{name: f"Выполнено: «{event.label}»." for name, event in EVENTS.items()},
    "session": "Занятие запланировано; семья получит уведомление.",
    "attendance": "Отметка о занятии сохранена.",
    "contact": "Попытка связаться с семьёй записана.",
    "curator": "Куратор назначен.",
    "team_add": "Специалист включён в команду случая.",
    "team_remove": "Специалист исключён из команды случая.",
    "transfer_request": "Запрос о передаче отправлен принимающей организации.",
    "transfer_withdraw": "Запрос о передаче отозван.",
    "transfer_accept": "Случай принят вашей организацией. Назначьте куратора, если он ещё не назначен.",
}
STALE = "Карточка изменена другим пользователем — вот актуальная версия. Проверьте её и повторите действие."

FAMILY_RESPONSE_LABELS = {"confirmed": "Семья подтвердила", "reschedule_requested": "Семья просит перенести"}
DELIVERY_STATUS_LABELS = {
    "sent": "Доставлено",
    "failed": "Не удалось, будет повтор",
    "undeliverable": "Нет адреса",
    "skipped": "Не отправлено",
}
EFFECT_STATUS_LABELS = {
    "pending": "Ожидает отправки",
    "done": "Выполнено",
    "failed": "Не удалось",
    "undelivered": "Не доставлено никому",
}
DEADLINE_STATUS_LABELS = {"open": "Идёт", "met": "Выполнен", "closed": "Закрыт", "expired": "Истёк"}
EVENT_NAMES = {"refer": "Направление зарегистрировано", **{n: e.label for n, e in EVENTS.items()}}
# The transfer's history rows (statemachines/transfer.py); their payload names both organisations.
EVENT_NAMES |= {
    "transfer_request": "Запрошена передача в другую организацию",
    "transfer_accept": "Случай принят другой организацией",
    "transfer_refuse": "Отказ в приёме случая",
    "transfer_withdraw": "Запрос о передаче отозван",
}
CURATOR_ROLES = (Role.curator, Role.supervisor)


@dataclass
class Problems:
    """A form's errors (field id → Russian message) and what the user typed, to show again."""

    errors: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)
    status: int = 422
    form: str | None = None  # which form failed: an event name, "session", "contact", ...
    message: str | None = None  # a 409 or a stale card: said above the card

    def keep(self, form: Form) -> None:
        for key, value in form.items:
            if key == "csrf":
                continue
            self.values.setdefault(key, value.strip())
            self.lists.setdefault(key, []).append(value.strip())


# --- reading the card -------------------------------------------------------------------------


def _visible_case(session: Session, principal: Principal, case_id: int) -> Case:
    """The case if the caller may see it; otherwise the 404 page (a role that sees no cases at all
    gets it too: a page never says that a case exists)."""
    try:
        return get_case(session, principal, case_id)
    except Forbidden as refused:
        raise NotFound("Случай не найден", field="case_id") from refused


def _age(birth: date, today: date) -> str:
    months = age_in_months(birth, today)
    years, rest = divmod(months, 12)
    parts = []
    if years:
        parts.append(f"{years} {plural(years, 'год', 'года', 'лет')}")
    if rest or not years:
        parts.append(f"{rest} {plural(rest, 'месяц', 'месяца', 'месяцев')}")
    return " ".join(parts)


def _names(session: Session, ids: set[int | None]) -> dict[int, str]:
    result: dict[int, str] = {}
    for user_id in ids:
        if user_id is not None and (user := session.get(User, user_id)) is not None:
            result[user_id] = user.full_name
    return result


def _session_choices(case: Case, ipr: IprPublic | None, standard: Standard) -> list[tuple[str, str]]:
    """What a session may be planned for now: a service of the ИПРП in force (by its id), a service
    of the journey's current step, or any of the catalogue where consultations need no ИПРП
    (attendance.check_service decides)."""
    choices: list[tuple[str, str]] = []
    if ipr is not None and case.state != "ipr_development":
        choices += [(f"planned:{s.id}", f"{s.service_label} (по ИПРП, {s.form_label})") for s in ipr.services]
    codes = (
        [s.code for s in standard.services]
        if case.state in WITHOUT_IPR_STATES
        else sorted(STEP_SERVICES.get(case.state, ()))
    )
    for code in codes:
        known = standard.service(code)
        choices.append((f"code:{code}", known.label if known else code))
    return choices


def _card(
    request: Request, session: Session, principal: Principal, case: Case, problems: Problems | None = None
) -> dict[str, Any]:
    detail = service.detail(session, principal, case)
    region = region_of(session, case)
    standard = load_standard(region.code)
    zone = region_zone(session, principal)
    # The child as the API's GET /children/{id} shows it to this caller (same service, same scope).
    shown = children_service.detail(session, principal, case.child_id)
    _, consents = children_service.consents(session, principal, case.child_id)
    sessions = attendance.list_sessions(session, principal, case)
    attempts = contacts.list_contact_attempts(session, principal, case)
    ipr = programmes.current_ipr(session, principal, case)
    staff_roles = principal.is_provider_staff and principal.org.id == case.provider_id
    staff = users_service.staff_of(session, principal, case.provider_id, None) if staff_roles else []
    curators = [u for u in staff if u.role in CURATOR_ROLES]
    receivers = (
        [o for o in organisations_service.list_organisations(session, principal) if o.kind in RECEIVING_KINDS]
        if "begin_transition" in detail.allowed_events or "enrol" in detail.allowed_events
        else []
    )
    names = _names(
        session,
        {case.curator_id}
        | {h.actor_id for h in detail.history}
        | {s.specialist_id for s in sessions}
        | {a.recorded_by_id for a in attempts},
    )
    problems = problems or Problems()
    events = [name for name in EVENTS if name in detail.allowed_events or name in detail.blocked]
    return {
        "title": f"Случай № {case.id}",
        "case": detail,
        "case_row": case,
        "child": shown,
        "snils": display_snils(shown.snils) if shown.snils else None,
        "age": _age(shown.birth_date, today_in(region.timezone)),
        "representatives": shown.representatives,
        "relation_labels": RELATION_LABELS,
        "consents": consents,
        "consent_labels": CONSENT_LABELS,
        "journey": journey_svg(case.state),
        "state_labels": STATE_LABELS,
        "suspended_from": STATE_LABELS.get(case.suspended_from or "", None),
        "curator_name": names.get(case.curator_id or 0),
        "names": names,
        "event_names": EVENT_NAMES,
        "events": events,
        "event_defs": EVENTS,
        "secondary": SECONDARY_EVENTS,
        "reason_events": REASON_EVENTS,
        "allowed": detail.allowed_events,
        "blocked": detail.blocked,
        "final": case.state in FINAL_STATES,
        "deadline_labels": DEADLINE_STATUS_LABELS,
        "effect_labels": EFFECT_STATUS_LABELS,
        "message_labels": MESSAGE_LABELS,
        "channel_names": DELIVERY_CHANNEL_LABELS,
        "delivery_labels": DELIVERY_STATUS_LABELS,
        "sessions": sessions,
        "now": utcnow(),
        "session_labels": SESSION_STATUS_LABELS,
        "family_labels": FAMILY_RESPONSE_LABELS,
        "attempts": attempts,
        "channel_labels": CONTACT_CHANNEL_LABELS,
        "ipr": ipr,
        # What the ИПРП editor starts from: the programme in force, when it is being revised.
        "programme": ipr.model_dump(mode="json") if ipr is not None else None,
        "standard": standard,
        "receivers": [(o.id, o.name) for o in receivers],
        "service_forms": list(SERVICE_FORM_LABELS.items()),
        "service_rows": range(SERVICE_ROWS),
        "session_choices": _session_choices(case, ipr, standard),
        "can_plan": staff_roles
        and case.state not in FINAL_STATES
        and case.state not in attendance.NO_SESSIONS_STATES,
        "can_mark": staff_roles,
        "can_record_contact": staff_roles and case.state not in FINAL_STATES,
        "can_assign": service.can_assign_curator(principal)
        and principal.org.id == case.provider_id
        and case.state not in FINAL_STATES,
        "staff": [(u.id, u.full_name) for u in curators],
        "outcomes": list(NEED_OUTCOME_LABELS.items()),
        "assessment_kinds": list(ASSESSMENT_KIND_LABELS.items()),
        "reject_reasons": list(REJECT_REASON_LABELS.items()),
        "channels": list(CONTACT_CHANNEL_LABELS.items()),
        "today": today_in(region.timezone).isoformat(),
        "zone_name": region.timezone,
        "errors": problems.errors,
        "values": problems.values,
        "lists": problems.lists,
        "failed_form": problems.form,
        "problem_message": problems.message,
        "tz": zone,
        # Transfer, routing, consilium, team, adaptation (api/pages/case_sections.py).
        "case_parts": case_sections.load_parts(session, principal, case),
    }


def _page(
    request: Request,
    session: Session,
    principal: Principal,
    case: Case,
    problems: Problems | None = None,
    notice: str | None = None,
) -> HTMLResponse:
    context = _card(request, session, principal, case, problems)
    context["notice"] = notice
    return render(request, "pages/cases/case.html", context, problems.status if problems else 200)


def _audit_card(audit: PageAudit, case: Case) -> None:
    """The card shows what six API reads show (case, child, consents, sessions, contact attempts,
    ИПРП): a read row for each kind, keyed by the case (the child's by the child), like the API's."""
    for entity in ("case", "child", "consent", "session", "contact_attempt", "ipr"):
        audit("read", entity, case.child_id if entity == "child" else case.id, case.child_id)


def _again(
    request: Request, session: Session, principal: Principal, case: Case, problems: Problems, audit: PageAudit
) -> HTMLResponse:
    """The card again with what was wrong in the form: a read of the card, audited as one."""
    _audit_card(audit, case)
    return _page(request, session, principal, case, problems)


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(
    request: Request,
    case_id: IdParam,
    principal: PageUser,
    session: SessionDep,
    audit: PageAuditDep,
    done: str | None = Query(default=None, max_length=40),
) -> HTMLResponse:
    case = _visible_case(session, principal, case_id)
    _audit_card(audit, case)
    return _page(request, session, principal, case, notice=DONE.get(done or ""))


# --- events -----------------------------------------------------------------------------------


def _int(form: Form, name: str, problems: Problems) -> int | None:
    raw = form.get(name)
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        problems.errors[name] = "Введите целое число"
        return None
    return int(raw)


def _version(form: Form) -> int:
    raw = form.get("version")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        raise Unprocessable("Форма без версии карточки: обновите страницу", field="version")
    return int(raw)


@dataclass
class EventInput:
    payload: dict[str, Any]
    reason: str | None
    # The form row of each service sent (empty rows are skipped), to name the field of an error.
    service_rows: list[int] = field(default_factory=list)


def _event_input(event: str, form: Form, problems: Problems) -> EventInput:
    """The event's payload and reason from its form; fields that are not even numbers are errors."""

    def get(name: str) -> str:
        return form.get(f"{event}-{name}")

    reason = get("reason") or None if event in REASON_EVENTS else None
    payload: dict[str, Any] = {}
    rows: list[int] = []
    if event == "accept":
        if (curator := _int(form, f"{event}-curator_id", problems)) is not None:
            payload["curator_id"] = curator
    elif event == "reject":
        payload = {"reason_code": get("reason_code") or None, "explanation": get("explanation")}
        if payload["reason_code"] is None:
            problems.errors[f"{event}-reason_code"] = "Выберите причину отклонения"
    elif event == "determine_need":
        payload = {"outcome": get("outcome") or None, "conclusion": get("conclusion")}
        if payload["outcome"] is None:
            problems.errors[f"{event}-outcome"] = "Выберите итог определения нуждаемости"
        if get("concluded_on"):
            payload["concluded_on"] = get("concluded_on")
        if (minutes := _int(form, f"{event}-duration_minutes", problems)) is not None:
            payload["duration_minutes"] = minutes
        # What the conclusion sets (344н): the forms ticked and the activity rows filled in.
        payload["forms"] = [f.value for f in ServiceForm if get(f"form-{f.value}") == "yes"]
        payload["activities"] = []
        for i in range(SERVICE_ROWS):
            code = get(f"activity-{i}")
            if not code:
                continue
            count = _int(form, f"{event}-count-{i}", problems)
            minutes = _int(form, f"{event}-minutes-{i}", problems)
            for name, value in (("count", count), ("minutes", minutes)):
                if value is None and f"{event}-{name}-{i}" not in problems.errors:
                    problems.errors[f"{event}-{name}-{i}"] = "Укажите число"
            payload["activities"].append(
                {"activity_code": code, "count": count or 0, "minutes": minutes or 0}
            )
    elif event == "approve_ipr":
        payload = {
            "period_start": get("period_start") or None,
            "period_end": get("period_end") or None,
            "goals": [line.strip() for line in get("goals").splitlines() if line.strip()],
            "services": [],
        }
        for name in ("period_start", "period_end"):
            if payload[name] is None:
                problems.errors[f"{event}-{name}"] = "Укажите дату"
        for i in range(SERVICE_ROWS):
            code = get(f"service-{i}")
            if not code:
                continue
            count = _int(form, f"{event}-count-{i}", problems)
            minutes = _int(form, f"{event}-minutes-{i}", problems)
            for name, value in (("count", count), ("minutes", minutes)):
                if value is None and f"{event}-{name}-{i}" not in problems.errors:
                    problems.errors[f"{event}-{name}-{i}"] = "Укажите число"
            payload["services"].append(
                {
                    "service_code": code,
                    "specialist_role": get(f"role-{i}") or None,
                    "form": get(f"form-{i}") or ServiceForm.in_person.value,
                    "count": count or 0,
                    "minutes": minutes or 0,
                }
            )
            rows.append(i)
        agreed = get("agreed") == "yes"
        if agreed or get("agreement_date"):
            payload["parent_agreement"] = {
                "agreed": agreed,
                "date": get("agreement_date") or None,
                "document_ref": get("agreement_doc") or None,
            }
            if not get("agreement_date"):
                problems.errors[f"{event}-agreement_date"] = "Укажите дату согласия родителя"
    elif event == "start_assessment":
        payload = {"kind": get("kind") or AssessmentKind.intermediate.value}
    elif event == "begin_transition":
        payload = {"destination": get("destination")}
        if (org := _int(form, f"{event}-destination_org_id", problems)) is not None:
            payload["destination_org_id"] = org
    elif event == "enrol":
        payload = {"destination": get("destination"), "enrolled_on": get("enrolled_on") or None}
        if payload["enrolled_on"] is None:
            problems.errors[f"{event}-enrolled_on"] = "Укажите дату поступления ребёнка"
        if (org := _int(form, f"{event}-destination_org_id", problems)) is not None:
            payload["destination_org_id"] = org
        if get("adaptation_ends_on"):
            payload["adaptation_ends_on"] = get("adaptation_ends_on")
    elif event == "complete":
        payload = {
            "destination": get("destination"),
            "summary": get("summary"),
            "recommendations": get("recommendations"),
        }
        if get("reason_code"):
            payload["reason_code"] = get("reason_code")
    elif event == "decline" and get("reason_code"):
        payload = {"reason_code": get("reason_code")}
    return EventInput(payload, reason, rows)


def _field_id(event: str, path: str | None, rows: list[int]) -> str:
    """The form field an API field path (`payload.services.0.count`, `reason`) names on the page."""
    if not path:
        return f"event-{event}"
    parts = path.removeprefix("payload.").split(".")
    if parts[0] == "reason":
        return f"{event}-reason"
    if parts[0] == "services":
        row = (
            rows[int(parts[1])] if len(parts) > 1 and parts[1].isdigit() and int(parts[1]) < len(rows) else 0
        )
        key = {"service_code": "service", "specialist_role": "role"}.get(parts[2] if len(parts) > 2 else "")
        return f"{event}-{key or (parts[2] if len(parts) > 2 else 'service')}-{row}"
    if parts[0] == "parent_agreement":
        sub = parts[1] if len(parts) > 1 else "agreed"
        return f"{event}-" + {"date": "agreement_date", "document_ref": "agreement_doc"}.get(sub, "agreed")
    return f"{event}-{parts[0]}"


@router.post("/cases/{case_id}/events/{event}", response_class=HTMLResponse)
async def fire_event(
    request: Request,
    case_id: IdParam,
    event: str,
    principal: PageUser,
    session: SessionDep,
    audit: PageAuditDep,
) -> Response:
    form = await read_form(request, principal)
    case = _visible_case(session, principal, case_id)
    if event not in EVENTS:
        raise NotFound("Неизвестное действие", field="event")
    problems = Problems(form=event)
    problems.keep(form)
    version = _version(form)
    given = _event_input(event, form, problems)
    if problems.errors:
        return _again(request, session, principal, case, problems, audit)
    savepoint = session.begin_nested()
    try:
        service.fire_event(
            session, principal, case, event, version=version, payload=given.payload, reason=given.reason
        )
    except StaleVersion:
        savepoint.rollback()
        session.refresh(case)
        return _again(request, session, principal, case, Problems(status=409, message=STALE), audit)
    except PayloadInvalid as invalid:
        savepoint.rollback()
        for error in validation_errors(invalid.error.errors()):
            problems.errors.setdefault(_field_id(event, error["field"], given.service_rows), error["message"])
        return _again(request, session, principal, case, problems, audit)
    except (Conflict, Unprocessable) as refused:
        savepoint.rollback()
        session.refresh(case)
        problems.status = refused.status_code
        problems.errors[_field_id(event, refused.field, given.service_rows)] = refused.message
        if isinstance(refused, Conflict):
            problems.message = refused.message
        return _again(request, session, principal, case, problems, audit)
    savepoint.commit()
    audit("transition", "case", case.id, case.child_id)
    return redirect(f"/cases/{case.id}?done={event}")


# --- sessions, attendance, contact attempts, curator -----------------------------------------


def _local_moment(day: str, clock: str, zone_name: str, problems: Problems, prefix: str) -> datetime | None:
    """A date and a time typed in the region's zone, as an aware datetime."""
    from zoneinfo import ZoneInfo

    try:
        on = date.fromisoformat(day) if day else None
    except ValueError:
        on = None
    if on is None:
        problems.errors[f"{prefix}-date"] = "Укажите дату в формате ДД.ММ.ГГГГ"
    try:
        at = time.fromisoformat(clock) if clock else None
    except ValueError:
        at = None
    if at is None:
        problems.errors[f"{prefix}-time"] = "Укажите время в формате ЧЧ:ММ"
    if on is None or at is None:
        return None
    return datetime.combine(on, at, tzinfo=ZoneInfo(zone_name))


def _refused(
    request: Request,
    session: Session,
    principal: Principal,
    case: Case,
    problems: Problems,
    error: DomainError,
    fields: dict[str | None, str],
    audit: PageAuditDep,
) -> HTMLResponse:
    target = fields.get(error.field, fields.get(None, f"form-{problems.form}"))
    problems.errors[target] = error.message
    problems.status = error.status_code if error.status_code in (409, 422) else 422
    return _again(request, session, principal, case, problems, audit)


@dataclass
class CardForm:
    """A form posted on the case card, with what answering it needs."""

    request: Request
    session: Session
    principal: Principal
    case: Case
    problems: Problems
    audit: PageAudit

    def _card(self) -> tuple[Request, Session, Principal, Case, Problems]:
        return self.request, self.session, self.principal, self.case, self.problems

    def act(
        self,
        fields: dict[str | None, str],
        action: Callable[[], object],
        *,
        audited: tuple[str, str],
        done: str,
        refusals: tuple[type[DomainError], ...] = (Conflict, Unprocessable),
        key: int | None = None,
    ) -> Response:
        """Call one service function: done (audited as `audited`, verb and entity, keyed by `key`
        or else by what the action returns), or the card again with the refusal beside its field
        (`fields`: the error's field → the form's input) and nothing written. Other errors (a 403,
        a 404) are the error page."""
        savepoint = self.session.begin_nested()
        try:
            row = action()
        except refusals as refused:
            savepoint.rollback()
            return _refused(
                self.request,
                self.session,
                self.principal,
                self.case,
                self.problems,
                refused,
                fields,
                self.audit,
            )
        savepoint.commit()
        verb, entity = audited
        self.audit(verb, entity, key if key is not None else getattr(row, "id", None), self.case.child_id)
        return redirect(f"/cases/{self.case.id}?done={done}")


@router.post("/cases/{case_id}/sessions", response_class=HTMLResponse)
async def plan_session(
    request: Request, case_id: IdParam, principal: PageUser, session: SessionDep, audit: PageAuditDep
) -> Response:
    form = await read_form(request, principal)
    case = _visible_case(session, principal, case_id)
    problems = Problems(form="session")
    problems.keep(form)
    region = region_of(session, case)
    choice = form.get("session-service")
    body: dict[str, Any] = {"form": form.get("session-form") or ServiceForm.in_person.value}
    if choice.startswith("planned:") and choice[8:].isascii() and choice[8:].isdigit() and len(choice) < 18:
        ipr = programmes.current_ipr(session, principal, case)
        planned = next((p for p in (ipr.services if ipr else []) if p.id == int(choice[8:])), None)
        if planned is None:
            problems.errors["session-service"] = "Услуга не входит в действующую ИПРП этого случая"
        else:
            body |= {"service_code": planned.service_code, "planned_service_id": planned.id}
    elif choice.startswith("code:"):
        body["service_code"] = choice[5:]
    else:
        problems.errors["session-service"] = "Выберите услугу"
    at = _local_moment(
        form.get("session-date"), form.get("session-time"), region.timezone, problems, "session"
    )
    minutes = _int(form, "session-minutes", problems)
    if minutes is not None:
        body["duration_minutes"] = minutes
    if problems.errors or at is None:
        return _again(request, session, principal, case, problems, audit)
    body["scheduled_at"] = at
    fields = {
        "service_code": "session-service",
        "planned_service_id": "session-service",
        "scheduled_at": "session-date",
        "duration_minutes": "session-minutes",
        "form": "session-form",
        None: "session-service",
    }
    try:
        parsed = SessionIn.model_validate(body)
    except ValidationError as invalid:
        for error in validation_errors(invalid.errors()):
            problems.errors.setdefault(fields.get(error["field"], "session-service"), error["message"])
        return _again(request, session, principal, case, problems, audit)
    return CardForm(request, session, principal, case, problems, audit).act(
        fields,
        lambda: attendance.plan_session(session, principal, case, parsed),
        audited=("create", "session"),
        done="session",
    )


@router.post("/cases/{case_id}/sessions/{session_id}", response_class=HTMLResponse)
async def mark_session(
    request: Request,
    case_id: IdParam,
    session_id: IdParam,
    principal: PageUser,
    session: SessionDep,
    audit: PageAuditDep,
) -> Response:
    form = await read_form(request, principal)
    case = _visible_case(session, principal, case_id)
    prefix = f"attendance-{session_id}"
    problems = Problems(form=prefix)
    problems.keep(form)
    fields: dict[str | None, str] = {
        "status": f"{prefix}-status",
        "notes": f"{prefix}-notes",
        None: f"{prefix}-status",
    }
    try:
        body = SessionUpdate.model_validate(
            {"status": form.get(f"{prefix}-status") or None, "notes": form.get(f"{prefix}-notes") or None}
        )
    except ValidationError:
        problems.errors[f"{prefix}-status"] = "Выберите итог занятия"
        return _again(request, session, principal, case, problems, audit)
    return CardForm(request, session, principal, case, problems, audit).act(
        fields,
        lambda: attendance.update_session(session, principal, case, session_id, body),
        audited=("update", "session"),
        done="attendance",
    )


@router.post("/cases/{case_id}/contact-attempts", response_class=HTMLResponse)
async def add_contact_attempt(
    request: Request, case_id: IdParam, principal: PageUser, session: SessionDep, audit: PageAuditDep
) -> Response:
    form = await read_form(request, principal)
    case = _visible_case(session, principal, case_id)
    problems = Problems(form="contact")
    problems.keep(form)
    region = region_of(session, case)
    at = _local_moment(
        form.get("contact-date"), form.get("contact-time"), region.timezone, problems, "contact"
    )
    result = form.get("contact-result")
    if result not in ("yes", "no"):
        problems.errors["contact-result"] = "Укажите, удалось ли связаться"
    fields: dict[str | None, str] = {
        "at": "contact-date",
        "channel": "contact-channel",
        "note": "contact-note",
        None: "contact-date",
    }
    if problems.errors or at is None:
        return _again(request, session, principal, case, problems, audit)
    try:
        body = ContactAttemptIn.model_validate(
            {
                "at": at,
                "channel": form.get("contact-channel") or ContactChannel.phone.value,
                "successful": result == "yes",
                "note": form.get("contact-note") or None,
            }
        )
    except ValidationError as invalid:
        for error in validation_errors(invalid.errors()):
            problems.errors.setdefault(fields.get(error["field"], "contact-date"), error["message"])
        return _again(request, session, principal, case, problems, audit)
    try:
        row = contacts.add_contact_attempt(session, principal, case, body)
    except (Conflict, Unprocessable) as refused:
        return _refused(request, session, principal, case, problems, refused, fields, audit)
    audit("create", "contact_attempt", row.id, case.child_id)
    return redirect(f"/cases/{case.id}?done=contact")


@router.post("/cases/{case_id}/curator", response_class=HTMLResponse)
async def assign_curator(
    request: Request, case_id: IdParam, principal: PageUser, session: SessionDep, audit: PageAuditDep
) -> Response:
    form = await read_form(request, principal)
    case = _visible_case(session, principal, case_id)
    problems = Problems(form="curator")
    problems.keep(form)
    version = _version(form)
    curator_id = _int(form, "curator-curator_id", problems)
    if curator_id is None and "curator-curator_id" not in problems.errors:
        problems.errors["curator-curator_id"] = "Выберите куратора"
    if problems.errors:
        return _again(request, session, principal, case, problems, audit)
    savepoint = session.begin_nested()
    try:
        service.assign_curator(session, principal, case, curator_id, version)
    except StaleVersion:
        savepoint.rollback()
        session.refresh(case)
        return _again(request, session, principal, case, Problems(status=409, message=STALE), audit)
    except (Conflict, Unprocessable) as refused:
        savepoint.rollback()
        fields: dict[str | None, str] = {None: "curator-curator_id"}
        return _refused(request, session, principal, case, problems, refused, fields, audit)
    savepoint.commit()
    audit("update", "case", case.id, case.child_id)
    return redirect(f"/cases/{case.id}?done=curator")
