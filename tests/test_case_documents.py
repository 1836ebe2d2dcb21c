"""The unified documents of a case as PDF (заключение, ИПРП, рекомендации at completion): rendered and
read back with pypdf for their text; a document that does not exist yet is a 404 in Russian; only who
reads the case card gets them, each download audited; the recommendations typed at completion, and
what the document says when the adaptation timer completed the case with none; the case card's
«Документы» part with working links."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from pypdf import PdfReader
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from flows.case_documents import NO_RECOMMENDATIONS
from flows.sweeps import sweep_deadlines
from models.audit import AuditLog
from models.cases import CaseHistory
from models.organisations import Organisation
from models.routings import Consilium
from standards import load_standard
from tests.test_adaptation import TODAY, adaptation_deadline, in_transition
from tests.test_journey import ipr_payload, plan_session, to_ipr_implementation, to_need_determination
from tests.test_pages_auth import csrf_of, sign_in
from tests.test_pages_case import version_of
from tests.test_standard_and_ipr_api import _mark
from tests.test_teams import _add, _agreement
from tests.world import API, World

STANDARD = load_standard("demo")
RECOMMENDATIONS = "Продолжать занятия по развитию движений дома; воспитателю ДОО — опора при ходьбе."


def label(code: str) -> str:
    known = STANDARD.service(code)
    assert known is not None
    return known.label


def pdf_text(content: bytes) -> str:
    """The document's text, its line breaks folded into spaces (a table cell may wrap anywhere)."""
    assert content.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(content))
    return re.sub(r"\s+", " ", " ".join(page.extract_text() for page in reader.pages))


def get_pdf(world: World, case_id: int, kind: str, who: str = "curator") -> str:
    response = world.client.get(f"{API}/cases/{case_id}/documents/{kind}.pdf", headers=world.h(who))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == f'inline; filename="{kind}-{case_id}.pdf"'
    return pdf_text(response.content)


def hold_session(world: World, engine: Engine, case_id: int, service_code: str, status: str = "held") -> None:
    planned = plan_session(world, case_id, service_code=service_code)
    assert planned.status_code == 201, planned.text
    _mark(engine, planned.json()["id"], hours_ago=2)
    marked = world.client.patch(
        f"{API}/cases/{case_id}/sessions/{planned.json()['id']}",
        json={"status": status},
        headers=world.h("curator"),
    )
    assert marked.status_code == 200, marked.text


def add_held_consilium(world: World, engine: Engine, case_id: int, recommendations: str) -> None:
    with Session(engine) as session:
        session.add(
            Consilium(
                case_id=case_id,
                provider_id=world.provider_id,
                scheduled_at=datetime.now(UTC) - timedelta(days=1),
                place="Кабинет 3",
                agenda="Трудности в ходьбе",
                status="held",
                decisions="Продолжить программу",
                recommendations=recommendations,
                held_at=datetime.now(UTC) - timedelta(days=1),
                created_by_id=world.user_ids["curator"],
            )
        )
        session.commit()


def completed_case(world: World, engine: Engine, **payload: Any) -> int:
    """A case through its ИПРП to completion: two sessions held, one missed, a consilium held."""
    return finish(world, engine, to_ipr_implementation(world), **payload)


def finish(world: World, engine: Engine, case_id: int, **payload: Any) -> int:
    hold_session(world, engine, case_id, "motor_development")
    hold_session(world, engine, case_id, "motor_development")
    hold_session(world, engine, case_id, "family_support", status="missed")
    add_held_consilium(world, engine, case_id, "Обратиться к неврологу поликлиники")
    world.advance(case_id, "start_assessment", {"kind": "final"})
    body = {
        "reason_code": "goals_achieved",
        "destination": "МБДОУ «Детский сад № 5»",
        "summary": "Ребёнок ходит самостоятельно",
        "recommendations": RECOMMENDATIONS,
        **payload,
    }
    assert world.advance(case_id, "complete", body)["state"] == "completed"
    return case_id


# --- the documents' text -----------------------------------------------------------------------


