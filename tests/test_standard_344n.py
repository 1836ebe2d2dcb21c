"""The standard as the 2025 documents name it: the five services of 344н with their activities (the
letter's four verbatim), the criteria of Пост. № 1099 with their documents, the coded exits, and the
conclusion of need determination that records forms, kinds, number and duration of activities."""

from __future__ import annotations

import re
from datetime import date
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
import yaml
from pypdf import PdfReader

from models.events import RejectReason
from standards import STANDARDS_DIR, load_standard
from tests.test_journey import ipr_payload, need_payload, plan_session, to_need_determination
from tests.test_pages_auth import sign_in
from tests.world import API, World

# The Минтруд letter of 2025 (seed 001) quotes these activities and the section name verbatim.
LETTER_ACTIVITIES = {
    "social_support_counselling": "Консультирование родителей (законных или уполномоченных представителей), "
    "близкого взрослого по вопросам социальной поддержки",
    "health_status_analysis": "Проведение и анализ состояния и здоровья ребенка",
    "adaptation_parent_counselling": "Консультирование родителей (законных или уполномоченных "
    "представителей), близкого взрослого в период адаптации ребенка в образовательной организации",
    "adaptation_doo_counselling": "Консультирование специалистов и воспитателей дошкольной образовательной "
    "организации при переходе ребенка из службы ранней помощи в образовательную организацию и на всем "
    "этапе его адаптации",
}
WITHOUT_IPR_SECTION = "Консультативные услуги по ранней помощи без разработки ИПРП"
# Codes that ИПРП, sessions, the demo and the bench name: each stays an activity of the catalogue.
EXISTING_CODES = {
    "need_determination",
    "functioning_assessment",
    "ipr_development",
    "daily_functioning",
    "motor_development",
    "communication_development",
    "cognitive_development",
    "self_care",
    "family_support",
    "social_support_counselling",
    "transition_counselling",
}


def test_catalogue_has_the_five_services_of_344n_with_the_letters_activities_verbatim() -> None:
    standard = load_standard(None)
    assert len(standard.catalogue) == 5
    sections = {s.code: s.section for s in standard.catalogue}
    assert list(sections.values()).count("without_ipr") == 1
    consultations = next(s for s in standard.catalogue if s.section == "without_ipr")
    assert consultations.label == WITHOUT_IPR_SECTION
    for code, label in LETTER_ACTIVITIES.items():
        activity = standard.service(code)
        assert activity is not None and activity.label == label
    # The letter places social support and both adaptation consultations in the section without ИПРП.
    in_section = {a.code for a in consultations.activities}
    assert {
        "social_support_counselling",
        "adaptation_parent_counselling",
        "adaptation_doo_counselling",
    } <= in_section
    assert {a.code for a in standard.services} >= EXISTING_CODES


def test_every_activity_has_numbers_forms_roles_and_the_source_of_its_numbers() -> None:
    standard = load_standard(None)
    roles = {r.code for r in standard.specialist_roles}
    for activity in standard.services:
        assert activity.max_count >= 1 and activity.minutes >= 5
        assert activity.forms and set(activity.specialist_roles) <= roles
        # A named source, or the word DEFAULT: a number is never left unexplained.
        assert "DEFAULT" in activity.source or "344н" in activity.source, activity.code
    need = standard.service("need_determination")
    assert need is not None and need.max_count == 1 and need.minutes == 90


def test_every_label_not_quoted_by_the_letter_says_so_in_the_file() -> None:
    """Each service and activity label is either the letter's (verbatim) or marked as ours."""
    text = (STANDARDS_DIR / "default.yaml").read_text(encoding="utf-8")
    catalogue = text[text.index("\ncatalogue:") : text.index("\nexits:")]
    blocks = catalogue.split("- code: ")[1:]
    assert len(blocks) == 5 + len(load_standard(None).services)
    for block in blocks:
        assert "letter (verbatim)" in block or "wording: ours" in block, block.splitlines()[0]


def test_criteria_of_1099_each_have_the_documents_that_confirm_them() -> None:
    standard = load_standard(None)
    assert [c.code for c in standard.criteria] == [
        "disabled_child",
        "health_group_4_5",
        "orphanage",
        "difficult_situation",
        "development_features",
        "parental_concern",
    ]
    assert all(c.documents for c in standard.criteria)
    assert standard.criteria[0].label == "Наличие у детей категории «ребенок-инвалид»"


