"""Registering a referral: match the child, open a case, hand it to the serving provider, or wait
for that provider to confirm a match whose fields disagree; idempotently. What any answer says is
decided by api/services/disclosure.py."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from api.deps import Principal
from api.scoping import referral_scope
from api.services import disclosure
from core.errors import Conflict, Forbidden, NotFound, Unprocessable
from models.cases import Case
from models.children import Child, ChildIn, LegalRepresentative, RepresentativeIn
from models.common import normalise_name, today_in, utcnow
from models.consents import Consent, ConsentKind, ConsentStatus, consent_date_problem
from models.organisations import Organisation, OrgKind, Region
from models.referrals import (
    ConsentGiven,
    MatchDecision,
    MatchStatus,
    Referral,
    ReferralCreate,
    ReferralPublic,
    SubmittedPublic,
)
from models.users import Role, User
from standards import load_standard
from statemachines import FINAL_STATES, child_facts, open_case
from statemachines.effects import enqueue
from statemachines.guards import age_in_months


@dataclass
class Registered:
    row: Referral
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


IDENTITY_FIELDS = ("last_name", "first_name", "middle_name", "birth_date", "sex")


def _disagreeing(known: Child, sent: ChildIn) -> list[str]:
    """The identity fields in which what was sent disagrees with the known child."""
    differ = []
    for name in IDENTITY_FIELDS:
        a, b = getattr(known, name), getattr(sent, name)
        if name.endswith("_name"):
            a, b = normalise_name(a), normalise_name(b)
        if a != b:
            differ.append(name)
    return differ


def _match_child(session: Session, region_id: int, sent: ChildIn) -> tuple[Child | None, list[str]]:
    """The known child this referral names, and the identity fields that disagree with it.

    A match on СНИЛС whose name, birth date or sex differ, and a match on name and birth date where
    only one side has a СНИЛС, are not certain: they wait for the serving provider (`register`).
    """
    if sent.snils:
        found = session.exec(
            select(Child).where(Child.region_id == region_id, Child.snils == sent.snils)
        ).first()
        if found:
            return found, _disagreeing(found, sent)
    query = select(Child).where(
        Child.region_id == region_id,
        Child.name_key == normalise_name(sent.last_name, sent.first_name, sent.middle_name),
        Child.birth_date == sent.birth_date,
        col(Child.merged_into_id).is_(None),  # a merged record is gone (api/services/merges.py)
    )
    if sent.snils:  # a different СНИЛС means a different child, even with the same name
        query = query.where(col(Child.snils).is_(None))
    found = session.exec(query.order_by(col(Child.id)).limit(1)).first()
    if found is None:
        return None, []
    differ = _disagreeing(found, sent)
    if (found.snils is None) != (sent.snils is None):
        differ.append("snils")
    return found, differ


def publish(session: Session, principal: Principal, referrals: Sequence[Referral]) -> list[ReferralPublic]:
    """Referrals as `principal` may see them (the disclosure rule: api/services/disclosure.py)."""
    return disclosure.referrals_public(session, principal, referrals)


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
    return Registered(earlier, publish(session, principal, [earlier])[0], created=False)


@dataclass
class Checked:
    """A referral that passed every check `register` makes before it writes anything."""

    referring_org_id: int | None
    provider: Organisation
    region: Region
    referral_date: date


def check(session: Session, principal: Principal, body: ReferralCreate) -> Checked:
    """Everything `register` refuses, checked without writing: who refers, to which provider, the
    dates, the consent and the content against the region's standard (Unprocessable/Forbidden).
    The referral form's check-answers page calls it before the referral is sent."""
    referring_org_id = _check_who_refers(principal, body)
    provider, region = _provider(session, principal, body.provider_id)
    referral_date = body.referral_date or today_in(region.timezone)
    if referral_date > today_in(region.timezone):
        raise Unprocessable("Дата направления не может быть в будущем", field="referral_date")
    if body.child.birth_date > today_in(region.timezone):
        raise Unprocessable("Дата рождения не может быть в будущем", field="child.birth_date")
    if body.consent_personal_data and (
        problem := consent_date_problem(
            body.consent_personal_data.date, today=today_in(region.timezone), birth_date=body.child.birth_date
        )
    ):
        raise Unprocessable(problem, field="consent_personal_data.date")
    _check_content(body, region, referral_date)
    return Checked(referring_org_id, provider, region, referral_date)


