"""Registering a referral: match the child, open a case or link to the open one, idempotently."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from api.deps import Principal
from core.errors import Conflict, Forbidden, Unprocessable
from models.cases import Case
from models.children import Child, LegalRepresentative, full_name
from models.common import normalise_name, today_in
from models.consents import Consent, ConsentKind, ConsentStatus
from models.organisations import Organisation, OrgKind, Region
from models.referrals import Referral, ReferralCreate, ReferralPublic
from models.users import Role
from standards import load_standard
from statemachines import FINAL_STATES, STATE_LABELS, open_case
from statemachines.guards import age_in_months


@dataclass
class Registered:
    referral: ReferralPublic
    created: bool  # False when an Idempotency-Key replayed an earlier submission


def request_hash(body: ReferralCreate) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _provider(session: Session, principal: Principal, provider_id: int) -> tuple[Organisation, Region]:
    row = session.exec(
        select(Organisation, Region).join(Region).where(Organisation.id == provider_id)
    ).first()
    if row is None or row[0].region_id != principal.org.region_id:
        raise Unprocessable("Организация не найдена", field="provider_id")
    if row[0].kind != OrgKind.provider or not row[0].is_active:
        raise Unprocessable("Эта организация не оказывает раннюю помощь", field="provider_id")
    return row[0], row[1]


def _check_who_refers(principal: Principal, body: ReferralCreate) -> int | None:
    """The referring organisation, or None for a self-referral registered by the provider."""
    if body.self_referral:
        if not principal.is_provider_staff or principal.role not in (
            Role.intake_coordinator,
            Role.supervisor,
        ):
            raise Forbidden("Обращение родителя регистрирует координатор организации ранней помощи")
        if body.provider_id != principal.org.id:
            raise Unprocessable("Обращение родителя регистрируется в своей организации", field="provider_id")
        return None
    if principal.role != Role.referrer:
        raise Forbidden("Направлять детей могут специалисты направляющих организаций")
    return principal.org.id


def _check_content(body: ReferralCreate, region: Region, referral_date: date) -> None:
    standard = load_standard(region.code)
    known = standard.criterion_codes()
    for index, code in enumerate(body.criteria):
        if code not in known:
            raise Unprocessable(
                f"Неизвестный критерий «{code}»; допустимые: {', '.join(sorted(known))}",
                field=f"criteria.{index}",
            )
    if len(set(body.criteria)) != len(body.criteria):
        raise Unprocessable("Критерии повторяются", field="criteria")
    if body.child.birth_date > referral_date:
        raise Unprocessable("Дата направления раньше даты рождения", field="referral_date")
    limit = standard.age.max_months_at_referral
    if age_in_months(body.child.birth_date, referral_date) >= limit:
        raise Unprocessable(
            f"На дату направления ребёнку {limit // 12} лет или больше"
            f" (предел стандарта региона — {limit} мес.)",
            field="child.birth_date",
        )


def _match_child(session: Session, region_id: int, body: ReferralCreate) -> Child | None:
    c = body.child
    if c.snils:
        found = session.exec(
            select(Child).where(Child.region_id == region_id, Child.snils == c.snils)
        ).first()
        if found:
            return found
    query = select(Child).where(
        Child.region_id == region_id,
        Child.name_key == normalise_name(c.last_name, c.first_name, c.middle_name),
        Child.birth_date == c.birth_date,
    )
    if c.snils:  # a different СНИЛС means a different child, even with the same name
        query = query.where(col(Child.snils).is_(None))
    return session.exec(query.limit(1)).first()


def publish(session: Session, referrals: Sequence[Referral]) -> list[ReferralPublic]:
    """Referrals as the API shows them; children, organisations and cases loaded in one go each."""
    children = _by_id(session, Child, {r.child_id for r in referrals})
    cases = _by_id(session, Case, {r.case_id for r in referrals if r.case_id})
    org_ids = {r.provider_id for r in referrals} | {c.provider_id for c in cases.values()}
    orgs = _by_id(session, Organisation, org_ids)
    result = []
    for referral in referrals:
        child, provider = children[referral.child_id], orgs[referral.provider_id]
        case = cases.get(referral.case_id) if referral.case_id else None
        assert referral.id is not None
        if referral.linked_to_existing and case is not None:
            message = (
                f"Ребёнок уже сопровождается: случай № {case.id} в организации "
                f"«{orgs[case.provider_id].name}» ({STATE_LABELS[case.state].lower()}). "
                "Направление присоединено к этому случаю."
            )
        else:
            message = f"Направление зарегистрировано. Организация «{provider.name}» свяжется с семьёй."
        result.append(
            ReferralPublic(
                id=referral.id,
                child_id=referral.child_id,
                child_name=full_name(child),
                provider_id=referral.provider_id,
                provider_name=provider.name,
                referring_org_id=referral.referring_org_id,
                self_referral=referral.referring_org_id is None,
                criteria=referral.criteria,
                criteria_document_ref=referral.criteria_document_ref,
                comment=referral.comment,
                referral_date=referral.referral_date,
                case_id=referral.case_id,
                case_state=case.state if case else None,
                case_state_label=STATE_LABELS[case.state] if case else None,
                linked_to_existing=referral.linked_to_existing,
                message=message,
                created_at=referral.created_at,
            )
        )
    return result


def _by_id(session: Session, table: Any, ids: set[Any]) -> dict[Any, Any]:
    if not ids:
        return {}
    return {row.id: row for row in session.exec(select(table).where(col(table.id).in_(ids)))}


def _replay(session: Session, principal: Principal, key: str, digest: str) -> Registered | None:
    earlier = session.exec(
        select(Referral).where(
            Referral.created_by_org_id == principal.org.id, Referral.idempotency_key == key
        )
    ).first()
    if earlier is None:
        return None
    if earlier.request_hash != digest:
        raise Conflict(
            "Этот ключ Idempotency-Key уже использован для другого направления",
            field="Idempotency-Key",
        )
    return Registered(publish(session, [earlier])[0], created=False)


def register(
    session: Session, principal: Principal, body: ReferralCreate, idempotency_key: str | None
) -> Registered:
    digest = request_hash(body)
    if idempotency_key and (replayed := _replay(session, principal, idempotency_key, digest)):
        return replayed
    referring_org_id = _check_who_refers(principal, body)
    provider, region = _provider(session, principal, body.provider_id)
    referral_date = body.referral_date or today_in(region.timezone)
    if referral_date > today_in(region.timezone):
        raise Unprocessable("Дата направления не может быть в будущем", field="referral_date")
    if body.child.birth_date > today_in(region.timezone):
        raise Unprocessable("Дата рождения не может быть в будущем", field="child.birth_date")
    _check_content(body, region, referral_date)

    assert region.id is not None and provider.id is not None
    child = _match_child(session, region.id, body)
    if child is None:
        child = Child(region_id=region.id, **body.child.model_dump())
        child.refresh_name_key()
        session.add(child)
        session.flush()
    elif child.snils is None and body.child.snils:
        child.snils = body.child.snils
    assert child.id is not None
    has_representatives = session.exec(
        select(LegalRepresentative.id).where(LegalRepresentative.child_id == child.id)
    ).first()
    if not has_representatives:
        session.add_all(
            LegalRepresentative(child_id=child.id, **r.model_dump()) for r in body.representatives
        )
    if body.consent_personal_data:
        session.add(
            Consent(
                child_id=child.id,
                kind=ConsentKind.personal_data,
                status=ConsentStatus.given,
                date=body.consent_personal_data.date,
                document_ref=body.consent_personal_data.document_ref,
                recorded_by_id=principal.id,
            )
        )

    open_case_row = session.exec(
        select(Case).where(Case.child_id == child.id, col(Case.state).not_in(FINAL_STATES))
    ).first()
    referral = Referral(
        child_id=child.id,
        provider_id=provider.id,
        referring_org_id=referring_org_id,
        created_by_id=principal.id,
        created_by_org_id=principal.org.id,  # type: ignore[arg-type]
        criteria=body.criteria,
        criteria_document_ref=body.criteria_document_ref,
        comment=body.comment,
        referral_date=referral_date,
        linked_to_existing=open_case_row is not None,
        case_id=open_case_row.id if open_case_row else None,
        idempotency_key=idempotency_key,
        request_hash=digest,
    )
    session.add(referral)
    try:
        session.flush()
    except IntegrityError:
        # A concurrent retry with the same key won the race: answer with its referral.
        session.rollback()
        if idempotency_key and (replayed := _replay(session, principal, idempotency_key, digest)):
            return replayed
        raise
    if open_case_row is None:
        case = open_case(
            session,
            child_id=child.id,
            provider_id=provider.id,
            referral_id=referral.id,
            actor=principal.user,
        )
        referral.case_id = case.id
        session.flush()
    return Registered(publish(session, [referral])[0], created=True)
