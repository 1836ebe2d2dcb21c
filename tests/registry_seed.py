"""Children of the target-group registry written straight into the database (a real one) with a
known journey: their referral, case, conclusion, ИПРП and a held session as asked. Tests of the
registry count what they seeded; the journeys' own code is tested elsewhere."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, select

from models.cases import Case, CaseHistory
from models.children import Child, LegalRepresentative, Relation, Sex
from models.consents import Consent, ConsentKind, ConsentStatus
from models.organisations import Organisation
from models.programmes import Ipr, NeedConclusion, NeedOutcome, ServiceForm, ServiceSession, SessionStatus
from models.referrals import Referral
from statemachines import FINAL_STATES


@dataclass
class Seeded:
    child_id: int
    case_id: int
    referral_id: int


def seed_child(
    engine: Engine,
    *,
    provider_id: int,
    referrer_org_id: int | None,
    user_id: int,
    last: str = "Тестова",
    first: str = "Анна",
    middle: str | None = "Ивановна",
    birth: date | None = None,
    snils: str | None = None,
    municipality: str | None = "Центральный район",
    criteria: tuple[str, ...] = ("parental_concern",),
    referral_date: date | None = None,
    state: str = "referred",
    outcome: NeedOutcome | None = None,
    ipr: bool = False,
    held: bool = False,
    opened_at: datetime | None = None,
    child_id: int | None = None,
) -> Seeded:
    """A child (or another case of `child_id`) with one referral and one case in `state`."""
    today = date.today()
    birth = birth or today - timedelta(days=500)
    referral_date = referral_date or today - timedelta(days=30)
    opened_at = opened_at or datetime.combine(referral_date, time(9), UTC)
    with Session(engine) as session:
        region_id = session.exec(select(Organisation.region_id).where(Organisation.id == provider_id)).one()
        if child_id is None:
            child = Child(
                region_id=region_id,
                last_name=last,
                first_name=first,
                middle_name=middle,
                birth_date=birth,
                sex=Sex.female,
                snils=snils,
                municipality=municipality,
                name_key="",
            )
            child.refresh_name_key()
            session.add(child)
            session.flush()
            session.add(
                LegalRepresentative(
                    child_id=child.id or 0,
                    full_name=f"{last} (мать)",
                    relation=Relation.mother,
                    phone="+7 900 000-00-01",
                    preferred_channel="sms",  # type: ignore[arg-type]
                )
            )
            session.add(
                Consent(
                    child_id=child.id or 0,
                    kind=ConsentKind.personal_data,
                    status=ConsentStatus.given,
                    date=referral_date,
                    document_ref="Согласие",
                    recorded_by_id=user_id,
                )
            )
            child_id = child.id or 0
        referral = Referral(
            child_id=child_id,
            provider_id=provider_id,
            referring_org_id=referrer_org_id,
            created_by_id=user_id,
            created_by_org_id=referrer_org_id or provider_id,
            criteria=list(criteria),
            referral_date=referral_date,
        )
        session.add(referral)
        session.flush()
        case = Case(
            child_id=child_id,
            provider_id=provider_id,
            referral_id=referral.id,
            state=state,
            opened_at=opened_at,
            updated_at=opened_at,
            closed_at=opened_at + timedelta(days=20) if state in FINAL_STATES else None,
        )
        session.add(case)
        session.flush()
        referral.case_id = case.id
        session.add(
            CaseHistory(
                case_id=case.id or 0, from_state=None, to_state="referred", event="refer", at=opened_at
            )
        )
        if outcome is not None:
            session.add(
                NeedConclusion(
                    case_id=case.id or 0,
                    outcome=outcome,
                    text="Заключение",
                    concluded_on=referral_date + timedelta(days=5),
                    author_id=user_id,
                )
            )
        if ipr:
            session.add(
                Ipr(
                    case_id=case.id or 0,
                    period_start=referral_date + timedelta(days=10),
                    period_end=referral_date + timedelta(days=200),
                    goals=["Цель"],
                    parent_agreed_on=referral_date + timedelta(days=10),
                    created_by_id=user_id,
                )
            )
        if held:
            session.add(
                ServiceSession(
                    case_id=case.id or 0,
                    service_code="family_support",
                    form=ServiceForm.in_person,
                    scheduled_at=opened_at + timedelta(days=7),
                    duration_minutes=45,
                    status=SessionStatus.held,
                )
            )
        session.commit()
        return Seeded(child_id=child_id, case_id=case.id or 0, referral_id=referral.id or 0)
