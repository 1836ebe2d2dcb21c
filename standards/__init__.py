"""The standard of care as data: default.yaml, overridden per region by regions/<code>.yaml."""

from __future__ import annotations

from datetime import date, time
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

STANDARDS_DIR = Path(__file__).resolve().parent


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Coded(_Strict):
    code: str = Field(min_length=1, max_length=64)
    label: str = Field(min_length=1)


Form = Literal["in_person", "remote", "home", "group"]
Section = Literal["with_ipr", "without_ipr"]


class CriterionDef(Coded):
    """A criterion of Пост. № 1099 and the documents that usually confirm it."""

    documents: list[str] = Field(min_length=1)


class ActivityDef(Coded):
    """An activity (мероприятие) of a 344н service: what an ИПРП, a conclusion and a session name."""

    specialist_roles: list[str] = Field(min_length=1)
    # The most of it a need-determination conclusion may plan, and the longest one session of it.
    max_count: int = Field(ge=1, le=500)
    minutes: int = Field(ge=5, le=480)
    # Where max_count and minutes come from, or "DEFAULT ..." when they are ours.
    source: str = Field(min_length=1)
    forms: list[Form] = Field(min_length=1)


# The catalogue used to be a flat list of services; its entries are now the activities.
ServiceDef = ActivityDef


class CatalogueServiceDef(Coded):
    """One of the five services of 344н."""

    section: Section
    activities: list[ActivityDef] = Field(min_length=1)


class ExitReasons(_Strict):
    """Coded reasons a journey ends, by final state (the `reason_code` of the event leading there)."""

    completed: list[Coded] = Field(min_length=1)
    no_need: list[Coded] = Field(min_length=1)
    declined: list[Coded] = Field(min_length=1)
    lost_contact: list[Coded] = Field(min_length=1)
    rejected: list[Coded] = Field(min_length=1)

    @model_validator(mode="after")
    def _rejected_are_the_api_codes(self) -> ExitReasons:
        # reject's reason_code is an enum of the API (models/events.py): the file labels those codes.
        from models.events import RejectReason

        codes = {r.code for r in self.rejected}
        if codes != set(RejectReason):
            raise ValueError(f"rejected: коды должны быть ровно {', '.join(RejectReason)}")
        return self


class AgeRules(_Strict):
    max_months_at_referral: int = Field(ge=1, le=96)


class ContactRules(_Strict):
    failed_attempts_for_lost_contact: int = Field(ge=1, le=50)


class AdaptationRules(_Strict):
    # The adaptation period after the child enters a ДОО or another programme, unless the enrolment
    # names its end.
    length_months: int = Field(ge=1, le=24)


class NeedDeterminationRules(_Strict):
    session_minutes: int = Field(ge=10, le=600)


class MessageTemplate(_Strict):
    sms: str | None = None
    email_subject: str | None = None
    email_body: str | None = None


class Messages(_Strict):
    """Templates by audience: the family, an organisation (provider, pre-school, curator), the referrer."""

    family: dict[str, MessageTemplate]
    organisation: dict[str, MessageTemplate]
    referrer: dict[str, MessageTemplate]


class TimerDef(_Strict):
    name: str = Field(min_length=1, max_length=64)
    label: str = Field(min_length=1)
    states: list[str] = Field(min_length=1)
    duration: int = Field(ge=0)
    unit: Literal["working_days", "calendar_days", "months"]
    # adaptation_end: the end of the case's adaptation period (case.adaptation_ends_on), set at `enrol`.
    anchor: Literal["state_entry", "referral_date", "birth_date", "adaptation_end"] = "state_entry"
    # Subtracted after the duration: "90 days before the third birthday" is 36 months minus 90 days.
    minus_days: int = Field(default=0, ge=0)
    # Warn this long before the deadline (working days for working_days timers, else calendar days).
    warn_before: int = Field(default=0, ge=0)
    on_expiry: Literal["escalate", "remind_family", "fire_event"]
    event: str | None = None

    @field_validator("states")
    @classmethod
    def _known_states(cls, states: list[str]) -> list[str]:
        from statemachines.journey import STATE_LABELS

        unknown = [s for s in states if s not in STATE_LABELS]
        if unknown:
            raise ValueError(f"неизвестное состояние {unknown[0]!r}; допустимые: {', '.join(STATE_LABELS)}")
        return states

    @model_validator(mode="after")
    def _known_event(self) -> TimerDef:
        from statemachines.journey import EVENTS

        if self.on_expiry == "fire_event" and self.event not in EVENTS:
            raise ValueError(f"неизвестное событие {self.event!r}; допустимые: {', '.join(EVENTS)}")
        return self


