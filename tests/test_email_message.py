"""The e-mail as a mail client reads it back: Russian subjects keep every space."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from core.config import Settings
from flows.channels import Outgoing, build_email

SUBJECTS = [
    # Each of these folded into encoded words lost a space under the default policy.
    "Поступление ребёнка из службы ранней помощи",
    "Просрочен срок по случаю № 123 — ответ на запрос о передаче случая в другую организацию",
    "Приглашение на межведомственный консилиум 12.12.2026 10:00 (дистанционно)",
]


@pytest.mark.parametrize("subject", SUBJECTS)
def test_a_long_russian_subject_arrives_with_its_spaces(subject: str) -> None:
    settings = Settings(secret_key="test-secret-key-of-sufficient-length-for-hs256")
    out = Outgoing("email", "family@example.org", "outbox-1", subject=subject, text="Текст")
    raw = build_email(settings, out).as_bytes()
    read = message_from_bytes(raw, policy=policy.default)
    assert read["Subject"] == subject
    assert read.get_content().strip() == "Текст"
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