def providers(session: Session, principal: Principal) -> list[Organisation]:
    """The providers a referral of `principal` may be addressed to (what `check` accepts)."""
    return list(
        session.exec(
            select(Organisation)
            .where(
                Organisation.region_id == principal.org.region_id,
                Organisation.kind == OrgKind.provider,
                col(Organisation.is_active).is_(True),
            )
            .order_by(col(Organisation.name))
        )
    )


def listed(
    session: Session, principal: Principal, limit: int, offset: int
) -> tuple[list[Referral], list[ReferralPublic], int]:
    """The referrals `principal` may list (api/scoping.referral_scope), newest first, as it may see
    them, and how many there are: the API's list and the referrals page."""
    scope = referral_scope(principal)
    total = session.exec(select(func.count()).select_from(Referral).where(scope)).one()
    rows = list(
        session.exec(
            select(Referral).where(scope).order_by(col(Referral.id).desc()).offset(offset).limit(limit)
        )
    )
    return rows, publish(session, principal, rows), total


def visible(session: Session, principal: Principal, referral_id: int) -> Referral:
    """One referral `principal` may see; NotFound otherwise (whether it exists or not)."""
    referral = session.exec(
        select(Referral).where(Referral.id == referral_id, referral_scope(principal))
    ).first()
    if referral is None:
        raise NotFound("Направление не найдено", field="referral_id")
    return referral