def test_the_conclusion_names_the_child_the_outcome_the_activities_and_the_line_to_sign(
    world: World, engine: Engine
) -> None:
    case_id = to_ipr_implementation(world)
    child = world.case(case_id)
    text = get_pdf(world, case_id, "conclusion")
    assert "Заключение по итогам определения нуждаемости в ранней помощи" in text
    assert child["child_name"] in text and f"{TODAY:%d.%m.%Y}" in text
    assert "Нуждается в ранней помощи: разработать ИПРП" in text
    assert "Нужна ИПРП" in text and "очно" in text
    assert label("functioning_assessment") in text and "2 × 60 мин." in text
    assert label("ipr_development") in text and "1 × 90 мин." in text
    assert "С заключением ознакомлен(а)" in text
    with Session(engine) as session:
        provider = session.get(Organisation, world.provider_id)
    assert provider is not None and provider.name in text  # the provider that concluded heads it


def test_the_ipr_lists_goals_services_roles_forms_and_the_parents_agreement(world: World) -> None:
    case_id = to_ipr_implementation(world)
    text = get_pdf(world, case_id, "ipr")
    assert "Индивидуальная программа ранней помощи" in text
    assert world.case(case_id)["child_name"] in text
    assert "Ребёнок ходит с опорой на одну руку" in text
    assert label("motor_development") in text and label("family_support") in text
    assert "Инструктор-методист по адаптивной физической культуре" in text
    assert "очно" in text and "дистанционно" in text
    assert "ИПРП № 5" in text and "С программой согласен(на)" in text
    assert "Родитель (законный представитель)" in text and "редакция" not in text


def test_a_revised_ipr_is_printed_as_its_current_edition(world: World) -> None:
    case_id = to_ipr_implementation(world)
    world.advance(case_id, "start_assessment", {"kind": "intermediate"})
    world.advance(case_id, "revise_ipr")
    world.advance(case_id, "approve_ipr", ipr_payload(goals=["Ребёнок поднимается по лестнице"]))
    text = get_pdf(world, case_id, "ipr")
    assert "редакция 2" in text and "Ребёнок поднимается по лестнице" in text
    assert "Ребёнок ходит с опорой на одну руку" not in text


def test_the_recommendations_say_why_where_when_what_was_held_and_what_to_do_next(
    world: World, engine: Engine
) -> None:
    case_id = completed_case(world, engine)
    text = get_pdf(world, case_id, "recommendations")
    assert "Рекомендации по итогам сопровождения" in text
    assert world.case(case_id)["child_name"] in text
    assert "Цели ИПРП достигнуты" in text and "МБДОУ «Детский сад № 5»" in text
    assert RECOMMENDATIONS in text and "Ребёнок ходит самостоятельно" in text
    assert "Обратиться к неврологу поликлиники" in text  # the consilium's
    # Held sessions by activity: two of motor development (45 min each by default: 60), one missed.
    assert re.search(re.escape(label("motor_development")) + r" 2 0 120", text), text
    assert re.search(re.escape(label("family_support")) + r" 0 1 0", text), text
    assert f"{TODAY:%d.%m.%Y}" in text and NO_RECOMMENDATIONS not in text


def test_a_case_completed_by_the_adaptation_timer_says_no_recommendations_were_recorded(
    world: World, engine: Engine
) -> None:
    case_id = in_transition(world, engine)
    world.advance(case_id, "enrol", {"enrolled_on": TODAY.isoformat()})
    due = datetime.fromisoformat(adaptation_deadline(world.case(case_id))["due_at"])
    assert (case_id, "complete") in sweep_deadlines(engine, now=due + timedelta(minutes=1)).fired
    text = get_pdf(world, case_id, "recommendations")
    assert NO_RECOMMENDATIONS in text
    assert "Окончание периода адаптации" in text and "автоматически" in text
    assert "МБДОУ «Детский сад № 12" in text  # the ДОО the child entered
    assert "Ребёнок ходит с опорой на одну руку" in text  # the programme's goals instead


# --- which exist, and who gets them --------------------------------------------------------------


def test_the_listing_says_which_documents_exist_with_their_dates_and_links(
    world: World, engine: Engine
) -> None:
    case_id = to_ipr_implementation(world)
    listed = world.client.get(f"{API}/cases/{case_id}/documents", headers=world.h("curator"))
    assert listed.status_code == 200, listed.text
    items = {d["kind"]: d for d in listed.json()["items"]}
    assert items["conclusion"]["available"] and items["conclusion"]["dated"] == TODAY.isoformat()
    assert items["ipr"]["url"] == f"{API}/cases/{case_id}/documents/ipr.pdf"
    assert items["ipr"]["page_url"] == f"/cases/{case_id}/documents/ipr.pdf"
    recommendations = items["recommendations"]
    assert not recommendations["available"] and recommendations["url"] is None
    assert recommendations["note"] == "Рекомендаций ещё нет: сопровождение не завершено"


