"""A demo region: organisations of every kind, users of every role, children at every stage.

Built through the same service functions and the same `fire` the API uses, so the demo's history
looks like real work. Loading is idempotent: a second run changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from typing import Any

from sqlmodel import Session, select

from api.deps import Principal
from api.security import hash_password
from api.services.merges import add_demo_duplicate
from api.services.public_registry import demo_public_fields
from api.services.referrals import register
from core.config import Settings
from models.cases import Case, ContactAttempt, ContactChannel
from models.children import Channel, ChildIn, Relation, RepresentativeIn, Sex, snils_with_control
from models.common import today_in, utcnow
from models.organisations import Organisation, OrgKind, Region
from models.referrals import ConsentGiven, ReferralCreate
from models.users import Role, User
from standards import load_standard
from statemachines import fire
from statemachines.guards import age_limit_date

DEMO_REGION = "demo"
DEMO_PASSWORD = "demo"


@cache
def _demo_password_hash() -> str:
    # One Argon2 hash (0.1-0.2 s) per process: the tests seed two demo regions for every test.
    return hash_password(DEMO_PASSWORD)


ORGANISATIONS: list[tuple[str, OrgKind, list[str]]] = [
    ("ГБУЗ «Детская городская поликлиника № 1»", OrgKind.health, []),
    ("ГБУ «Комплексный центр социального обслуживания населения»", OrgKind.social, []),
    ("МБДОУ «Детский сад № 12 „Солнышко“»", OrgKind.education, []),
    ("АНО «Родительский клуб „Вместе“»", OrgKind.ngo, []),
    ("Центральная психолого-медико-педагогическая комиссия", OrgKind.pmpk, []),
    ("Бюро медико-социальной экспертизы № 3", OrgKind.mse, []),
    ("ГКУ «Центр содействия семейному воспитанию „Радуга“»", OrgKind.orphanage, []),
    ("ГБУ «Центр ранней помощи „Первые шаги“»", OrgKind.provider, ["Центральный район", "Северный район"]),
    ("Служба ранней помощи ГБУ «Реабилитационный центр „Надежда“»", OrgKind.provider, ["Южный район"]),
    ("Региональный ресурсно-методический центр ранней помощи", OrgKind.rrmc, []),
]

# login, full name, role, index in ORGANISATIONS
USERS: list[tuple[str, str, Role, int]] = [
    ("referrer", "Смирнова Ольга Петровна", Role.referrer, 0),
    ("social", "Кузнецов Игорь Андреевич", Role.referrer, 1),
    ("coordinator", "Иванова Мария Сергеевна", Role.intake_coordinator, 7),
    ("curator", "Петрова Анна Викторовна", Role.curator, 7),
    ("specialist", "Соколов Дмитрий Олегович", Role.specialist, 7),
    ("head", "Волкова Елена Николаевна", Role.supervisor, 7),
    ("coordinator2", "Морозова Татьяна Ивановна", Role.intake_coordinator, 8),
    ("curator2", "Лебедев Павел Юрьевич", Role.curator, 8),
    ("rrmc", "Новикова Светлана Алексеевна", Role.supervisor, 9),
    ("analyst", "Фёдоров Артём Владимирович", Role.analyst, 9),
    ("admin", "Администратор системы", Role.admin, 9),
    # The ДОО's staff: sees the children coming to it and confirms their enrolment (/enrolments).
    ("kindergarten", "Соловьёва Ирина Михайловна", Role.referrer, 2),
]

CHILDREN: list[tuple[str, str, str, Sex, int, str]] = [
    # last, first, middle, sex, age in months, the state to bring the case to
    ("Алексеев", "Артём", "Игоревич", Sex.male, 8, "referred"),
    ("Белова", "Алёна", "Дмитриевна", Sex.female, 14, "need_determination"),
    ("Васильев", "Матвей", "Сергеевич", Sex.male, 20, "consultation"),
    ("Григорьева", "Ксения", "Павловна", Sex.female, 11, "ipr_development"),
    ("Дмитриев", "Семён", "Алексеевич", Sex.male, 24, "ipr_implementation"),
    ("Ёлкина", "Варвара", "Олеговна", Sex.female, 26, "ipr_assessment"),
    ("Жуков", "Фёдор", "Романович", Sex.male, 34, "transition"),
    ("Зайцева", "Полина", "Ивановна", Sex.female, 18, "suspended"),
    ("Ильин", "Лев", "Николаевич", Sex.male, 33, "completed"),
    ("Козлова", "Ева", "Андреевна", Sex.female, 9, "no_need"),
    ("Лосев", "Марк", "Евгеньевич", Sex.male, 15, "declined"),
    ("Миронова", "София", "Артёмовна", Sex.female, 30, "lost_contact"),
    ("Никитин", "Тимофей", "Викторович", Sex.male, 12, "rejected"),
    ("Орлов", "Егор", "Максимович", Sex.male, 35, "adaptation"),
]

_CONCLUSION = "Выявлены трудности в развитии общения; рекомендована ИПРП."
_IPR: dict[str, Any] = {
    "goals": ["Ребёнок выражает просьбы жестами и словами в повседневных ситуациях"],
    "services": [
        {
            "service_code": "communication_development",
            "specialist_role": "speech_therapist",
            "form": "in_person",
            "count": 24,
            "minutes": 45,
        },
        {"service_code": "family_support", "form": "remote", "count": 6, "minutes": 60},
    ],
}

# What a conclusion sets (344н: forms, kinds of activities, their number and duration), by outcome.
NEED_ACTIVITIES: dict[str, list[dict[str, Any]]] = {
    "ipr": [
        {"activity_code": "functioning_assessment", "count": 2, "minutes": 60},
        {"activity_code": "ipr_development", "count": 1, "minutes": 90},
    ],
    "consultation": [{"activity_code": "development_counselling", "count": 3, "minutes": 45}],
}


def need_payload(outcome: str, conclusion: str) -> dict[str, Any]:
    """A determine_need payload as a coordinator fills it in (no_need sets no activities)."""
    payload: dict[str, Any] = {"outcome": outcome, "conclusion": conclusion}
    if outcome in NEED_ACTIVITIES:
        payload["forms"] = ["in_person", "home"]
        payload["activities"] = [dict(a) for a in NEED_ACTIVITIES[outcome]]
    return payload


# The events that bring a fresh case to each state.
PATHS: dict[str, list[tuple[str, dict[str, Any], str | None]]] = {
    "referred": [],
    "need_determination": [("accept", {}, None)],
    "consultation": [
        ("accept", {}, None),
        ("determine_need", need_payload("consultation", _CONCLUSION), None),
    ],
    "ipr_development": [
        ("accept", {}, None),
        ("determine_need", need_payload("ipr", _CONCLUSION), None),
    ],
    "no_need": [
        ("accept", {}, None),
        ("determine_need", need_payload("no_need", "Развитие соответствует возрасту."), None),
    ],
    "rejected": [("reject", {"reason_code": "outside_service_area"}, None)],
}


def _ipr_payload(today: date, birth: date) -> dict[str, Any]:
    # Six months, or up to the day the child reaches the standard's age limit if that comes first.
    last = age_limit_date(birth, load_standard(DEMO_REGION).age.max_months_at_referral)
    return {
        **_IPR,
        "period_start": today.isoformat(),
        "period_end": min(today + timedelta(days=180), last).isoformat(),
        "parent_agreement": {"agreed": True, "date": today.isoformat(), "document_ref": "Согласие № 17"},
    }


def _path(state: str, today: date, birth: date) -> list[tuple[str, dict[str, Any], str | None]]:
    if state in PATHS:
        return PATHS[state]
    implementation = [*PATHS["ipr_development"], ("approve_ipr", _ipr_payload(today, birth), None)]
    paths: dict[str, list[tuple[str, dict[str, Any], str | None]]] = {
        "ipr_implementation": implementation,
        "ipr_assessment": [*implementation, ("start_assessment", {"kind": "intermediate"}, None)],
        "transition": [
            *implementation,
            ("begin_transition", {"destination": "МБДОУ «Детский сад № 12»"}, None),
        ],
        "adaptation": [
            *implementation,
            ("begin_transition", {"destination": "МБДОУ «Детский сад № 12»"}, None),
            ("enrol", {"enrolled_on": today.isoformat()}, None),
        ],
        # After the final assessment (a child who completes after adaptation needs its months to pass).
        "completed": [
            *implementation,
            ("start_assessment", {"kind": "final"}, None),
            ("complete", {"reason_code": "goals_achieved"}, None),
        ],
        "suspended": [*implementation, ("suspend", {}, "Госпитализация ребёнка")],
        "declined": [
            ("accept", {}, None),
            ("decline", {"reason_code": "moved_away"}, "Семья переезжает в другой регион"),
        ],
        "lost_contact": [("accept", {}, None), ("mark_lost_contact", {}, None)],
    }
    return paths[state]


def _snils(seed: int) -> str:
    return snils_with_control(200_000_000 + seed * 7919)


@dataclass
class Staff:
    region: Region
    orgs: list[Organisation]
    users: dict[str, User]

    def principal(self, login: str) -> Principal:
        user = self.users[login]
        org = next(o for o in self.orgs if o.id == user.organisation_id)
        return Principal(user=user, org=org, timezone=self.region.timezone)


def seed_region(session: Session, code: str, name: str, timezone: str, *, login_prefix: str = "") -> Staff:
    """A region with an organisation of every kind and a user of every role (password: demo)."""
    region = Region(code=code, name=name, timezone=timezone)
    session.add(region)
    session.flush()
    assert region.id is not None
    orgs = [
        Organisation(
            region_id=region.id,
            name=org_name,
            kind=kind,
            service_area=area,
            email=f"{login_prefix}org{i}@example.org",
            phone="+7 800 000-00-00",
        )
        for i, (org_name, kind, area) in enumerate(ORGANISATIONS)
    ]
    session.add_all(orgs)
    session.flush()
    password = _demo_password_hash()
    users = {
        login: User(
            organisation_id=orgs[i].id or 0,
            login=login_prefix + login,
            full_name=full_name,
            role=role,
            email=f"{login_prefix}{login}@example.org",
            password_hash=password,
        )
        for login, full_name, role, i in USERS
    }
    session.add_all(users.values())
    session.flush()
    return Staff(region, orgs, users)


DEMO_TIMEZONE = "Europe/Moscow"
# The setting's own default: the demo's messages link to where `make run` serves.
DEFAULT_PUBLIC_URL: str = Settings.model_fields["public_url"].default


def load_demo(session: Session, public_url: str = DEFAULT_PUBLIC_URL) -> bool:
    """Create the demo region; False if it is already there."""
    if session.exec(select(Region).where(Region.code == DEMO_REGION)).first():
        return False
    staff = seed_region(session, DEMO_REGION, "Демонстрационная область", DEMO_TIMEZONE)
    orgs, users, principal = staff.orgs, staff.users, staff.principal
    demo_public_fields(session, orgs)  # the public provider registry (api/services/public_registry.py)

    # The region's today, as the guards count it (the server's UTC date is a day behind at night).
    today = today_in(DEMO_TIMEZONE)
    provider = orgs[7]
    cases: dict[str, Case] = {}
    for seed, (last, first, middle, sex, months, state) in enumerate(CHILDREN):
        birth = today - timedelta(days=int(months * 30.4))
        body = ReferralCreate(
            provider_id=provider.id or 0,
            child=ChildIn(
                last_name=last,
                first_name=first,
                middle_name=middle,
                sex=sex,
                birth_date=birth,
                snils=_snils(seed + 1),
                municipality="Центральный район",
            ),
            representatives=[
                RepresentativeIn(
                    full_name=f"{last} (законный представитель)",
                    relation=Relation.mother,
                    phone="+7 900 000-00-00",
                    email=f"family{seed}@example.org",
                    preferred_channel=Channel.sms,
                )
            ],
            criteria=["parental_concern"] if seed % 2 else ["development_features", "health_group_4_5"],
            consent_personal_data=ConsentGiven(date=today, document_ref=f"Согласие № {100 + seed}"),
        )
        referral = register(session, principal("referrer"), body, idempotency_key=f"demo-{seed}").referral
        case = session.get(Case, referral.case_id)
        assert case is not None and case.id is not None
        if state == "lost_contact":
            session.add_all(
                ContactAttempt(
                    case_id=case.id,
                    at=utcnow() - timedelta(days=3 - i),
                    channel=ContactChannel.phone,
                    successful=False,
                    recorded_by_id=users["coordinator"].id or 0,
                )
                for i in range(3)
            )
        for event, payload, reason in _path(state, today, birth):
            actor = "coordinator" if event in ("accept", "reject", "determine_need") else "curator"
            if event == "accept":
                payload = {"curator_id": users["curator"].id}
            if event == "begin_transition":
                payload = {**payload, "destination_org_id": orgs[2].id}  # the ДОО: it sees the child
            fire(session, case, event, actor=users[actor], payload=payload, reason=reason)
        cases[state] = case
    _inter_agency(session, staff, cases, public_url)
    # A likely duplicate for the target-group registry's review list (api/services/merges.py).
    add_demo_duplicate(session, principal("social"), principal("coordinator"), orgs[8].id or 0)
    return True


def _inter_agency(session: Session, staff: Staff, cases: dict[str, Case], public_url: str) -> None:
    """The workflows beside the journey, one of each, through the same services as the API: an
    agreement with the social-service centre, a team with an invited social worker, a routing to the
    clinic and a consilium for the child in «Реализация ИПРП», a transfer awaiting the other provider
    for the child in «Оценка реализации ИПРП»."""
    from api.services import agreements, consilia, routings, teams, transfers
    from models.routings import ConsiliumIn, RoutingIn, RoutingKind
    from models.teams import AgreementIn, TeamMemberIn
    from models.transfers import TransferConsentIn, TransferCreate

    orgs, users, principal = staff.orgs, staff.users, staff.principal
    provider, clinic, social, other_provider = orgs[7], orgs[0], orgs[1], orgs[8]
    today = today_in(DEMO_TIMEZONE)
    agreements.create_agreement(
        session,
        principal("admin"),
        AgreementIn(
            provider_id=provider.id or 0,
            partner_org_id=social.id or 0,
            number="РП-1/2026",
            signed_on=today - timedelta(days=60),
        ),
    )
    case = cases["ipr_implementation"]
    curator = principal("curator")
    for login, role in (("specialist", "psychologist"), ("social", "social_worker")):
        teams.add_member(
            session, curator, case, TeamMemberIn(user_id=users[login].id or 0, specialist_role=role)
        )
    routings.create(
        session,
        curator,
        case,
        RoutingIn(
            target_org_id=clinic.id or 0,
            kind=RoutingKind.doctor_consultation,
            purpose="Консультация невролога по направлению консилиума",
        ),
        public_url=public_url,
    )
    consilia.plan(
        session,
        curator,
        case,
        ConsiliumIn(
            scheduled_at=(utcnow() + timedelta(days=3)).replace(hour=8, minute=0, second=0, microsecond=0),
            place="ГБУ «Центр ранней помощи „Первые шаги“», каб. 12",
            agenda="Дополнительное обследование и помощь семье",
            participant_org_ids=[clinic.id or 0, social.id or 0],
        ),
    )
    transfers.request(
        session,
        principal("coordinator"),
        cases["ipr_assessment"],
        TransferCreate(
            to_provider_id=other_provider.id or 0,
            reason="Семья переехала в Южный район",
            consent=TransferConsentIn(date=today, document_ref="Согласие на передачу № 7"),
        ),
    )
