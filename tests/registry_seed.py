"""Children of the target-group registry written straight into the database (a real one) with a
known journey: their referral, case, conclusion, ИПРП and a held session as asked. Tests of the
registry count what they seeded; the journeys' own code is tested elsewhere."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from models.cases import Case, CaseHistory
from models.children import Child, LegalRepresentative, Relation, Sex
from models.consents import Consent, ConsentKind, ConsentStatus
from models.organisations import Organisation
from models.programmes import Ipr, NeedConclusion, NeedOutcome, ServiceForm, ServiceSession, SessionStatus
from models.referrals import Referral
from statemachines import FINAL_STATES, child_facts


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
        # Written here as the journey's doors write it, the child's facts with it.
        child_facts.refresh(session, [child_id])
        session.commit()
        return Seeded(child_id=child_id, case_id=case.id or 0, referral_id=referral.id or 0)


def facts_from_journeys(session: Session, child_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """What the journeys say of each child, counted here from their rows (not child_facts' SQL)."""
    wanted = set(child_ids)
    referrals = [r for r in session.exec(select(Referral)) if r.child_id in wanted]
    child_of = {c.id: c.child_id for c in session.exec(select(Case)) if c.child_id in wanted}
    needing = {
        child_of[case_id]
        for case_id, outcome in session.exec(select(NeedConclusion.case_id, NeedConclusion.outcome))
        if case_id in child_of and outcome in (NeedOutcome.ipr, NeedOutcome.consultation)
    }
    held = session.exec(select(ServiceSession.case_id).where(ServiceSession.status == SessionStatus.held))
    served = {child_of[i] for i in held if i in child_of}
    served |= {child_of[i] for i in session.exec(select(Ipr.case_id)) if i in child_of}
    out: dict[int, dict[str, Any]] = {}
    for child_id in wanted:
        own = [r for r in referrals if r.child_id == child_id]
        dates = [r.referral_date for r in own]
        out[child_id] = {
            "in_need": child_id in needing,
            "served": child_id in served,
            "referral_criteria": sorted({code for r in own for code in r.criteria}),
            "first_referred_on": min(dates, default=None),
            "last_referred_on": max(dates, default=None),
        }
    return out


def stored_facts(session: Session, child_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The facts kept on the children's rows (the criteria sorted: a set)."""
    out: dict[int, dict[str, Any]] = {}
    for child in session.exec(select(Child).where(col(Child.id).in_(list(child_ids)))):
        out[child.id or 0] = {
            "in_need": child.in_need,
            "served": child.served,
            "referral_criteria": sorted(child.referral_criteria),
            "first_referred_on": child.first_referred_on,
            "last_referred_on": child.last_referred_on,
        }
    return out