class WorkflowTimerDef(_Strict):
    """A deadline of a workflow beside the journey (statemachines/workflows.py): it runs from the
    workflow object's creation, is not paused when the case is suspended, and is stored as a
    Deadline whose timer is "<workflow>.<name>"."""

    name: str = Field(min_length=1, max_length=32)
    label: str = Field(min_length=1)
    duration: int = Field(ge=0)
    unit: Literal["working_days", "calendar_days", "months"]
    warn_before: int = Field(default=0, ge=0)
    on_expiry: Literal["escalate", "expire"] = "escalate"
    # core.workdays.due_dates reads it; a workflow's timer counts from its start.
    minus_days: int = 0

    def deadline_name(self, workflow: str) -> str:
        return f"{workflow}.{self.name}"


class TransferRules(_Strict):
    # The receiving provider answers a transfer request within this.
    answer: WorkflowTimerDef


class RoutingRules(_Strict):
    # The organisation a family is routed to answers (or the curator records the outcome) within this.
    answer: WorkflowTimerDef


class ConsiliumRules(_Strict):
    pass


class WorkflowRules(_Strict):
    transfer: TransferRules
    routing: RoutingRules
    consilium: ConsiliumRules = ConsiliumRules()


class CalendarDef(_Strict):
    working_weekends: list[date] = []
    extra_days_off: list[date] = []


class QuietHours(_Strict):
    start: time
    end: time

    def contains(self, moment: time) -> bool:
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


class ReminderRules(_Strict):
    before_hours: list[int] = Field(min_length=0)
    link_valid_hours_after: int = Field(ge=1)
    misses_for_contact_rule: int = Field(ge=1)


class StatisticsRules(_Strict):
    """The analyst's de-personalised numbers (DESIGN §6): a count below `min_cell` (but above zero) is
    shown as suppressed, so no child can be recognised in a small cell."""

    min_cell: int = Field(default=5, ge=2, le=50)
    # The analyst's other counts are rounded to a multiple of this (1: not rounded), so that the
    # difference of two answers (the region less one provider, a period less a shorter one) cannot
    # give back a suppressed count exactly.
    round_to: int = Field(default=5, ge=1, le=50)