def register(
    session: Session, principal: Principal, body: ReferralCreate, idempotency_key: str | None
) -> Registered:
    """Register a referral; what the answer may say is decided by api/services/disclosure.py.

    - No known child matches: a new child and a case at the addressed provider.
    - A known child matches on every identity field: a child in an open case (at any provider) is
      handed to that case (`linked_to_existing`, the serving provider is told); a child with no open
      case gets a new case at the addressed provider if that provider has had a case of it (or it
      has none), else the referral waits for the provider of its latest case, as below.
    - A known child matches but a field disagrees: nothing is linked; the referral waits for the
      provider serving the child (else the one that served it last) to confirm or refuse
      (`decide_match`).
    """
    digest = request_hash(body)
    if idempotency_key and (replayed := _replay(session, principal, idempotency_key, digest)):
        return replayed
    checked = check(session, principal, body)
    provider, region, referral_date = checked.provider, checked.region, checked.referral_date
    assert region.id is not None and provider.id is not None
    referral = Referral(
        child_id=None,
        provider_id=provider.id,
        referring_org_id=checked.referring_org_id,
        created_by_id=principal.id,
        created_by_org_id=principal.org.id,  # type: ignore[arg-type]
        criteria=body.criteria,
        criteria_document_ref=body.criteria_document_ref,
        comment=body.comment,
        referral_date=referral_date,
        submitted=body.model_dump(mode="json", include={"child", "representatives", "consent_personal_data"}),
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
    assert referral.id is not None

    known, differ = _match_child(session, region.id, body.child)
    if known is None:
        child = _new_child(session, region.id, body.child)
        _add_family(session, child, body.representatives, body.consent_personal_data, principal.id)
        _open_own_case(session, referral, child, principal.user)
    elif differ:
        _await_review(session, referral, known, differ, _serving_case(session, known))
    elif (closed := _closed_elsewhere(session, known, provider.id)) is not None:
        # Reusing the child would open its whole record (representatives, consents, history) to
        # the addressed provider (api/scoping.child_scope): the provider that served it decides.
        _await_review(session, referral, known, [], closed)
    else:
        referral.match_status = MatchStatus.exact
        _take_known_child(session, referral, known, body.child, principal.user)
    return Registered(referral, publish(session, principal, [referral])[0], created=True)


def _await_review(
    session: Session, referral: Referral, known: Child, differ: list[str], reviewing: Case
) -> None:
    """Nothing is linked: the referral waits for `reviewing`'s provider to confirm or refuse."""
    referral.match_status = MatchStatus.awaiting_review
    referral.matched_child_id = known.id
    referral.match_mismatch = differ
    referral.match_reviewer_id = reviewing.provider_id
    session.flush()
    enqueue(session, "match_review_requested", case_id=reviewing.id, referral_id=referral.id)


def _new_child(session: Session, region_id: int, sent: ChildIn, *, snils: bool = True) -> Child:
    child = Child(region_id=region_id, **sent.model_dump(exclude=set() if snils else {"snils"}))
    child.refresh_name_key()
    session.add(child)
    session.flush()
    return child


def _add_family(
    session: Session,
    child: Child,
    representatives: Sequence[RepresentativeIn],
    consent: ConsentGiven | None,
    recorded_by_id: int,
) -> None:
    """The representatives (if the child has none yet) and the consent a referral brought."""
    assert child.id is not None
    has_representatives = session.exec(
        select(LegalRepresentative.id).where(LegalRepresentative.child_id == child.id)
    ).first()
    if not has_representatives:
        session.add_all(LegalRepresentative(child_id=child.id, **r.model_dump()) for r in representatives)
    if consent is not None:
        session.add(
            Consent(
                child_id=child.id,
                kind=ConsentKind.personal_data,
                status=ConsentStatus.given,
                date=consent.date,
                document_ref=consent.document_ref,
                recorded_by_id=recorded_by_id,
            )
        )


def _open_own_case(session: Session, referral: Referral, child: Child, actor: User) -> Case:
    assert child.id is not None
    referral.child_id = child.id
    session.flush()
    case = open_case(
        session, child_id=child.id, provider_id=referral.provider_id, referral_id=referral.id, actor=actor
    )
    referral.case_id = case.id
    child_facts.refresh(session, [child.id])
    return case


def _open_case_of(session: Session, child: Child) -> Case | None:
    return session.exec(
        select(Case)
        .where(Case.child_id == child.id, col(Case.state).not_in(FINAL_STATES))
        .order_by(col(Case.id).desc())
    ).first()


def _serving_case(session: Session, child: Child) -> Case:
    """The child's open case, else its latest: its provider knows the child and reviews a match."""
    case = (
        _open_case_of(session, child)
        or session.exec(select(Case).where(Case.child_id == child.id).order_by(col(Case.id).desc())).first()
    )
    assert case is not None, "every child was registered with a case"
    return case


def _closed_elsewhere(session: Session, child: Child, provider_id: int) -> Case | None:
    """The child's latest case, when none is open and `provider_id` has never had one: a
    provider that does not know the child yet must not get its record without the consent of the
    one that served it. None when reusing the child opens nothing new."""
    if _open_case_of(session, child) is not None:
        return None
    cases = session.exec(select(Case).where(Case.child_id == child.id).order_by(col(Case.id).desc())).all()
    if not cases or any(case.provider_id == provider_id for case in cases):
        return None
    return cases[0]


def _take_known_child(
    session: Session,
    referral: Referral,
    known: Child,
    sent: ChildIn,
    actor: User,
    decided_by_org: int | None = None,
) -> None:
    """The referral is about `known`: hand it to the child's open case, or open one of its own.

    The serving provider is told of a referral handed to it, unless it is the one that just
    confirmed the match (`decided_by_org`)."""
    assert known.id is not None and referral.id is not None
    referral.child_id = known.id
    serving = _open_case_of(session, known)
    if serving is not None:
        # The serving provider gets the referral as it was sent (`submitted`); the representatives
        # and consents it records stay its own to change.
        referral.case_id = serving.id
        referral.linked_to_existing = True
        child_facts.refresh(session, [known.id])
        if serving.provider_id != decided_by_org:
            enqueue(session, "referral_handed_over", case_id=serving.id, referral_id=referral.id)
        return
    if known.snils is None and sent.snils and not _snils_taken(session, known.region_id, sent.snils):
        known.snils = sent.snils
    submitted = _submitted(referral)
    _add_family(
        session, known, submitted.representatives, submitted.consent_personal_data, referral.created_by_id
    )
    _open_own_case(session, referral, known, actor)


def _submitted(referral: Referral) -> SubmittedPublic:
    assert referral.submitted is not None
    return SubmittedPublic.model_validate(referral.submitted)


def _snils_taken(session: Session, region_id: int, snils: str) -> bool:
    return (
        session.exec(select(Child.id).where(Child.region_id == region_id, Child.snils == snils)).first()
        is not None
    )


MATCH_DECIDERS = {Role.intake_coordinator, Role.curator, Role.supervisor}


def decide_match(
    session: Session, principal: Principal, referral_id: int, decision: MatchDecision
) -> Referral:
    """The serving provider says whether a referral whose identity fields disagree names its child.

    Confirmed: the referral joins the child's open case (or, with none open now, opens a case for
    that child at the provider it was addressed to). Refused: what was sent becomes a child of its
    own with a case at the addressed provider; a СНИЛС that another child holds is not copied to it
    (one record per СНИЛС), so the provider clarifies it with the family.
    """
    referral = session.exec(
        select(Referral).where(Referral.id == referral_id, referral_scope(principal))
    ).first()
    if referral is None:
        raise NotFound("Направление не найдено", field="referral_id")
    if not (
        principal.is_provider_staff
        and principal.role in MATCH_DECIDERS
        and principal.org.id == referral.match_reviewer_id
    ):
        raise Forbidden(
            "Подтвердить или отклонить совпадение может только координатор, куратор или руководитель "
            "организации, которая сопровождает ребёнка"
        )
    # One decision wins, on both databases: the status moves only from awaiting_review.
    status = MatchStatus.confirmed if decision == MatchDecision.confirm else MatchStatus.refused
    now = utcnow()
    moved = session.execute(
        update(Referral)
        .where(col(Referral.id) == referral.id, col(Referral.match_status) == MatchStatus.awaiting_review)
        .values(match_status=status, match_decided_by_id=principal.id, match_decided_at=now)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("Совпадение по этому направлению уже рассмотрено", field="referral_id")
    session.refresh(referral)
    # The case is opened in the name of whoever registered the referral.
    author = session.get(User, referral.created_by_id)
    assert author is not None
    sent = _submitted(referral)
    if decision == MatchDecision.confirm:
        known = session.get(Child, referral.matched_child_id)
        assert known is not None
        _take_known_child(session, referral, known, sent.child, author, decided_by_org=principal.org.id)
        return referral
    region_id = session.exec(
        select(Organisation.region_id).where(Organisation.id == referral.provider_id)
    ).one()
    keep_snils = not (sent.child.snils and _snils_taken(session, region_id, sent.child.snils))
    child = _new_child(session, region_id, sent.child, snils=keep_snils)
    _add_family(session, child, sent.representatives, sent.consent_personal_data, referral.created_by_id)
    _open_own_case(session, referral, child, author)
    return referral


def feedback_document(session: Session, principal: Principal, referral_id: int) -> tuple[Referral, bytes]:
    """The feedback PDF on a referral `principal` may see (flows/documents.feedback_pdf: what the
    disclosure rule lets the referring organisation know), dated today in the provider's region."""
    from flows.documents import feedback_pdf

    referral = visible(session, principal, referral_id)
    case = session.get(Case, referral.case_id) if referral.case_id else None
    if disclosure.transferred_away(principal, referral, case):
        raise NotFound("Случай передан другой организации: документ у неё", field="referral_id")
    region = session.exec(
        select(Region).join(Organisation).where(Organisation.id == referral.provider_id)
    ).one()
    return referral, feedback_pdf(session, referral_id, today_in(region.timezone))
