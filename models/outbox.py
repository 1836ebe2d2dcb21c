"""The transactional outbox and the record of every delivery made from it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.common import JSONType, UTCDateTime, utcnow


class EffectKind(StrEnum):
    notify_family = "notify_family"
    notify_organisation = "notify_organisation"
    feedback_to_referrer = "feedback_to_referrer"


class OutboxStatus(StrEnum):
    pending = "pending"
    done = "done"
    # Gave up: a template error, or the retry budget spent. Visible in the case's deliveries.
    failed = "failed"
    # Reached nobody: no recipient could be named or had an address (the reasons in last_error and
    # in the deliveries). Not retried; a person must act: the case shows it, and
    # GET /cases?undelivered=true lists such cases for their supervisors.
    undelivered = "undelivered"


class Outbox(SQLModel, table=True):
    """One row per effect a transition calls for, written in the transition's transaction."""

    __table_args__ = (Index("ix_outbox_due", "status", "available_at"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int | None = Field(default=None, foreign_key="case.id", index=True)
    referral_id: int | None = Field(default=None, foreign_key="referral.id")
    kind: EffectKind = Field(sa_column=Column(String(32), nullable=False))
    template: str = Field(max_length=64)
    # What the message needs that may change later (the event's payload, who fired it).
    context: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    status: OutboxStatus = Field(default=OutboxStatus.pending, sa_column=Column(String(16), nullable=False))
    attempts: int = 0
    available_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # A relay owns a claimed row until the lease ends; a relay that died loses it then.
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claimed_by: str | None = Field(default=None, max_length=64)
    last_error: str | None = Field(default=None, max_length=2000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class DeliveryStatus(StrEnum):
    sent = "sent"
    failed = "failed"  # will be retried
    undeliverable = "undeliverable"  # no address for the channel (a family, a curator without e-mail)
    skipped = "skipped"  # consent withdrawn, channel not configured, nobody to tell


class Delivery(SQLModel, table=True):
    __table_args__ = (
        # The outbox id is the idempotency key: one delivery per recipient address and channel.
        UniqueConstraint("outbox_id", "channel", "address", name="uq_delivery_once"),
    )

    id: int | None = Field(default=None, primary_key=True)
    outbox_id: int = Field(foreign_key="outbox.id", index=True)
    case_id: int | None = Field(default=None, index=True)
    recipient: str = Field(max_length=300)
    channel: str = Field(max_length=16)
    address: str = Field(max_length=500)
    template: str = Field(max_length=64)
    subject: str | None = Field(default=None, max_length=300)
    text: str | None = Field(default=None, max_length=20_000)
    status: DeliveryStatus = Field(sa_column=Column(String(16), nullable=False))
    attempts: int = 0
    error: str | None = Field(default=None, max_length=2000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class DeliveryPublic(SQLModel):
    id: int
    outbox_id: int
    recipient: str
    channel: str
    template: str
    status: DeliveryStatus
    attempts: int
    error: str | None
    # The message as sent, or as it would have been sent when its channel is not configured
    # (status skipped): a trial installation shows what each recipient would have received.
    # None for webhooks and for deliveries never rendered (no address, consent withdrawn).
    subject: str | None = None
    text: str | None = None
    sent_at: datetime | None
    updated_at: datetime


class EffectPublic(SQLModel):
    """An outbox row as the case detail shows it: what was due and where it stands."""

    id: int
    kind: EffectKind
    template: str
    status: OutboxStatus
    attempts: int
    last_error: str | None
    created_at: datetime
    done_at: datetime | None
    deliveries: list[DeliveryPublic]


# What each message is, for people reading a case's deliveries (the templates are standards/messages.yaml).
MESSAGE_LABELS: dict[str, str] = {
    "need_determination_invitation": "Приглашение на определение нуждаемости",
    "referral_rejected": "Направление отклонено",
    "need_determined": "Заключение о нуждаемости",
    "ipr_agreed": "ИПРП согласована",
    "appointment_confirmation": "Запись на занятие",
    "session_reminder": "Напоминание о занятии",
    "deadline_reminder": "Напоминание о сроке",
    "transition_started": "Начат переход",
    "journey_completed": "Сопровождение завершено",
    "adaptation_started": "Начат период адаптации",
    "enrolment_recorded": "Поступление ребёнка зафиксировано",
    "new_referral": "Новое направление",
    "referral_handed_over": "Направление передано",
    "match_review_requested": "Проверка совпадения",
    "case_assigned": "Назначен куратор",
    "transition_receiving": "Переход: принимающей организации",
    "deadline_warning": "Срок подходит",
    "deadline_overdue": "Срок пропущен",
    "session_missed": "Занятие пропущено",
    "contact_rule_reached": "Не удаётся связаться с семьёй",
    "reschedule_requested": "Семья просит перенести занятие",
    "family_unreachable": "Семья недоступна",
    "referral_accepted": "Направление принято",
    "declined": "Семья отказалась",
    "lost_contact": "Связь с семьёй утрачена",
    "routing_request": "Направление семьи в организацию",
    "routing_answered": "Ответ по направлению семьи",
    "routing_expired": "Нет ответа по направлению семьи",
    "routing_cancelled": "Направление семьи отменено",
    "consilium_invitation": "Приглашение на консилиум",
    "consilium_cancelled": "Консилиум отменён",
    "transfer_requested": "Запрос о передаче случая",
    "transfer_accepted": "Случай передан другой организации",
    "transfer_refused": "Отказ в приёме случая",
    "transfer_withdrawn": "Запрос о передаче отозван",
    "report_ready": "Отчёт по форме 1-РП сформирован",
}
DELIVERY_CHANNEL_LABELS: dict[str, str] = {
    "sms": "SMS",
    "email": "Эл. почта",
    "webhook": "Система организации",
    "none": "—",
}
