"""A generated region: providers, referrers and thousands of journeys with known outcomes.

`generate(engine, n=...)` writes, in bulk, the rows a journey writes — the case, its history rows
(the same events, states and payloads as `statemachines.fire` and the workflows write), the need
conclusion, the ИПРП with its services, sessions, the standard's deadlines (opened, paused, moved and
closed as statemachines/deadlines.py does it), transfers, routings and contact attempts — and returns
the `Plan`: the same journeys as Python objects, from which tests count what the statistics must say
(without SQL). Going through the API would take minutes for thousands of journeys;
tests/test_statistics.py drives a few journeys through the real door and checks that this module
writes the same shapes for the same paths, so it cannot drift from the real journey.

Used by the statistics' and the reports' tests and by bench/reports.py (n=100 000).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta
from pydantic import BaseModel
from sqlalchemy import Engine, func, insert, select, text
from sqlmodel import Session, SQLModel

from api.demo import seed_region
from core.workdays import WorkCalendar, due_dates, end_of_day, start_of_work
from models.cases import Case, CaseHistory, ContactAttempt
from models.children import Child
from models.common import normalise_name
from models.consents import Consent, ConsentKind, ConsentStatus
from models.deadlines import Deadline, DeadlineStatus
from models.events import (
    AcceptPayload,
    ApproveIprPayload,
    AssessmentKind,
    CompletePayload,
    ConclusionActivityIn,
    DeclinePayload,
    DetermineNeedPayload,
    EmptyPayload,
    EnrolPayload,
    ParentAgreement,
    RejectPayload,
    RejectReason,
    StartAssessmentPayload,
    TransitionPayload,
)
from models.organisations import Organisation, OrgKind, Region
from models.programmes import (
    Ipr,
    NeedConclusion,
    NeedOutcome,
    PlannedService,
    PlannedServiceIn,
    ServiceForm,
    ServiceSession,
    SessionStatus,
)
from models.referrals import Referral
from models.routings import Routing as RoutingRow
from models.routings import RoutingKind, RoutingOutcome
from models.transfers import Transfer
from models.users import Role, User
from standards import Standard, TimerDef, load_standard
from statemachines import child_facts
from statemachines.deadlines import ENDINGS_THAT_CANCEL, FIXED_ANCHORS, working_days_lost
from statemachines.journey import FINAL_STATES

# Referrals from 2024-01-01 over two years; nothing happens after NOW (the plan's "today").
FIRST_DAY = date(2024, 1, 1)
DAYS = 731
NOW = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)

# The referring organisations' kinds (None: the parents came themselves) and their weights.
SOURCES: list[tuple[str | None, int]] = [
    ("health", 40),
    ("social", 12),
    ("education", 8),
    ("ngo", 4),
    ("pmpk", 6),
    ("mse", 5),
    ("orphanage", 3),
    (None, 22),
]
MUNICIPALITIES = ["Центральный район", "Северный район", "Южный район", "Заречный район"]
LAST_NAMES = ["Иванова", "Смирнова", "Кузнецова", "Попова", "Соколова", "Лебедева", "Козлова", "Новикова"]
FIRST_NAMES = ["Анна", "Мария", "Алёна", "Дарья", "Полина", "Ксения", "Варвара", "Ева"]
# Paths and their weights: where each journey goes (see _journey).
PATHS: list[tuple[str, int]] = [
    ("waiting", 3),  # still referred
    ("rejected", 7),
    ("declined_early", 4),  # the family refuses during need determination
    ("in_determination", 3),  # accepted, need not yet determined
    ("no_need", 12),
    ("consultation", 19),
    ("ipr", 52),
]
PROVIDER_NAMES = [
    "ГБУ «Центр ранней помощи „Первые шаги“»",
    "Служба ранней помощи ГБУ «Реабилитационный центр „Надежда“»",
    "Служба ранней помощи МБДОУ «Детский сад № 5»",
    "АНО «Ранняя помощь „Росток“»",
    "Служба ранней помощи ГБУ «Центр „Семья“»",
    "ГБУ «Центр психолого-педагогической помощи „Радуга“»",
]
SESSION_STATUSES = [
    (SessionStatus.held, 72),
    (SessionStatus.missed, 14),
    (SessionStatus.cancelled, 9),
    (SessionStatus.planned, 5),
]
IPR_SERVICES = ["daily_functioning", "communication_development", "cognitive_development", "family_support"]


@dataclass(slots=True)
class PlanEvent:
    event: str
    from_state: str | None
    to_state: str
    at: datetime
    payload: dict[str, Any]
    reason: str | None = None
    actor_id: int | None = None


@dataclass(slots=True)
class PlanDeadline:
    id: int
    timer: str
    label: str
    action: str
    event: str | None
    provider_id: int
    status: str
    due_at: datetime
    warn_at: datetime | None
    opened_at: datetime
    closed_at: datetime | None = None
    paused_at: datetime | None = None
    warned_at: datetime | None = None
    expired_at: datetime | None = None


@dataclass(slots=True)
class PlanConclusion:
    outcome: str
    concluded_on: date
    forms: list[str]
    activities: list[dict[str, Any]]


@dataclass(slots=True)
class PlanIpr:
    id: int
    approved_at: datetime
    period_start: date
    period_end: date
    services: list[PlannedServiceIn]
    status: str = "active"


@dataclass(slots=True)
class PlanSession:
    service_code: str
    form: str
    status: str
    scheduled_at: datetime


@dataclass(slots=True)
class PlanTransfer:
    id: int
    from_provider_id: int
    to_provider_id: int
    status: str
    requested_at: datetime
    answered_at: datetime | None


@dataclass(slots=True)
class PlanRouting:
    id: int
    provider_id: int
    target_org_id: int
    kind: str
    status: str
    sent_at: datetime
    due_at: datetime
    deadline_id: int
    answered_at: datetime | None = None
    outcome_code: str | None = None


@dataclass(slots=True)
class Journey:
    """One child's journey as planned, and written."""

    case_id: int
    child_id: int
    referral_id: int
    path: str
    birth_date: date
    municipality: str
    criteria: list[str]
    referral_date: date
    referring_org_id: int | None
    referring_kind: str | None  # the referrer's organisation kind; None for the parents themselves
    referral_provider_id: int  # the provider the referral was addressed to
    provider_id: int  # the provider holding the case now (changed by an accepted transfer)
    curator_id: int
    state: str = "referred"
    suspended_from: str | None = None
    version: int = 1
    destination_org_id: int | None = None
    adaptation_starts_on: date | None = None
    adaptation_ends_on: date | None = None
    opened_at: datetime = NOW
    updated_at: datetime = NOW
    closed_at: datetime | None = None
    history: list[PlanEvent] = field(default_factory=list)
    conclusions: list[PlanConclusion] = field(default_factory=list)
    iprs: list[PlanIpr] = field(default_factory=list)
    sessions: list[PlanSession] = field(default_factory=list)
    deadlines: list[PlanDeadline] = field(default_factory=list)
    transfers: list[PlanTransfer] = field(default_factory=list)
    routings: list[PlanRouting] = field(default_factory=list)
    contacts: list[tuple[datetime, bool]] = field(default_factory=list)

    def events(self, name: str) -> list[PlanEvent]:
        return [e for e in self.history if e.event == name]