def test_a_document_that_does_not_exist_yet_is_404_in_russian(world: World) -> None:
    case_id = to_need_determination(world)
    for kind, words in (("conclusion", "Заключения ещё нет"), ("ipr", "ИПРП ещё не утверждена")):
        missing = world.client.get(f"{API}/cases/{case_id}/documents/{kind}.pdf", headers=world.h("curator"))
        assert missing.status_code == 404 and words in missing.json()["message"], missing.text
    ongoing = to_ipr_implementation(world)
    missing = world.client.get(
        f"{API}/cases/{ongoing}/documents/recommendations.pdf", headers=world.h("curator")
    )
    assert missing.status_code == 404 and "не завершено" in missing.json()["message"]


def test_an_unknown_kind_is_refused_with_the_field(world: World) -> None:
    case_id = to_ipr_implementation(world)
    answer = world.client.get(f"{API}/cases/{case_id}/documents/passport.pdf", headers=world.h("curator"))
    assert answer.status_code == 422 and "conclusion" in answer.text, answer.text
    assert answer.json()["errors"][0]["field"] == "kind"


def test_only_who_reads_the_case_gets_its_documents(world: World) -> None:
    case_id = to_ipr_implementation(world)
    url = f"{API}/cases/{case_id}/documents/ipr.pdf"
    for who in ("coordinator", "head", "rrmc"):
        assert world.client.get(url, headers=world.h(who)).status_code == 200, who
    # Another provider and another region: the case does not exist for them.
    for who in ("coordinator2", "b_coordinator"):
        assert world.client.get(url, headers=world.h(who)).status_code == 404, who
    # The referrer (its door is the referral's feedback, under the family's consent) and the
    # analyst see no case at all; the same answers as GET /cases/{id}.
    for who in ("referrer", "analyst"):
        assert world.client.get(url, headers=world.h(who)).status_code == 403, who
        listed = world.client.get(f"{API}/cases/{case_id}/documents", headers=world.h(who))
        assert listed.status_code == 403, who


def test_an_invited_team_member_of_another_provider_gets_them_while_in_the_team(world: World) -> None:
    """She reads the case card (its conclusion, programme, history) by the case's id while her
    organisation's agreement is in force: its documents too; removed from the team, none."""
    case_id = to_ipr_implementation(world)
    url = f"{API}/cases/{case_id}/documents/ipr.pdf"
    assert world.client.get(url, headers=world.h("curator2")).status_code == 404
    _agreement(world, partner="provider2")
    added = _add(world, case_id, "curator2", "defectologist")
    assert added.status_code == 201, added.text
    assert "Ребёнок ходит с опорой на одну руку" in get_pdf(world, case_id, "ipr", who="curator2")
    member_id = added.json()["members"][1]["id"]
    removed = world.client.post(f"{API}/cases/{case_id}/team/{member_id}/remove", headers=world.h("curator"))
    assert removed.status_code == 200, removed.text
    assert world.client.get(url, headers=world.h("curator2")).status_code == 404


def test_the_referrer_gets_them_by_its_referral_only_with_the_familys_consent(
    world: World, engine: Engine
) -> None:
    """The referrer's door applies the feedback document's rule (api/services/disclosure.py): the
    case its referral opened, the family's latest consent to share given; the child as it sent it,
    and nothing of the provider's consilium."""
    case_id = to_ipr_implementation(world)
    card = world.case(case_id)

    def url(kind: str) -> str:
        return f"{API}/referrals/{card['referral_id']}/documents/{kind}.pdf"

    def consent(status: str) -> None:
        response = world.client.post(
            f"{API}/children/{card['child_id']}/consents",
            json={"kind": "share_with_referrer", "status": status, "date": TODAY.isoformat()},
            headers=world.h("coordinator"),
        )
        assert response.status_code == 201, response.text

    withheld = world.client.get(url("ipr"), headers=world.h("referrer"))
    assert withheld.status_code == 404 and "нет согласия родителя" in withheld.json()["message"]
    consent("given")
    for kind in ("conclusion", "ipr"):
        shared = world.client.get(url(kind), headers=world.h("referrer"))
        assert shared.status_code == 200 and shared.headers["content-type"] == "application/pdf", kind
        assert card["child_name"] in pdf_text(shared.content)
    # Another referring organisation, another provider: the referral does not exist for them.
    for who in ("social", "coordinator2"):
        assert world.client.get(url("ipr"), headers=world.h(who)).status_code == 404, who
    # A withdrawal recorded later stops it at once.
    consent("withdrawn")
    assert world.client.get(url("ipr"), headers=world.h("referrer")).status_code == 404
    consent("given")
    assert "не завершено" in world.client.get(url("recommendations"), headers=world.h("referrer")).text

    finish(world, engine, case_id)
    shared = world.client.get(url("recommendations"), headers=world.h("referrer"))
    assert shared.status_code == 200, shared.text
    text = pdf_text(shared.content)
    assert card["child_name"] in text and RECOMMENDATIONS in text
    assert "Обратиться к неврологу поликлиники" not in text and "Рекомендации консилиума" not in text