class YearlyReportRules(_Strict):
    """Form 1-РП for the year before: generated on `generate_on` (MM-DD, the region's date) and the
    РРМЦ told, well before it is due (`due`, MM-DD of the following year)."""

    generate_on: str = Field(default="01-15", pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")
    due: str = Field(default="04-15", pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")


class ReportRules(_Strict):
    yearly: YearlyReportRules = YearlyReportRules()


class Standard(_Strict):
    name: str
    age: AgeRules
    contact: ContactRules
    need_determination: NeedDeterminationRules
    adaptation: AdaptationRules
    criteria: list[CriterionDef] = Field(min_length=1)
    specialist_roles: list[Coded] = Field(min_length=1)
    catalogue: list[CatalogueServiceDef] = Field(min_length=1)
    exits: ExitReasons
    messages: Messages
    calendar: CalendarDef
    quiet_hours: QuietHours
    reminders: ReminderRules
    timers: list[TimerDef]
    workflows: WorkflowRules
    statistics: StatisticsRules = StatisticsRules()
    reports: ReportRules = ReportRules()

    @property
    def services(self) -> list[ActivityDef]:
        """Every activity of the catalogue, in order: what `service_code` of an ИПРП or a session names."""
        return [a for s in self.catalogue for a in s.activities]

    def service_of(self, activity_code: str) -> CatalogueServiceDef | None:
        """The 344н service an activity belongs to."""
        return next((s for s in self.catalogue if any(a.code == activity_code for a in s.activities)), None)

    def exit_reasons(self, state: str) -> list[Coded]:
        found = getattr(self.exits, state, None)
        return list(found) if isinstance(found, list) else []

    @model_validator(mode="after")
    def _activity_codes_unique(self) -> Standard:
        codes = [a.code for a in self.services]
        repeated = sorted({c for c in codes if codes.count(c) > 1})
        if repeated:
            raise ValueError(f"коды мероприятий повторяются: {', '.join(repeated)}")
        return self

    @model_validator(mode="after")
    def _services_name_known_roles(self) -> Standard:
        roles = {r.code for r in self.specialist_roles}
        for service in self.services:
            unknown = set(service.specialist_roles) - roles
            if unknown:
                raise ValueError(f"activity {service.code}: unknown specialist roles {sorted(unknown)}")
        return self

    @model_validator(mode="after")
    def _templates_compile(self) -> Standard:
        from jinja2 import Environment, TemplateSyntaxError

        env = Environment()
        for audience, templates in self.messages:
            for name, template in templates.items():
                for part in ("sms", "email_subject", "email_body"):
                    source = getattr(template, part)
                    if source is None:
                        continue
                    try:
                        env.parse(source)
                    except TemplateSyntaxError as error:
                        raise ValueError(f"messages.{audience}.{name}.{part}: {error}") from error
        return self

    @model_validator(mode="after")
    def _timer_names_unique(self) -> Standard:
        names = [t.name for t in self.timers]
        if len(set(names)) != len(names):
            raise ValueError("имена таймеров повторяются")
        return self

    def timer(self, name: str) -> TimerDef | None:
        return next((t for t in self.timers if t.name == name), None)

    def workflow_timer(self, deadline_name: str) -> WorkflowTimerDef | None:
        """The workflow timer of a Deadline named "<workflow>.<name>" (None for the journey's own)."""
        workflow, _, name = deadline_name.partition(".")
        rules = getattr(self.workflows, workflow, None) if name else None
        found = getattr(rules, name, None) if rules is not None else None
        return found if isinstance(found, WorkflowTimerDef) else None

    def criterion_codes(self) -> set[str]:
        return {c.code for c in self.criteria}

    def service(self, code: str) -> ServiceDef | None:
        return next((s for s in self.services if s.code == code), None)

    def criterion_label(self, code: str) -> str:
        return next((c.label for c in self.criteria if c.code == code), code)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class StandardError(ValueError):
    """A standard file is wrong; the message names the file and the line."""


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise StandardError(f"{path}: некорректный YAML: {error}".replace("\n", " ")) from error
    if not isinstance(data, dict):
        raise StandardError(f"{path}: верхний уровень должен быть словарём")
    return data


def _line_of(path: Path, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the value at `loc` in a YAML file, if the file has it."""
    node: Any = yaml.compose(path.read_text(encoding="utf-8"))
    line = None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            found = next((v for k, v in node.value if k.value == str(key)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            found = node.value[key]
        else:
            found = None
        if found is None:
            break
        node, line = found, found.start_mark.line + 1
    return line


def _explain(error: ValidationError, files: list[tuple[Path, tuple[str, ...]]]) -> StandardError:
    """Turn the first validation error into "<file>, строка N: <where>: <what>"."""
    first = error.errors()[0]
    loc = tuple(first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    where = ".".join(str(part) for part in loc)
    for path, prefix in files:  # the region file first: it is what someone just edited
        inner = loc[len(prefix) :] if loc[: len(prefix)] == prefix else None
        if inner is None or not path.exists():
            continue
        line = _line_of(path, inner)
        if line is not None:
            return StandardError(f"{path}, строка {line}: {where}: {message}")
    return StandardError(f"{files[-1][0]}: {where}: {message}")


_directory = STANDARDS_DIR


def current_directory() -> Path:
    return _directory


def configure(directory: Path) -> None:
    """Read standards from `directory` from now on (settings.standards_dir; tests use their own)."""
    global _directory
    if directory != _directory:
        _directory = directory
        load_standard.cache_clear()


@lru_cache(maxsize=128)
def load_standard(region_code: str | None = None) -> Standard:
    """The default standard, with the region's file laid over it when there is one."""
    directory = _directory
    data = _read(directory / "default.yaml")
    data["messages"] = _read(directory / "messages.yaml")
    files = [(directory / "messages.yaml", ("messages",)), (directory / "default.yaml", ())]
    if region_code:
        region_file = directory / "regions" / f"{region_code}.yaml"
        if region_file.exists():
            data = _merge(data, _read(region_file))
            files.insert(0, (region_file, ()))
    try:
        return Standard.model_validate(data)
    except ValidationError as error:
        raise _explain(error, files) from error


def load_all() -> dict[str | None, Standard]:
    """Every standard the service may need: the default and each region file (checked at start)."""
    regions = sorted(p.stem for p in (_directory / "regions").glob("*.yaml"))
    return {code: load_standard(code) for code in [None, *regions]}