@dataclass
class Plan:
    region_id: int
    region_code: str
    timezone: str
    provider_ids: list[int]
    referrer_ids: dict[str, int]  # organisation kind → the referring organisation
    org_kinds: dict[int, str]  # every organisation of the region → its kind
    user_ids: dict[str, int]  # the seeded region's logins (analyst, rrmc, head...) → ids
    first_day: date
    last_day: date
    now: datetime
    journeys: list[Journey]


class _Ids:
    """Ids handed out before the bulk insert: the rows refer to each other."""

    def __init__(self, session: Session, tables: list[type[SQLModel]]) -> None:
        self.next: dict[str, int] = {}
        for table in tables:
            name = str(table.__tablename__)
            top = session.execute(select(func.max(table.id))).scalar()  # type: ignore[attr-defined]
            self.next[name] = int(top or 0) + 1

    def take(self, table: type[SQLModel]) -> int:
        name = str(table.__tablename__)
        value = self.next[name]
        self.next[name] = value + 1
        return value


def _dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")


class _Simulator:
    """Fires a journey's events in Python as statemachines.fire would: the history row, the case's
    columns, and the deadlines of the standard (statemachines/deadlines.py on_transition)."""

    def __init__(self, standard: Standard, zone: ZoneInfo, ids: _Ids, orgs: dict[int, Organisation]) -> None:
        self.standard = standard
        self.zone = zone
        self.calendar = WorkCalendar(standard.calendar)
        self.ids = ids
        self.orgs = orgs

    # --- the journey ----------------------------------------------------------------------------

    def open(self, j: Journey, at: datetime) -> None:
        j.opened_at = j.updated_at = at
        j.history.append(PlanEvent("refer", None, "referred", at, {}, actor_id=j.curator_id))
        self._deadlines(j, None, "referred", at)

    def fire(
        self, j: Journey, event: str, dest: str, at: datetime, payload: BaseModel, reason: str | None = None
    ) -> None:
        source = j.state
        j.state = dest
        j.version += 1
        j.updated_at = at
        if dest in FINAL_STATES:
            j.closed_at = at
        j.history.append(PlanEvent(event, source, dest, at, _dump(payload), reason, j.curator_id))
        self._deadlines(j, source, dest, at)

    def _deadlines(self, j: Journey, source: str | None, dest: str, now: datetime) -> None:
        open_rows = [d for d in j.deadlines if d.status == DeadlineStatus.open]
        workflow_rows = [d for d in open_rows if "." in d.timer]
        open_rows = [d for d in open_rows if "." not in d.timer]
        if dest in FINAL_STATES:
            for row in workflow_rows:
                row.status, row.closed_at, row.paused_at = DeadlineStatus.cancelled, now, None
        if dest == "suspended":
            for row in open_rows:
                row.paused_at = now
            return
        if source == "suspended":
            for row in open_rows:
                if row.paused_at is not None:
                    self._resume(row, now)
        running = {row.timer for row in open_rows}
        for row in open_rows:
            timer = self.standard.timer(row.timer)
            if timer is not None and dest in timer.states:
                continue
            if dest in ENDINGS_THAT_CANCEL:
                row.status = DeadlineStatus.cancelled
            elif timer is not None and timer.anchor == "adaptation_end":
                row.status = DeadlineStatus.met
            else:
                row.status = DeadlineStatus.met if now <= row.due_at else DeadlineStatus.missed
            row.closed_at, row.paused_at = now, None
            running.discard(row.timer)
        today = now.astimezone(self.zone).date()
        for timer in self.standard.timers:
            if dest not in timer.states or timer.name in running:
                continue
            due, warn = due_dates(timer, self._anchor(j, timer, today), self.calendar)
            j.deadlines.append(
                PlanDeadline(
                    id=self.ids.take(Deadline),
                    timer=timer.name,
                    label=timer.label,
                    action=timer.on_expiry,
                    event=timer.event,
                    provider_id=j.provider_id,
                    status=DeadlineStatus.open,
                    due_at=end_of_day(due, self.zone),
                    warn_at=start_of_work(warn, self.zone) if warn else None,
                    opened_at=now,
                )
            )

    def _anchor(self, j: Journey, timer: TimerDef, today: date) -> date:
        if timer.anchor == "adaptation_end":
            return j.adaptation_ends_on or today
        if timer.anchor == "birth_date":
            return j.birth_date
        if timer.anchor == "referral_date":
            return j.referral_date
        return today

    def _resume(self, row: PlanDeadline, now: datetime) -> None:
        assert row.paused_at is not None
        timer = self.standard.timer(row.timer)
        if timer is None or timer.anchor not in FIXED_ANCHORS:
            zone = self.zone
            lost = working_days_lost(
                self.calendar, row.paused_at.astimezone(zone).date(), now.astimezone(zone).date()
            )
            if lost:
                row.due_at = end_of_day(
                    self.calendar.add_working_days(row.due_at.astimezone(zone).date(), lost), zone
                )
                if row.warn_at is not None:
                    warn_day = self.calendar.add_working_days(row.warn_at.astimezone(zone).date(), lost)
                    row.warn_at = start_of_work(warn_day, zone)
        row.paused_at = None

    # --- the workflows beside it (statemachines/workflows.py) ---------------------------------

    def workflow_event(
        self, j: Journey, event: str, at: datetime, payload: dict[str, Any], reason: str | None = None
    ) -> None:
        j.history.append(PlanEvent(event, j.state, j.state, at, payload, reason, j.curator_id))

    def workflow_deadline(self, j: Journey, name: str, provider_id: int, at: datetime) -> PlanDeadline:
        workflow, _, timer_name = name.partition(".")
        timer = getattr(getattr(self.standard.workflows, workflow), timer_name)
        due, warn = due_dates(cast(Any, timer), at.astimezone(self.zone).date(), self.calendar)
        row = PlanDeadline(
            id=self.ids.take(Deadline),
            timer=name,
            label=timer.label,
            action=timer.on_expiry,
            event=None,
            provider_id=provider_id,
            status=DeadlineStatus.open,
            due_at=end_of_day(due, self.zone),
            warn_at=start_of_work(warn, self.zone) if warn else None,
            opened_at=at,
        )
        j.deadlines.append(row)
        return row

    def transfer_names(self, transfer: PlanTransfer) -> dict[str, Any]:
        source, target = self.orgs[transfer.from_provider_id], self.orgs[transfer.to_provider_id]
        return {
            "transfer_id": transfer.id,
            "from_provider_id": source.id,
            "from_provider_name": source.name,
            "to_provider_id": target.id,
            "to_provider_name": target.name,
        }


