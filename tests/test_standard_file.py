"""A wrong standard file stops the service at start, naming the file and the line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import standards
from standards import StandardError
from tests.standards_override import region_standard

EARLYHELP = str(Path(sys.executable).parent / "earlyhelp")
TIMER = """timers:
  - name: referral_response
    label: "Рассмотреть направление"
    states: [{state}]
    duration: {duration}
    unit: working_days
    on_expiry: {action}
{extra}"""


@pytest.mark.parametrize(
    ("fields", "line", "message"),
    [
        ({"state": "flying"}, 4, "неизвестное состояние 'flying'"),
        ({"duration": "-5"}, 5, "greater than or equal to 0"),
        # The event is checked against on_expiry, so the error points at the timer itself.
        ({"action": "fire_event", "extra": "    event: teleport\n"}, 2, "неизвестное событие 'teleport'"),
        ({"action": "explode"}, 7, "on_expiry"),
    ],
    ids=["unknown_state", "negative_duration", "unknown_event", "unknown_action"],
)
def test_invalid_timer_names_file_and_line(
    tmp_path: Path, fields: dict[str, str], line: int, message: str
) -> None:
    values = {"state": "referred", "duration": "5", "action": "escalate", "extra": "", **fields}
    with pytest.raises(StandardError) as caught, region_standard(tmp_path, TIMER.format(**values)):
        standards.load_all()
    text = str(caught.value)
    assert "regions/demo.yaml" in text and message in text and f"строка {line}:" in text


def test_broken_yaml_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StandardError, match="некорректный YAML"), region_standard(tmp_path, "age: [1, 2\n"):
        standards.load_all()


def test_serve_refuses_to_start_on_a_broken_standard(tmp_path: Path) -> None:
    with region_standard(
        tmp_path, TIMER.format(state="flying", duration=5, action="escalate", extra="")
    ) as d:
        env = {
            **os.environ,
            "EARLYHELP_STANDARDS_DIR": str(d),
            "EARLYHELP_VAR_DIR": str(tmp_path),
            "EARLYHELP_DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
        }
        result = subprocess.run(
            [EARLYHELP, "serve", "--port", "1"], env=env, capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ошибка: ") and "demo.yaml, строка 4" in lines[0]


def test_region_with_an_unknown_time_zone_is_refused(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "EARLYHELP_VAR_DIR": str(tmp_path),
        "EARLYHELP_DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
    }
    subprocess.run([EARLYHELP, "db", "upgrade"], env=env, check=True, capture_output=True, timeout=60)
    bad = subprocess.run(
        [EARLYHELP, "region", "add", "--code", "mars", "--name", "Марс", "--timezone", "Mars/Olympus"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1 and bad.stderr.strip() == (
        "ошибка: неизвестный часовой пояс 'Mars/Olympus' (нужен пояс IANA, например Europe/Kaliningrad)"
    )
    good = subprocess.run(
        [
            EARLYHELP,
            "region",
            "add",
            "--code",
            "kamchatka",
            "--name",
            "Камчатский край",
            "--timezone",
            "Asia/Kamchatka",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert good.returncode == 0 and good.stdout.strip().isdigit()


def test_every_message_template_has_a_russian_name_for_the_case_page() -> None:
    import yaml

    from models.outbox import MESSAGE_LABELS

    messages = yaml.safe_load(
        (Path(__file__).resolve().parent.parent / "standards" / "messages.yaml").read_text()
    )
    names = {name for group in messages.values() for name in group}
    assert names == set(MESSAGE_LABELS)


CATALOGUE = """catalogue:
  - code: consultations
    label: "Консультативные услуги по ранней помощи без разработки ИПРП"
    section: without_ipr
    activities:
      - code: development_counselling
        label: "Консультирование родителей"
        max_count: {max_count}
        minutes: 60
        source: "DEFAULT"
        forms: [{form}]
        specialist_roles: [psychologist]
"""


@pytest.mark.parametrize(
    ("fields", "line", "message"),
    [
        ({"form": "telepathy"}, 11, "forms.0"),
        ({"max_count": "0"}, 8, "greater than or equal to 1"),
    ],
    ids=["unknown_form", "zero_max_count"],
)
def test_invalid_activity_names_file_and_line(
    tmp_path: Path, fields: dict[str, str], line: int, message: str
) -> None:
    values = {"form": "in_person", "max_count": "4", **fields}
    with pytest.raises(StandardError) as caught, region_standard(tmp_path, CATALOGUE.format(**values)):
        standards.load_all()
    text = str(caught.value)
    assert "regions/demo.yaml" in text and message in text and f"строка {line}:" in text