def test_exits_name_reasons_for_every_final_state_and_rejected_are_the_apis_codes() -> None:
    standard = load_standard(None)
    for state in ("completed", "no_need", "declined", "lost_contact", "rejected"):
        assert standard.exit_reasons(state), state
    assert {r.code for r in standard.exit_reasons("rejected")} == set(RejectReason)


def test_standard_file_with_a_repeated_activity_code_is_refused(tmp_path: Path) -> None:
    from standards import StandardError, configure, current_directory

    data = yaml.safe_load((STANDARDS_DIR / "default.yaml").read_text(encoding="utf-8"))
    data["catalogue"][1]["activities"].append(dict(data["catalogue"][0]["activities"][0]))
    (tmp_path / "regions").mkdir()
    (tmp_path / "default.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    (tmp_path / "messages.yaml").write_text((STANDARDS_DIR / "messages.yaml").read_text(encoding="utf-8"))
    before = current_directory()
    configure(tmp_path)
    try:
        with pytest.raises(StandardError, match="коды мероприятий повторяются: need_determination"):
            load_standard(None)
    finally:
        configure(before)


def test_api_standard_shows_services_with_activities_criteria_documents_and_exit_reasons(
    world: World,
) -> None:
    body = world.client.get(f"{API}/standard", headers=world.h("coordinator")).json()
    catalogue = {s["code"]: s for s in body["catalogue"]}
    assert len(catalogue) == 5
    consultations = catalogue["consultations"]
    assert consultations["section"] == "without_ipr" and consultations["section_label"] == WITHOUT_IPR_SECTION
    doo = next(a for a in consultations["activities"] if a["code"] == "adaptation_doo_counselling")
    assert doo["label"] == LETTER_ACTIVITIES["adaptation_doo_counselling"]
    assert doo["max_count"] > 0 and doo["minutes"] > 0 and doo["source"].startswith("DEFAULT")
    assert {f["code"] for f in doo["forms"]} == {"in_person", "remote", "group"}
    assert doo["specialist_roles"][0]["code"] == "curator"
    assert all(c["documents"] for c in body["criteria"])
    exits = {e["state"]: e for e in body["exits"]}
    assert "preschool" in {r["code"] for r in exits["completed"]["reason_codes"]}
    assert exits["declined"]["reason_code_accepted"] and not exits["lost_contact"]["reason_code_accepted"]
    enums = {e["field"]: {v["code"] for v in e["values"]} for e in body["enums"]}
    assert "no_time" in enums["decline.reason_code"]
    assert enums["determine_need.forms"] == {"in_person", "remote", "home", "group"}


def test_standard_page_shows_the_catalogue_criteria_documents_and_exits(world: World) -> None:
    sign_in(world.client, "rrmc")
    html = world.client.get("/standard").text
    assert WITHOUT_IPR_SECTION in html
    assert LETTER_ACTIVITIES["health_status_analysis"] in html
    assert "Справка МСЭ" in html and "Переход в дошкольную образовательную организацию" in html


# The conclusion of need determination.


ACTIVITIES = "payload.activities"


def act(code: str, count: int, minutes: int) -> dict[str, Any]:
    return {"activity_code": code, "count": count, "minutes": minutes}


def _determine(world: World, case_id: int, payload: dict[str, Any]) -> Any:
    return world.event(case_id, "determine_need", payload, who="coordinator")


def _refused(response: Any, field: str) -> str:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["field"] == field, body
    return str(body["message"])


def test_conclusion_needs_its_activities_for_ipr_and_consultation(world: World) -> None:
    case_id = to_need_determination(world)
    for outcome in ("ipr", "consultation"):
        message = _refused(
            _determine(world, case_id, {"outcome": outcome, "conclusion": "Нужна помощь"}),
            ACTIVITIES,
        )
        assert "не указаны мероприятия" in message
    message = _refused(_determine(world, case_id, need_payload("ipr", forms=[])), "payload.forms")
    assert "форма" in message
    assert world.case(case_id, "coordinator")["state"] == "need_determination"


def test_conclusion_refuses_an_unknown_activity_a_count_over_the_max_and_a_foreign_section(
    world: World,
) -> None:
    case_id = to_need_determination(world)
    unknown = need_payload("ipr", activities=[act("astrology", 1, 30)])
    assert "«astrology» нет в стандарте" in _refused(_determine(world, case_id, unknown), ACTIVITIES)
    too_many = need_payload("ipr", activities=[act("need_determination", 2, 60)])
    assert "не больше 1" in _refused(_determine(world, case_id, too_many), ACTIVITIES)
    too_long = need_payload("ipr", activities=[act("ipr_development", 1, 120)])
    assert "не дольше 90" in _refused(_determine(world, case_id, too_long), ACTIVITIES)
    # A consultation without an ИПРП plans from the section without an ИПРП only.
    foreign = need_payload("consultation", activities=[act("motor_development", 2, 45)])
    assert "без разработки ИПРП" in _refused(_determine(world, case_id, foreign), ACTIVITIES)
    wrong_form = need_payload("ipr", forms=["group"], activities=[act("ipr_development", 1, 60)])
    assert "в формах" in _refused(_determine(world, case_id, wrong_form), ACTIVITIES)
    nothing_for_no_need = need_payload("no_need", activities=[act("ipr_development", 1, 60)])
    _refused(_determine(world, case_id, nothing_for_no_need), ACTIVITIES)
    assert world.case(case_id, "coordinator")["state"] == "need_determination"


def test_conclusion_is_stored_and_shown_on_the_case_with_its_forms_and_activities(world: World) -> None:
    case_id = to_need_determination(world)
    payload = need_payload(
        "consultation",
        "Консультации по развитию речи",
        forms=["in_person", "remote"],
        activities=[
            act("development_counselling", 4, 45),
            act("social_support_counselling", 1, 30),
        ],
    )
    world.advance(case_id, "determine_need", payload, who="coordinator")
    conclusion = world.case(case_id, "curator")["conclusion"]
    assert conclusion["outcome"] == "consultation" and conclusion["text"] == "Консультации по развитию речи"
    assert conclusion["forms"] == ["in_person", "remote"] and conclusion["form_labels"] == [
        "очно",
        "дистанционно",
    ]
    assert [(a["activity_code"], a["count"], a["minutes"]) for a in conclusion["activities"]] == [
        ("development_counselling", 4, 45),
        ("social_support_counselling", 1, 30),
    ]
    assert conclusion["activities"][1]["label"] == LETTER_ACTIVITIES["social_support_counselling"]


def test_no_need_conclusion_sets_nothing(world: World) -> None:
    case_id = to_need_determination(world)
    world.advance(
        case_id, "determine_need", need_payload("no_need", "Развитие по возрасту"), who="coordinator"
    )
    conclusion = world.case(case_id, "coordinator")["conclusion"]
    assert conclusion["outcome"] == "no_need" and conclusion["forms"] == [] and conclusion["activities"] == []


def test_referrer_sees_the_conclusions_activities_only_with_the_familys_consent(world: World) -> None:
    referral = world.refer()
    case_id = referral["case_id"]
    world.advance(case_id, "accept", {"curator_id": world.user_ids["curator"]}, who="coordinator")
    world.advance(
        case_id, "determine_need", need_payload("ipr", "Трудности в развитии движений"), who="coordinator"
    )
    feedback = f"{API}/referrals/{referral['id']}/feedback"

    def text() -> str:
        response = world.client.get(feedback, headers=world.h("referrer"))
        assert response.status_code == 200, response.text
        return "".join(page.extract_text() for page in PdfReader(BytesIO(response.content)).pages)

    assert "Оценка функционирования" not in text()
    response = world.client.post(
        f"{API}/children/{referral['child_id']}/consents",
        json={"kind": "share_with_referrer", "status": "given", "date": date.today().isoformat()},
        headers=world.h("coordinator"),
    )
    assert response.status_code == 201, response.text
    shown = " ".join(text().split())
    assert "Форма предоставления услуг: очно" in shown
    assert "Оценка функционирования ребёнка и его окружения: 2 × 60 мин." in shown


# Forms of an activity and the coded exits.


def test_an_ipr_service_or_a_session_in_a_form_the_activity_does_not_have_is_refused(world: World) -> None:
    case_id = to_need_determination(world)
    response = plan_session(world, case_id, service_code="need_determination", form="group")
    assert response.status_code == 422 and response.json()["field"] == "form"
    world.advance(case_id, "determine_need", need_payload("ipr"), who="coordinator")
    services = [{"service_code": "ipr_development", "form": "group", "count": 1, "minutes": 60}]
    response = world.event(case_id, "approve_ipr", ipr_payload(services=services))
    assert response.status_code == 422 and response.json()["field"] == "payload.services"
    assert "в формах" in response.json()["message"]


def test_decline_and_complete_take_a_reason_code_of_the_standard(world: World) -> None:
    case_id = to_need_determination(world)
    response = world.event(
        case_id, "decline", {"reason_code": "bored"}, reason="Семья отказалась", who="coordinator"
    )
    assert _refused(response, "payload.reason_code").startswith("Неизвестная причина «bored»")
    case = world.advance(
        case_id, "decline", {"reason_code": "distance"}, reason="Далеко ездить", who="coordinator"
    )
    assert case["state"] == "declined"
    assert case["history"][-1]["payload"]["reason_code"] == "distance"

    other = to_need_determination(world)
    world.advance(other, "determine_need", need_payload("consultation"), who="coordinator")
    _refused(world.event(other, "complete", {"reason_code": "declined"}), "payload.reason_code")
    assert world.advance(other, "complete", {"reason_code": "consultations_given"})["state"] == "completed"
    # Optional: a caller that sends none still completes (existing clients keep working).
    third = to_need_determination(world)
    world.advance(third, "determine_need", need_payload("consultation"), who="coordinator")
    assert world.advance(third, "complete")["state"] == "completed"


# The case page: the determine_need form with its rows, the conclusion on the card, coded exits.


def test_case_page_records_the_conclusions_forms_and_activities_and_shows_them(world: World) -> None:
    from tests.test_pages_case import post_event

    case_id = to_need_determination(world)
    sign_in(world.client, "coordinator")
    typed = {"determine_need-outcome": "ipr", "determine_need-conclusion": "Трудности в движении"}
    answer = post_event(world, case_id, "determine_need", typed)
    assert answer.status_code == 422
    assert '<a href="#determine_need-activities">В заключении не указаны мероприятия' in answer.text
    over = {
        **typed,
        "determine_need-form-home": "yes",
        "determine_need-activity-0": "ipr_development",
        "determine_need-count-0": "3",
        "determine_need-minutes-0": "60",
    }
    answer = post_event(world, case_id, "determine_need", over)
    assert answer.status_code == 422 and "не больше 2 по стандарту, указано 3" in answer.text
    assert 'value="3"' in answer.text  # what was typed stays
    answer = post_event(world, case_id, "determine_need", {**over, "determine_need-count-0": "2"})
    assert answer.status_code == 303, answer.text[:500]
    html = world.client.get(f"/cases/{case_id}").text
    assert 'id="h-conclusion"' in html and "на дому" in html
    assert re.search(r"Разработка индивидуальной программы ранней помощи</th><td class=\"num\">2</td>", html)


def test_case_page_declines_with_a_reason_of_the_standard(world: World) -> None:
    from tests.test_pages_case import post_event

    case_id = to_need_determination(world)
    sign_in(world.client, "coordinator")
    page = world.client.get(f"/cases/{case_id}").text
    assert 'id="decline-reason_code"' in page and "Семья выбрала другую организацию" in page
    answer = post_event(world, case_id, "decline", {"decline-reason_code": "nope", "decline-reason": "Отказ"})
    assert answer.status_code == 422 and "Неизвестная причина «nope»" in answer.text
    data = {"decline-reason_code": "other_provider", "decline-reason": "Выбрали частный центр"}
    assert post_event(world, case_id, "decline", data).status_code == 303
    case = world.case(case_id, "coordinator")
    assert case["state"] == "declined" and case["history"][-1]["payload"] == {"reason_code": "other_provider"}


def test_a_regions_own_exit_reasons_are_the_ones_checked(world: World, tmp_path: Path) -> None:
    from tests.standards_override import region_standard

    region = "exits:\n  declined:\n    - code: season\n      label: «Семья уехала на сезон»\n"
    with region_standard(tmp_path, region):
        case_id = to_need_determination(world)
        refused = world.event(case_id, "decline", {"reason_code": "distance"}, reason="x", who="coordinator")
        assert "допустимые: season" in _refused(refused, "payload.reason_code")
        case = world.advance(case_id, "decline", {"reason_code": "season"}, reason="x", who="coordinator")
        assert case["state"] == "declined"