class _Clock:
    """Moments of a journey: working hours in the region, strictly increasing, never after `until`."""

    def __init__(self, rng: random.Random, zone: ZoneInfo, start: date, until: datetime) -> None:
        self.rng = rng
        self.zone = zone
        self.until = until
        self.last = datetime.combine(start, time(9, 0), tzinfo=zone).astimezone(UTC)

    def after(self, low: int, high: int) -> datetime | None:
        """A moment `low`..`high` days after the last one (None when it would be after `until`)."""
        day = self.last.astimezone(self.zone).date() + timedelta(days=self.rng.randint(low, high))
        minute = self.rng.randint(9 * 60 + 5, 17 * 60 + 50)
        moment = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=self.zone).astimezone(UTC)
        moment = max(moment, self.last + timedelta(minutes=1))
        if moment > self.until:
            return None
        self.last = moment
        return moment


def _weighted(rng: random.Random, choices: list[tuple[Any, int]]) -> Any:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


@dataclass
class _World:
    standard: Standard
    zone: ZoneInfo
    rng: random.Random
    sim: _Simulator
    ids: _Ids
    providers: list[int]
    curators: dict[int, int]  # provider → curator user
    referrers: dict[str, int]
    destinations: list[int]  # ДОО of the region
    routing_targets: list[int]
    until: datetime
    first_day: date
    days: int


def _journey(w: _World, index: int, child_id: int) -> Journey:
    rng = w.rng
    referral_date = w.first_day + timedelta(days=rng.randrange(w.days))
    birth = referral_date - timedelta(days=rng.randint(30, 900))
    kind = _weighted(rng, SOURCES)
    provider = rng.choice(w.providers)
    criteria = rng.sample([c.code for c in w.standard.criteria], k=rng.choice([1, 1, 1, 2]))
    if kind is None and "parental_concern" not in criteria:
        criteria = ["parental_concern", *criteria[:1]]
    j = Journey(
        case_id=w.ids.take(Case),
        child_id=child_id,
        referral_id=w.ids.take(Referral),
        path=_weighted(rng, PATHS),
        birth_date=birth,
        municipality=rng.choice(MUNICIPALITIES),
        criteria=criteria,
        referral_date=referral_date,
        referring_org_id=w.referrers[kind] if kind else None,
        referring_kind=kind,
        referral_provider_id=provider,
        provider_id=provider,
        curator_id=w.curators[provider],
    )
    clock = _Clock(rng, w.zone, referral_date, w.until)
    first = clock.after(0, 0)
    if first is None:
        first = clock.last
    w.sim.open(j, first)
    _walk(w, j, clock)
    return j