def test_each_download_is_audited_with_the_childs_id(world: World, engine: Engine) -> None:
    case_id = to_ipr_implementation(world)
    child_id = world.case(case_id)["child_id"]
    get_pdf(world, case_id, "conclusion", who="head")
    with Session(engine) as session:
        rows = session.exec(
            select(AuditLog).where(AuditLog.entity == "case_document").order_by(col(AuditLog.id))
        ).all()
    assert [(r.action, r.entity_id, r.child_id, r.user_id) for r in rows] == [
        ("read", case_id, child_id, world.user_ids["head"])
    ]
    assert rows[0].path == f"GET {API}/cases/{case_id}/documents/conclusion.pdf"


# --- the recommendations typed at completion -----------------------------------------------------


def test_complete_keeps_the_recommendations_and_refuses_them_too_long(world: World, engine: Engine) -> None:
    case_id = to_ipr_implementation(world)
    world.advance(case_id, "start_assessment", {"kind": "final"})
    too_long = world.event(case_id, "complete", {"recommendations": "а" * 5001})
    assert too_long.status_code == 422, too_long.text
    assert too_long.json()["field"] == "payload.recommendations"
    assert world.case(case_id)["state"] == "ipr_assessment"
    world.advance(case_id, "complete", {"recommendations": "Посещать группу кратковременного пребывания"})
    with Session(engine) as session:
        said = session.exec(
            select(CaseHistory.payload).where(CaseHistory.case_id == case_id, CaseHistory.event == "complete")
        ).one()
    assert said["recommendations"] == "Посещать группу кратковременного пребывания"


# --- the case card -------------------------------------------------------------------------------


def test_the_case_card_has_the_recommendations_field_and_the_documents_part_with_working_links(
    world: World, engine: Engine
) -> None:
    case_id = to_ipr_implementation(world)
    world.advance(case_id, "start_assessment", {"kind": "final"})
    sign_in(world.client, "curator")
    page = world.client.get(f"/cases/{case_id}")
    assert page.status_code == 200
    assert 'name="complete-recommendations"' in page.text
    # Completed through the page's own form, the recommendations typed there.
    form = {
        "csrf": csrf_of(page.text),
        "version": version_of(page.text),
        "complete-reason_code": "goals_achieved",
        "complete-recommendations": "Заниматься с логопедом в ДОО",
    }
    done = world.client.post(f"/cases/{case_id}/events/complete", data=form, follow_redirects=False)
    assert done.status_code == 303, done.text[:500]
    card = world.client.get(f"/cases/{case_id}").text
    assert 'id="h-documents"' in card
    links = re.findall(r'href="(/cases/\d+/documents/(\w+)\.pdf)"', card)
    assert [kind for _, kind in links] == ["conclusion", "ipr", "recommendations"]
    for url, _ in links:
        answer = world.client.get(url)
        assert answer.status_code == 200 and answer.headers["content-type"] == "application/pdf", url
    assert "Заниматься с логопедом в ДОО" in pdf_text(world.client.get(links[2][0]).content)


def test_the_card_of_a_case_without_documents_has_no_part_and_a_stranger_gets_the_404_page(
    world: World,
) -> None:
    case_id = to_need_determination(world)
    sign_in(world.client, "curator")
    assert 'id="h-documents"' not in world.client.get(f"/cases/{case_id}").text
    missing = world.client.get(f"/cases/{case_id}/documents/conclusion.pdf")
    assert missing.status_code == 404 and "Заключения ещё нет" in missing.text
    assert "Документа ещё нет" in missing.text
    ongoing = to_ipr_implementation(world)
    world.client.cookies.clear()
    sign_in(world.client, "referrer")
    assert world.client.get(f"/cases/{ongoing}/documents/ipr.pdf").status_code == 404