def _walk(w: _World, j: Journey, clock: _Clock) -> None:
    """Take the journey along its path until it ends or `until` comes."""
    rng, sim = w.rng, w.sim
    if j.path == "waiting":
        return
    if j.path == "rejected":
        if at := clock.after(1, 6):
            reason = rng.choice(list(RejectReason))
            sim.fire(j, "reject", "rejected", at, RejectPayload(reason_code=reason, explanation=""))
        return
    at = clock.after(1, 6)
    if at is None:
        return
    sim.fire(j, "accept", "need_determination", at, AcceptPayload(curator_id=j.curator_id))
    if j.path == "in_determination":
        return
    if j.path == "declined_early":
        if at := clock.after(2, 15):
            _decline(w, j, at)
        return
    at = clock.after(3, 20)
    if at is None:
        return
    outcome = {"no_need": NeedOutcome.no_need, "consultation": NeedOutcome.consultation}.get(
        j.path, NeedOutcome.ipr
    )
    _determine(w, j, at, outcome)
    if outcome == NeedOutcome.no_need:
        return
    if outcome == NeedOutcome.consultation:
        end = clock.after(20, 120)
        _sessions(w, j, at, end or w.until, ["development_counselling", "transition_counselling"])
        if end is not None and rng.random() < 0.75:
            sim.fire(j, "complete", "completed", end, CompletePayload(reason_code="consultations_given"))
        return
    _ipr_path(w, j, clock)


def _determine(w: _World, j: Journey, at: datetime, outcome: NeedOutcome) -> None:
    concluded_on = at.astimezone(w.zone).date()
    forms: list[ServiceForm] = []
    activities: list[ConclusionActivityIn] = []
    if outcome != NeedOutcome.no_need:
        forms = w.rng.sample(list(ServiceForm)[:3], k=w.rng.randint(1, 2))
        code = "development_counselling" if outcome == NeedOutcome.consultation else "daily_functioning"
        activities = [ConclusionActivityIn(activity_code=code, count=w.rng.randint(2, 6), minutes=60)]
    payload = DetermineNeedPayload(
        outcome=outcome,
        conclusion="Заключение о нуждаемости",
        concluded_on=concluded_on,
        duration_minutes=90,
        forms=forms,
        activities=activities,
    )
    dest = {NeedOutcome.ipr: "ipr_development", NeedOutcome.consultation: "consultation"}.get(
        outcome, "no_need"
    )
    # The determination itself is a session of the need-determination step, held that day.
    j.sessions.append(
        PlanSession(
            "need_determination",
            ServiceForm.in_person.value,
            SessionStatus.held.value,
            at - timedelta(minutes=1),
        )
    )
    w.sim.fire(j, "determine_need", dest, at, payload)
    j.conclusions.append(
        PlanConclusion(
            outcome.value, concluded_on, [f.value for f in forms], [a.model_dump() for a in activities]
        )
    )


def _approve(w: _World, j: Journey, at: datetime) -> None:
    day = at.astimezone(w.zone).date()
    services = [
        PlannedServiceIn(
            service_code=code, form=w.rng.choice(list(ServiceForm)), count=w.rng.randint(4, 24), minutes=60
        )
        for code in w.rng.sample(IPR_SERVICES, k=w.rng.randint(1, 3))
    ]
    payload = ApproveIprPayload(
        period_start=day,
        period_end=day + relativedelta(months=6),
        goals=["Развитие общения со взрослыми и детьми"],
        services=services,
        parent_agreement=ParentAgreement(agreed=True, date=day, document_ref="Согласие родителя"),
    )
    w.sim.fire(j, "approve_ipr", "ipr_implementation", at, payload)
    for ipr in j.iprs:
        ipr.status = "superseded"
    j.iprs.append(PlanIpr(w.ids.take(Ipr), at, day, day + relativedelta(months=6), services))


def _ipr_path(w: _World, j: Journey, clock: _Clock) -> None:
    rng, sim = w.rng, w.sim
    if rng.random() < 0.05:
        return  # the programme is still being written
    at = clock.after(5, 35)
    if at is None:
        return
    _approve(w, j, at)
    begun = at
    # The programme's months: sessions, sometimes a suspension, a transfer, routings, failed calls.
    if rng.random() < 0.15 and (at := clock.after(10, 60)):
        sim.fire(j, "suspend", "suspended", at, EmptyPayload(), reason="Болезнь ребёнка")
        if rng.random() < 0.2:
            return  # still suspended
        if (at := clock.after(5, 40)) is None:
            return
        sim.fire(j, "resume", "ipr_implementation", at, EmptyPayload())
    if rng.random() < 0.08 and len(w.providers) > 1 and not _transfer(w, j, clock):
        return
    for _ in range(rng.choice([0, 0, 0, 1, 1, 2])):
        if not _routing(w, j, clock):
            return
    ending = _weighted(
        rng,
        [("lost", 7), ("declined", 5), ("open", 14), ("assessment", 22), ("transition", 44), ("revise", 8)],
    )
    if ending == "lost":
        for _ in range(w.standard.contact.failed_attempts_for_lost_contact):
            if (at := clock.after(2, 10)) is None:
                _sessions(w, j, begun, w.until, IPR_SERVICES)
                return
            j.contacts.append((at, False))
        _sessions(w, j, begun, at, IPR_SERVICES)
        if at := clock.after(1, 5):
            sim.fire(j, "mark_lost_contact", "lost_contact", at, EmptyPayload())
        return
    end = clock.after(60, 240)
    _sessions(w, j, begun, end or w.until, IPR_SERVICES)
    if end is None or ending == "open":
        return
    if rng.random() < 0.1:
        j.contacts.append((end - timedelta(days=3), False))
    if ending == "declined":
        _decline(w, j, end)
        return
    if ending == "revise":
        sim.fire(
            j,
            "start_assessment",
            "ipr_assessment",
            end,
            StartAssessmentPayload(kind=AssessmentKind.intermediate),
        )
        if (at := clock.after(3, 15)) is None:
            return
        sim.fire(j, "revise_ipr", "ipr_development", at, EmptyPayload())
        if (at := clock.after(3, 20)) is None:
            return
        _approve(w, j, at)
        return
    if ending == "assessment":
        sim.fire(
            j, "start_assessment", "ipr_assessment", end, StartAssessmentPayload(kind=AssessmentKind.final)
        )
        if at := clock.after(3, 25):
            reason = rng.choice(["goals_achieved", "goals_achieved", "moved_away", "other"])
            sim.fire(j, "complete", "completed", at, CompletePayload(reason_code=reason))
        return
    _transition(w, j, end, clock)


def _transition(w: _World, j: Journey, at: datetime, clock: _Clock) -> None:
    rng, sim = w.rng, w.sim
    to_preschool = rng.random() < 0.8
    org_id = rng.choice(w.destinations) if to_preschool else None
    words = "" if to_preschool else "Реабилитационная программа центра «Надежда»"
    sim.fire(
        j,
        "begin_transition",
        "transition",
        at,
        TransitionPayload(destination=words, destination_org_id=org_id),
    )
    j.destination_org_id = org_id
    came = clock.after(14, 80)
    if came is None:
        _sessions(w, j, at, w.until, ["transition_counselling"])
        return
    _sessions(w, j, at, came, ["transition_counselling"])
    at = came
    enrolled = at.astimezone(w.zone).date() - timedelta(days=rng.randint(0, 3))
    ends = enrolled + relativedelta(months=w.standard.adaptation.length_months)
    destination = w.sim.orgs[org_id].name if org_id is not None else words
    payload = EnrolPayload(
        destination_org_id=org_id, destination=destination, enrolled_on=enrolled, adaptation_ends_on=ends
    )
    j.adaptation_starts_on, j.adaptation_ends_on = enrolled, ends
    sim.fire(j, "enrol", "adaptation", at, payload)
    if rng.random() < 0.1:
        return  # still adapting when the plan ends
    complete_on = ends + timedelta(days=rng.randint(0, 2))
    done = datetime.combine(complete_on, time(9, 30), tzinfo=w.zone).astimezone(UTC)
    _sessions(w, j, at, min(done, w.until), ["adaptation_parent_counselling", "adaptation_doo_counselling"])
    if done > w.until:
        return
    clock.last = max(clock.last, done)
    reason = "preschool" if org_id is not None else "other_programme"
    sim.fire(j, "complete", "completed", done, CompletePayload(reason_code=reason))


def _decline(w: _World, j: Journey, at: datetime) -> None:
    reason = w.rng.choice([r.code for r in w.standard.exit_reasons("declined")])
    w.sim.fire(j, "decline", "declined", at, DeclinePayload(reason_code=reason), reason="Семья отказалась")


def _transfer(w: _World, j: Journey, clock: _Clock) -> bool:
    """A transfer request and its answer; False when the plan ended in between."""
    rng, sim = w.rng, w.sim
    at = clock.after(5, 40)
    if at is None:
        return False
    target = rng.choice([p for p in w.providers if p != j.provider_id])
    transfer = PlanTransfer(w.ids.take(Transfer), j.provider_id, target, "requested", at, None)
    j.transfers.append(transfer)
    deadline = sim.workflow_deadline(j, "transfer.answer", target, at)
    names = sim.transfer_names(transfer)
    sim.workflow_event(j, "transfer_request", at, names, reason="Семья переехала")
    answer = clock.after(1, 9)
    if answer is None:
        return False
    status = _weighted(rng, [("accepted", 70), ("refused", 20), ("withdrawn", 10)])
    transfer.status, transfer.answered_at = status, answer
    if status == "withdrawn":
        deadline.status = DeadlineStatus.cancelled
    else:
        deadline.status = DeadlineStatus.met if answer <= deadline.due_at else DeadlineStatus.missed
    deadline.closed_at = answer
    event = {"accepted": "accept", "refused": "refuse", "withdrawn": "withdraw"}[status]
    if status == "accepted":
        curator = w.curators[target]
        sim.workflow_event(j, "transfer_accept", answer, names | {"curator_id": curator})
        j.version += 1
        j.provider_id, j.curator_id = target, curator
        for row in j.deadlines:
            if row.status == DeadlineStatus.open:
                row.provider_id = target
    else:
        reason = "Нет свободных мест" if status == "refused" else None
        sim.workflow_event(j, f"transfer_{event}", answer, names, reason=reason)
    j.updated_at = answer
    return True


def _routing(w: _World, j: Journey, clock: _Clock) -> bool:
    """A routing sent, then answered (in time or late), left to expire, or cancelled."""
    rng, sim = w.rng, w.sim
    at = clock.after(3, 30)
    if at is None:
        return False
    deadline = sim.workflow_deadline(j, "routing.answer", j.provider_id, at)
    kind = rng.choice(list(RoutingKind))
    routing = PlanRouting(
        w.ids.take(RoutingRow),
        j.provider_id,
        rng.choice(w.routing_targets),
        kind.value,
        "sent",
        at,
        deadline.due_at,
        deadline.id,
    )
    j.routings.append(routing)
    sim.workflow_event(
        j,
        "routing_send",
        at,
        {"routing_id": routing.id, "target_org_id": routing.target_org_id, "kind": kind.value},
    )
    fate = _weighted(rng, [("answered", 60), ("late", 12), ("expired", 18), ("cancelled", 10)])
    if fate in ("late", "expired"):
        expired = deadline.due_at + timedelta(hours=1)
        if expired > w.until:
            return False
        clock.last = max(clock.last, expired)
        routing.status = "expired"
        sim.workflow_event(
            j,
            "routing_expire",
            expired,
            {"routing_id": routing.id},
            reason="Автоматически: истёк срок ответа организации",
        )
        deadline.status, deadline.closed_at, deadline.expired_at = DeadlineStatus.missed, expired, expired
        if fate == "expired":
            return True
    answer = clock.after(2, 25)
    if answer is None:
        return False
    if fate == "cancelled":
        routing.status = "cancelled"
        sim.workflow_event(
            j, "routing_cancel", answer, {"routing_id": routing.id}, reason="Семья обратилась сама"
        )
        if deadline.status == DeadlineStatus.open:
            deadline.status, deadline.closed_at = DeadlineStatus.cancelled, answer
        return True
    outcome = rng.choice(list(RoutingOutcome))
    routing.status, routing.answered_at, routing.outcome_code = "answered", answer, outcome.value
    sim.workflow_event(j, "routing_answer", answer, {"routing_id": routing.id, "outcome_code": outcome.value})
    if deadline.status == DeadlineStatus.open:
        deadline.status, deadline.closed_at = DeadlineStatus.met, answer
    return True


def _sessions(w: _World, j: Journey, start: datetime, end: datetime, services: list[str]) -> None:
    """Sessions scheduled between two moments of the journey, each held, missed, cancelled or not
    yet marked; those after `until` are still planned."""
    rng = w.rng
    span = (end - start).total_seconds()
    if span <= 3600:
        return
    for _ in range(rng.randint(1, 8)):
        at = start + timedelta(seconds=rng.uniform(60, span - 60))
        status = _weighted(rng, SESSION_STATUSES) if at <= w.until else SessionStatus.planned
        j.sessions.append(
            PlanSession(rng.choice(services), rng.choice(list(ServiceForm)).value, status.value, at)
        )


# --- writing ----------------------------------------------------------------------------------------

BATCH = 5_000
JOURNEY_BATCH = 5_000


def _chunks(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(rows), BATCH):
        yield rows[i : i + BATCH]


def _insert(session: Session, table: type[SQLModel], rows: list[dict[str, Any]]) -> None:
    for chunk in _chunks(rows):
        session.execute(insert(table.__table__), chunk)  # type: ignore[attr-defined]


def _sync_sequences(session: Session, tables: list[type[SQLModel]]) -> None:
    """PostgreSQL: explicit ids do not move the sequences; the next API insert must not collide."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for table in tables:
        name = str(table.__tablename__)
        session.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('\"{name}\"', 'id'), (SELECT max(id) FROM \"{name}\"))"
            )
        )


def _write(session: Session, journeys: list[Journey], region_id: int, plan_now: datetime) -> None:
    children, consents, cases, referrals, history, conclusions = [], [], [], [], [], []
    iprs, services, sessions, deadlines, transfers, routings, contacts = [], [], [], [], [], [], []
    for j in journeys:
        last, first = LAST_NAMES[j.child_id % len(LAST_NAMES)], FIRST_NAMES[j.child_id % len(FIRST_NAMES)]
        middle = f"Ребёнок{j.child_id}"
        children.append(
            {
                "id": j.child_id,
                "region_id": region_id,
                "last_name": last,
                "first_name": first,
                "middle_name": middle,
                "birth_date": j.birth_date,
                "sex": "female",
                "snils": None,
                "municipality": j.municipality,
                "address": None,
                "name_key": normalise_name(last, first, middle),
                "created_at": j.opened_at,
            }
        )
        consents.append(
            {
                "child_id": j.child_id,
                "kind": ConsentKind.personal_data.value,
                "status": ConsentStatus.given.value,
                "date": j.referral_date,
                "document_ref": "Согласие на обработку персональных данных",
                "recorded_by_id": j.history[0].actor_id,
                "recorded_at": j.opened_at,
            }
        )
        cases.append(
            {
                "id": j.case_id,
                "child_id": j.child_id,
                "provider_id": j.provider_id,
                "curator_id": j.curator_id if j.state != "referred" else None,
                "referral_id": j.referral_id,
                "state": j.state,
                "suspended_from": j.suspended_from,
                "destination_org_id": j.destination_org_id,
                "adaptation_starts_on": j.adaptation_starts_on,
                "adaptation_ends_on": j.adaptation_ends_on,
                "version": j.version,
                "opened_at": j.opened_at,
                "updated_at": j.updated_at,
                "closed_at": j.closed_at,
            }
        )
        referrals.append(
            {
                "id": j.referral_id,
                "child_id": j.child_id,
                "provider_id": j.referral_provider_id,
                "referring_org_id": j.referring_org_id,
                "created_by_id": j.history[0].actor_id,
                "created_by_org_id": j.referring_org_id or j.referral_provider_id,
                "criteria": j.criteria,
                "criteria_document_ref": None,
                "comment": None,
                "referral_date": j.referral_date,
                "case_id": j.case_id,
                "linked_to_existing": False,
                "submitted": None,
                "match_status": "none",
                "idempotency_key": None,
                "created_at": j.opened_at,
            }
        )
        for e in j.history:
            history.append(
                {
                    "case_id": j.case_id,
                    "from_state": e.from_state,
                    "to_state": e.to_state,
                    "event": e.event,
                    "actor_id": e.actor_id,
                    "at": e.at,
                    "payload": e.payload,
                    "reason": e.reason,
                }
            )
        for c in j.conclusions:
            conclusions.append(
                {
                    "case_id": j.case_id,
                    "outcome": c.outcome,
                    "text": "Заключение о нуждаемости",
                    "concluded_on": c.concluded_on,
                    "duration_minutes": 90,
                    "forms": c.forms,
                    "activities": c.activities,
                    "author_id": j.curator_id,
                    "created_at": j.opened_at,
                }
            )
        for ipr in j.iprs:
            iprs.append(
                {
                    "id": ipr.id,
                    "case_id": j.case_id,
                    "period_start": ipr.period_start,
                    "period_end": ipr.period_end,
                    "goals": ["Развитие общения со взрослыми и детьми"],
                    "parent_agreed_on": ipr.period_start,
                    "agreement_document_ref": "Согласие родителя",
                    "status": ipr.status,
                    "created_by_id": j.curator_id,
                    "created_at": ipr.approved_at,
                }
            )
            for s in ipr.services:
                services.append(
                    {
                        "ipr_id": ipr.id,
                        "service_code": s.service_code,
                        "specialist_role": "defectologist",
                        "form": s.form.value,
                        "count": s.count,
                        "minutes": s.minutes,
                    }
                )
        for meeting in j.sessions:
            sessions.append(
                {
                    "case_id": j.case_id,
                    "planned_service_id": None,
                    "service_code": meeting.service_code,
                    "form": meeting.form,
                    "scheduled_at": meeting.scheduled_at,
                    "duration_minutes": 60,
                    "specialist_id": None,
                    "status": meeting.status,
                    "notes": None,
                    "created_at": meeting.scheduled_at,
                    "updated_at": meeting.scheduled_at,
                }
            )
        for d in j.deadlines:
            running = d.status == DeadlineStatus.open and d.paused_at is None
            # The sweeps have run up to the plan's today: what fell due was warned of and escalated.
            expired = d.expired_at or (
                d.due_at if (d.status == DeadlineStatus.missed or running) and d.due_at < plan_now else None
            )
            warned = d.warn_at if d.warn_at is not None and d.warn_at < (d.closed_at or plan_now) else None
            deadlines.append(
                {
                    "id": d.id,
                    "case_id": j.case_id,
                    "provider_id": d.provider_id,
                    "timer": d.timer,
                    "label": d.label,
                    "action": d.action,
                    "event": d.event,
                    "status": d.status,
                    "due_at": d.due_at,
                    "warn_at": d.warn_at,
                    "opened_at": d.opened_at,
                    "closed_at": d.closed_at,
                    "paused_at": d.paused_at,
                    "warned_at": warned,
                    "expired_at": expired,
                }
            )
        for t in j.transfers:
            transfers.append(
                {
                    "id": t.id,
                    "case_id": j.case_id,
                    "from_provider_id": t.from_provider_id,
                    "to_provider_id": t.to_provider_id,
                    "status": t.status,
                    "reason": "Семья переехала",
                    "requested_by_id": j.history[0].actor_id,
                    "requested_at": t.requested_at,
                    "answered_by_id": j.curator_id if t.answered_at else None,
                    "answered_at": t.answered_at,
                    "answer_reason": None,
                }
            )
        for r in j.routings:
            routings.append(
                {
                    "id": r.id,
                    "case_id": j.case_id,
                    "provider_id": r.provider_id,
                    "target_org_id": r.target_org_id,
                    "kind": r.kind,
                    "activity_code": "social_support_counselling",
                    "purpose": "Консультация специалиста",
                    "status": r.status,
                    "sent_by_id": j.curator_id,
                    "sent_at": r.sent_at,
                    "due_at": r.due_at,
                    "deadline_id": r.deadline_id,
                    "consilium_id": None,
                    "outcome_code": r.outcome_code,
                    "outcome": None,
                    "answered_at": r.answered_at,
                    "answered_by_id": j.curator_id if r.answered_at else None,
                    "answered_by_org_id": r.provider_id if r.answered_at else None,
                    "cancelled_reason": "Семья обратилась сама" if r.status == "cancelled" else None,
                }
            )
        for at, successful in j.contacts:
            contacts.append(
                {
                    "case_id": j.case_id,
                    "at": at,
                    "channel": "phone",
                    "successful": successful,
                    "note": None,
                    "recorded_by_id": j.curator_id,
                }
            )
    _insert(session, Child, children)
    _insert(session, Consent, consents)
    _insert(session, Case, cases)
    _insert(session, Referral, referrals)
    _insert(session, CaseHistory, history)
    _insert(session, NeedConclusion, conclusions)
    _insert(session, Ipr, iprs)
    _insert(session, PlannedService, services)
    _insert(session, ServiceSession, sessions)
    _insert(session, Deadline, deadlines)
    _insert(session, Transfer, transfers)
    _insert(session, RoutingRow, routings)
    _insert(session, ContactAttempt, contacts)


ID_TABLES: list[type[SQLModel]] = [Child, Case, Referral, Ipr, Deadline, Transfer, RoutingRow]


def _curator_of(org_id: int) -> Any:
    return select(User).where(User.organisation_id == org_id, User.role == Role.curator).order_by(User.id)  # type: ignore[arg-type]


def _region(
    session: Session, region_id: int | None, seed: int, providers: int
) -> tuple[Region, list[Organisation], dict[str, int]]:
    """The region to fill (a new one unless given) with `providers` providers, each with a curator."""
    user_ids: dict[str, int] = {}
    if region_id is None:
        staff = seed_region(
            session, f"gen{seed}", "Сгенерированная область", "Europe/Moscow", login_prefix=f"gen{seed}_"
        )
        region = staff.region
        user_ids = {login: user.id or 0 for login, user in staff.users.items()}
    else:
        found = session.get(Region, region_id)
        assert found is not None, region_id
        region = found
    assert region.id is not None
    orgs = list(
        session.execute(
            select(Organisation).where(Organisation.region_id == region.id).order_by(Organisation.id)  # type: ignore[arg-type]
        ).scalars()
    )
    have = [o for o in orgs if o.kind == OrgKind.provider]
    for i in range(len(have), providers):
        org = Organisation(
            region_id=region.id,
            name=PROVIDER_NAMES[i % len(PROVIDER_NAMES)],
            kind=OrgKind.provider,
            service_area=[MUNICIPALITIES[i % len(MUNICIPALITIES)]],
            email=f"gen{seed}-provider{i}@example.org",
            phone=f"+7 800 000-00-0{i % 10}",
        )
        session.add(org)
        orgs.append(org)
    second_doo = "МБДОУ «Детский сад № 7 „Ромашка“»"
    if not any(o.name == second_doo for o in orgs):
        org = Organisation(
            region_id=region.id, name=second_doo, kind=OrgKind.education, email=f"gen{seed}-doo@example.org"
        )
        session.add(org)
        orgs.append(org)
    session.flush()
    for org in orgs:
        if org.kind != OrgKind.provider:
            continue
        curator = session.execute(_curator_of(org.id or 0)).scalars().first()
        if curator is None:
            session.add(
                User(
                    organisation_id=org.id or 0,
                    login=f"gen{seed}-curator-{org.id}",
                    full_name="Куратор Сгенерированный",
                    role=Role.curator,
                    password_hash=None,  # never signs in: the generated curators only act in history
                )
            )
    session.flush()
    return region, orgs, user_ids


def generate(
    engine: Engine,
    *,
    n: int = 3000,
    seed: int = 12,
    region_id: int | None = None,
    providers: int = 4,
    first_day: date = FIRST_DAY,
    days: int = DAYS,
    now: datetime = NOW,
    keep: bool = True,
) -> Plan:
    """Write `n` journeys into a region (a new one unless `region_id`) and return their plan.

    Referrals are spread over `days` from `first_day`; nothing happens after `now`. The same seed
    gives the same plan. `keep=False` (the bench's 100 000) returns the plan without its journeys.
    A new region is named after the seed (code "gen<seed>", logins "gen<seed>_..."): regions generated
    into one database need different seeds."""
    rng = random.Random(seed)
    with Session(engine) as session:
        region, orgs, user_ids = _region(session, region_id, seed, providers)
        assert region.id is not None
        standard = load_standard(region.code)
        zone = ZoneInfo(region.timezone)
        by_id = {o.id or 0: o for o in orgs}
        provider_ids = [o.id or 0 for o in orgs if o.kind == OrgKind.provider][:providers]
        curators: dict[int, int] = {}
        for pid in provider_ids:
            curator = session.execute(_curator_of(pid)).scalars().first()
            assert curator is not None and curator.id is not None
            curators[pid] = curator.id
        referrers: dict[str, int] = {}
        for o in orgs:
            referrers.setdefault(str(o.kind), o.id or 0)
        ids = _Ids(session, [*ID_TABLES])
        world = _World(
            standard=standard,
            zone=zone,
            rng=rng,
            sim=_Simulator(standard, zone, ids, by_id),
            ids=ids,
            providers=provider_ids,
            curators=curators,
            referrers=referrers,
            destinations=[o.id or 0 for o in orgs if o.kind == OrgKind.education],
            routing_targets=[
                o.id or 0 for o in orgs if o.kind in (OrgKind.health, OrgKind.social, OrgKind.pmpk)
            ],
            until=now,
            first_day=first_day,
            days=days,
        )
        journeys: list[Journey] = []
        # Written a batch at a time: 100 000 journeys' rows need not all be in memory at once.
        for first in range(0, n, JOURNEY_BATCH):
            batch = [_journey(world, i, ids.take(Child)) for i in range(first, min(n, first + JOURNEY_BATCH))]
            _write(session, batch, region.id, now)
            if keep:
                journeys.extend(batch)
        _sync_sequences(session, ID_TABLES)
        # The rows were written past the journey's doors: the children's facts as those doors keep them.
        child_facts.refresh_region(session, region.id)
        session.commit()
        return Plan(
            region_id=region.id,
            region_code=region.code,
            timezone=region.timezone,
            provider_ids=provider_ids,
            referrer_ids={k: v for k, v in referrers.items() if k not in ("provider", "rrmc")},
            org_kinds={o.id or 0: str(o.kind) for o in orgs},
            user_ids=user_ids,
            first_day=first_day,
            last_day=first_day + timedelta(days=days - 1),
            now=now,
            journeys=journeys,
        )
