"""Merging two records of one child, and undoing it exactly (issue 12: «a merge that keeps every
history and is itself audited and reversible»).

A merge moves everything that hangs on the merged child — its referrals (child_id and
matched_child_id), cases (with their history, conclusions, ИПРП, sessions, deadlines: they hang on
the case), consents and legal representatives — to the kept child, fills the kept child's empty
fields from the merged one, and marks the merged child `merged_into_id` (its row stays). The
ChildMerge row names every row moved and every field filled, so the undo puts back exactly that.

The undo refuses (409) when something happened since that it could not attribute: a row added to the
kept child or taken from it (a new referral, case, consent or representative; a match confirmed), a
filled field changed, or a later merge of the kept child. Merges are undone last-first.

Who: the РРМЦ supervisor for the region's children; a provider's head only for children whose every
case is his organisation's (a merge must not open one provider's record to another), and he undoes
his organisation's merges. Two merges at once do not interleave: both children are locked (FOR
UPDATE on PostgreSQL; SQLite's transactions take the write lock at BEGIN), and merged_into_id moves
by compare-and-set.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from api.deps import Principal
from api.scoping import child_scope
from api.services import registry
from core.errors import Conflict, Forbidden, NotFound, Unprocessable
from models.cases import Case, CaseHistory
from models.children import Child, LegalRepresentative, full_name
from models.common import utcnow
from models.consents import Consent
from models.referrals import Referral
from models.registry import (
    FILLED_FIELDS,
    MERGE_EVENT,
    MOVED_KINDS,
    UNDO_EVENT,
    ChildMerge,
    DistinctChildren,
    DistinctIn,
    DuplicatePair,
    MergeIn,
    MergePublic,
    moved_counts,
)
from models.users import User
from statemachines import FINAL_STATES, child_facts

FILLED_LABELS = {
    "snils": "СНИЛС",
    "middle_name": "отчество",
    "municipality": "район",
    "address": "адрес",
}
KIND_LABELS = {
    "referral": "направления",
    "referral_match": "направления, ожидающие проверки совпадения",
    "case": "случаи",
    "consent": "согласия",
    "legal_representative": "законные представители",
}
# The column of each kind that names the child.
_COLUMNS: dict[str, Any] = {
    "referral": Referral.child_id,
    "referral_match": Referral.matched_child_id,
    "case": Case.child_id,
    "consent": Consent.child_id,
    "legal_representative": LegalRepresentative.child_id,
}
_TABLES: dict[str, Any] = {
    "referral": Referral,
    "referral_match": Referral,
    "case": Case,
    "consent": Consent,
    "legal_representative": LegalRepresentative,
}


# --- who and which children -----------------------------------------------------------------------


def reviewable_child(session: Session, principal: Principal, child_id: int, field: str) -> Child:
    """A non-merged child of the caller's scope for the review (the РРМЦ: the region's; a provider's
    head: those with a case at his provider); NotFound otherwise."""
    registry.require_reviewer(principal)
    child = session.exec(
        select(Child).where(
            Child.id == child_id, child_scope(principal), Child.region_id == principal.org.region_id
        )
    ).first()
    if child is None:
        raise NotFound("Ребёнок не найден", field=field)
    return child


def _locked(session: Session, ids: Sequence[int]) -> dict[int, Child]:
    """The children, locked for this transaction (PostgreSQL; SQLite's BEGIN IMMEDIATE already holds
    the write lock), re-read after the lock so a merge that committed meanwhile is seen."""
    rows = session.exec(
        select(Child)
        .where(col(Child.id).in_(list(ids)))
        .order_by(col(Child.id))
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    return {c.id or 0: c for c in rows}


def _cases_of(session: Session, child_ids: Sequence[int]) -> list[Case]:
    return list(
        session.exec(select(Case).where(col(Case.child_id).in_(list(child_ids))).order_by(col(Case.id)))
    )


def _head_may_merge(principal: Principal, cases: Sequence[Case]) -> None:
    if principal.is_regional_supervisor:
        return
    if any(case.provider_id != principal.org.id for case in cases):
        raise Forbidden(
            "Ребёнка сопровождали и другие организации: объединить записи может только РРМЦ",
            field="merge_child_id",
        )


def _rows_of(session: Session, child_id: int) -> dict[str, list[int]]:
    """The ids of every row that names the child, by kind, sorted."""
    out: dict[str, list[int]] = {}
    for kind in MOVED_KINDS:
        table = _TABLES[kind]
        ids = session.exec(select(table.id).where(_COLUMNS[kind] == child_id).order_by(col(table.id))).all()
        out[kind] = [int(i) for i in ids]
    return out


def _move(session: Session, rows: dict[str, list[int]], to_child: int) -> None:
    for kind in MOVED_KINDS:
        ids = rows.get(kind, [])
        if not ids:
            continue
        table = _TABLES[kind]
        column = _COLUMNS[kind]
        for start in range(0, len(ids), registry.CHUNK):
            session.execute(
                update(table)
                .where(col(table.id).in_(ids[start : start + registry.CHUNK]))
                .values({column.key: to_child})
                .execution_options(synchronize_session=False)
            )


def _history(
    session: Session,
    case_ids: Sequence[int],
    event: str,
    actor: Principal,
    payload: dict[str, Any],
    reason: str | None,
) -> None:
    """A history row on each case: the journey's state does not change (from_state = to_state)."""
    now = utcnow()
    for case in session.exec(select(Case).where(col(Case.id).in_(list(case_ids)))):
        session.add(
            CaseHistory(
                case_id=case.id or 0,
                from_state=case.state,
                to_state=case.state,
                event=event,
                actor_id=actor.id,
                at=now,
                payload=payload,
                reason=reason,
            )
        )


# --- merge ----------------------------------------------------------------------------------------


def merge(session: Session, principal: Principal, body: MergeIn) -> ChildMerge:
    registry.require_reviewer(principal)
    if principal.is_regional_supervisor:
        # The region's РРМЦ is told that a record is already merged (a merge that just won the race)
        # rather than that it does not exist; a provider's head no longer sees it at all (404).
        for child_id in (body.keep_child_id, body.merge_child_id):
            merged = session.exec(
                select(Child.merged_into_id).where(
                    Child.id == child_id, Child.region_id == principal.org.region_id
                )
            ).first()
            if merged is not None:
                raise Conflict("Эта запись уже объединена с другой", field="merge_child_id")
    keep = reviewable_child(session, principal, body.keep_child_id, "keep_child_id")
    gone = reviewable_child(session, principal, body.merge_child_id, "merge_child_id")
    if keep.id == gone.id:
        raise Unprocessable("Выберите две разные записи", field="merge_child_id")
    assert keep.id is not None and gone.id is not None
    keep_id, gone_id = keep.id, gone.id
    locked = _locked(session, [keep_id, gone_id])
    keep, gone = locked[keep_id], locked[gone_id]
    if keep.merged_into_id is not None or gone.merged_into_id is not None:
        raise Conflict("Одна из записей уже объединена с другой", field="merge_child_id")
    if keep.region_id != gone.region_id:
        raise Unprocessable("Записи относятся к разным регионам", field="merge_child_id")
    if keep.snils and gone.snils and keep.snils != gone.snils:
        raise Unprocessable("У записей разные СНИЛС: это разные дети", field="merge_child_id")
    cases = _cases_of(session, [keep_id, gone_id])
    _head_may_merge(principal, cases)
    open_children = {c.child_id for c in cases if c.state not in FINAL_STATES}
    if len(open_children) == 2:
        raise Conflict(
            "У обеих записей есть незавершённые случаи: сначала завершите или отклоните один из них "
            "(например, отклоните направление как дубль), затем объедините записи",
            field="merge_child_id",
        )
    kept_before = _rows_of(session, keep_id)
    moved = _rows_of(session, gone_id)
    _move(session, moved, keep_id)
    filled: dict[str, str] = {}
    for name in FILLED_FIELDS:
        value = getattr(gone, name)
        if value and not getattr(keep, name):
            filled[name] = value
    if "snils" in filled:
        # One record per СНИЛС in a region (uq_child_region_snils): it moves, it is not copied.
        gone.snils = None
        session.flush()
    for name, value in filled.items():
        setattr(keep, name, value)
    keep.refresh_name_key()
    session.flush()
    # Compare-and-set: of two merges of this child at once, one moves it.
    done = session.execute(
        update(Child)
        .where(col(Child.id) == gone.id, col(Child.merged_into_id).is_(None))
        .values(merged_into_id=keep.id)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("Запись уже объединена с другой", field="merge_child_id")
    case_ids = sorted(set(kept_before["case"]) | set(moved["case"]))
    row = ChildMerge(
        region_id=keep.region_id,
        keep_child_id=keep_id,
        merge_child_id=gone_id,
        reason=body.reason,
        merged_by_id=principal.id,
        organisation_id=principal.org.id or 0,
        moved=moved,
        kept_before=kept_before,
        filled=filled,
        case_ids=case_ids,
    )
    session.add(row)
    session.flush()
    payload = {"merge_id": row.id, "kept_child_id": keep.id, "merged_child_id": gone.id}
    _history(session, case_ids, MERGE_EVENT, principal, payload, body.reason)
    child_facts.refresh(session, [keep.id, gone.id])  # the journeys moved: what they say moved
    session.refresh(gone)
    return row


# --- undo -----------------------------------------------------------------------------------------


def _merge_scope(principal: Principal) -> Any:
    registry.require_reviewer(principal)
    if principal.is_regional_supervisor:
        return ChildMerge.region_id == principal.org.region_id
    return ChildMerge.organisation_id == principal.org.id


def get_merge(session: Session, principal: Principal, merge_id: int, *, lock: bool = False) -> ChildMerge:
    query = select(ChildMerge).where(ChildMerge.id == merge_id, _merge_scope(principal))
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    row = session.exec(query).first()
    if row is None:
        raise NotFound("Объединение не найдено", field="merge_id")
    return row


def _describe(kinds: Sequence[str]) -> str:
    return ", ".join(KIND_LABELS[k] for k in kinds)


def undo(session: Session, principal: Principal, merge_id: int, reason: str | None) -> ChildMerge:
    row = get_merge(session, principal, merge_id, lock=True)
    if row.undone_at is not None:
        raise Conflict("Это объединение уже отменено", field="merge_id")
    locked = _locked(session, [row.keep_child_id, row.merge_child_id])
    keep, gone = locked[row.keep_child_id], locked[row.merge_child_id]
    if keep.merged_into_id is not None:
        raise Conflict(
            "Оставленная запись сама объединена с другой: сначала отмените то, более позднее объединение",
            field="merge_id",
        )
    if gone.merged_into_id != keep.id:
        raise Conflict("Запись уже не объединена с этой", field="merge_id")
    later = session.exec(
        select(ChildMerge.id).where(
            ChildMerge.keep_child_id == row.keep_child_id,
            col(ChildMerge.id) > row.id,
            col(ChildMerge.undone_at).is_(None),
        )
    ).first()
    if later is not None:
        raise Conflict(
            "К оставленной записи позже присоединена ещё одна: "
            "сначала отмените то, более позднее объединение",
            field="merge_id",
        )
    now_rows = _rows_of(session, keep.id or 0)
    changed = [
        kind
        for kind in MOVED_KINDS
        if sorted(now_rows[kind]) != sorted(set(row.kept_before.get(kind, [])) | set(row.moved.get(kind, [])))
    ]
    if changed:
        raise Conflict(
            "После объединения у ребёнка изменились записи ("
            + _describe(changed)
            + "): отменить объединение нельзя, неизвестно, к какой из двух записей их отнести",
            field="merge_id",
        )
    altered = [name for name, value in row.filled.items() if getattr(keep, name) != value]
    if altered:
        raise Conflict(
            "После объединения изменены сведения о ребёнке ("
            + ", ".join(FILLED_LABELS.get(n, n) for n in altered)
            + "): отменить объединение нельзя",
            field="merge_id",
        )
    _move(session, row.moved, gone.id or 0)
    for name in row.filled:
        setattr(keep, name, None)
    keep.refresh_name_key()
    session.flush()
    if "snils" in row.filled:
        gone.snils = row.filled["snils"]
    gone.merged_into_id = None
    session.flush()
    now = utcnow()
    undone = session.execute(
        update(ChildMerge)
        .where(col(ChildMerge.id) == row.id, col(ChildMerge.undone_at).is_(None))
        .values(undone_at=now, undone_by_id=principal.id, undo_reason=reason)
        .execution_options(synchronize_session=False)
    )
    if undone.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("Это объединение уже отменено", field="merge_id")
    payload = {"merge_id": row.id, "kept_child_id": keep.id, "merged_child_id": gone.id}
    _history(session, row.case_ids, UNDO_EVENT, principal, payload, reason)
    child_facts.refresh(session, [keep.id, gone.id])
    session.refresh(row)
    return row


# --- reading merges ---------------------------------------------------------------------------------


def merges(session: Session, principal: Principal, *, limit: int = 200) -> list[ChildMerge]:
    return list(
        session.exec(
            select(ChildMerge).where(_merge_scope(principal)).order_by(col(ChildMerge.id).desc()).limit(limit)
        )
    )


def public(session: Session, rows: Sequence[ChildMerge]) -> list[MergePublic]:
    child_ids = {i for r in rows for i in (r.keep_child_id, r.merge_child_id)}
    user_ids = {r.merged_by_id for r in rows}
    children = (
        {c.id: c for c in session.exec(select(Child).where(col(Child.id).in_(child_ids)))} if rows else {}
    )
    users = (
        dict(session.exec(select(User.id, User.full_name).where(col(User.id).in_(user_ids))).all())
        if rows
        else {}
    )
    return [
        MergePublic(
            id=r.id or 0,
            keep_child_id=r.keep_child_id,
            merge_child_id=r.merge_child_id,
            keep_child_name=full_name(children[r.keep_child_id]),
            merge_child_name=full_name(children[r.merge_child_id]),
            reason=r.reason,
            merged_by_id=r.merged_by_id,
            merged_by_name=users.get(r.merged_by_id, "—"),
            merged_at=r.merged_at,
            moved=moved_counts(r.moved),
            filled_fields=list(r.filled),
            filled_labels=[FILLED_LABELS.get(n, n) for n in r.filled],
            undone_at=r.undone_at,
            undone_by_id=r.undone_by_id,
            undo_reason=r.undo_reason,
        )
        for r in rows
    ]


# --- a pair, and «разные дети» ----------------------------------------------------------------------


def pair(session: Session, principal: Principal, first_id: int, second_id: int) -> DuplicatePair:
    """Two children side by side (the pair page): any two of the caller's scope, not only the
    review list's."""
    first = reviewable_child(session, principal, first_id, "first_child_id")
    second = reviewable_child(session, principal, second_id, "second_child_id")
    if first.id == second.id:
        raise Unprocessable("Выберите две разные записи", field="second_child_id")
    found = registry.sides(session, principal, [first_id, second_id])
    diff = registry.differing(first, second)
    if first.birth_date == second.birth_date and first.name_key == second.name_key:
        strength = "strong"
    elif first.birth_date == second.birth_date and (
        first.name_key.startswith(second.name_key + " ") or second.name_key.startswith(first.name_key + " ")
    ):
        strength = "weak"
    else:
        strength = "chosen"
    return DuplicatePair(
        first=registry.side(principal, found, first_id),
        second=registry.side(principal, found, second_id),
        strength=strength,
        strength_label=registry.STRENGTH_LABELS.get(strength, "Записи выбраны вручную"),
        differing=diff,
        differing_labels=[registry.DIFF_LABELS[d] for d in diff],
    )


def mark_distinct(session: Session, principal: Principal, body: DistinctIn) -> DistinctChildren:
    first = reviewable_child(session, principal, body.first_child_id, "first_child_id")
    second = reviewable_child(session, principal, body.second_child_id, "second_child_id")
    if first.id == second.id:
        raise Unprocessable("Выберите две разные записи", field="second_child_id")
    low, high = sorted((first.id or 0, second.id or 0))
    if session.exec(
        select(DistinctChildren.id).where(
            DistinctChildren.child_low_id == low, DistinctChildren.child_high_id == high
        )
    ).first():
        raise Conflict("Эти записи уже отмечены как разные дети", field="second_child_id")
    row = DistinctChildren(
        region_id=first.region_id,
        child_low_id=low,
        child_high_id=high,
        reason=(body.reason or "").strip() or None,
        marked_by_id=principal.id,
        organisation_id=principal.org.id or 0,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError as error:  # the same pair marked at the same moment
        raise Conflict("Эти записи уже отмечены как разные дети", field="second_child_id") from error
    return row


def unmark_distinct(session: Session, principal: Principal, distinct_id: int) -> DistinctChildren:
    """The pair comes back to the review list (the audit log keeps that it was marked)."""
    registry.require_reviewer(principal)
    query = select(DistinctChildren).where(DistinctChildren.id == distinct_id)
    if principal.is_regional_supervisor:
        query = query.where(DistinctChildren.region_id == principal.org.region_id)
    else:
        query = query.where(DistinctChildren.organisation_id == principal.org.id)
    row = session.exec(query).first()
    if row is None:
        raise NotFound("Отметка не найдена", field="distinct_id")
    session.delete(row)
    session.flush()
    return row


def distinct_pairs(session: Session, principal: Principal, *, limit: int = 200) -> list[DistinctChildren]:
    registry.require_reviewer(principal)
    query = select(DistinctChildren)
    if principal.is_regional_supervisor:
        query = query.where(DistinctChildren.region_id == principal.org.region_id)
    else:
        query = query.where(DistinctChildren.organisation_id == principal.org.id)
    return list(session.exec(query.order_by(col(DistinctChildren.id).desc()).limit(limit)))


def preview(session: Session, keep_id: int, merge_id: int) -> dict[str, Any]:
    """What a merge would move and fill (the check-answers screen); the caller checked the scope."""
    keep, gone = session.get(Child, keep_id), session.get(Child, merge_id)
    assert keep is not None and gone is not None
    moved = _rows_of(session, merge_id)
    return {
        "moved": {kind: len(ids) for kind, ids in moved.items()},
        "filled": [name for name in FILLED_FIELDS if getattr(gone, name) and not getattr(keep, name)],
    }


# --- the demo -------------------------------------------------------------------------------------


def add_demo_duplicate(session: Session, referrer: Principal, reviewer: Principal, provider_id: int) -> None:
    """A likely duplicate for the demo's review list, made the way one arises: a second referral
    of a child whose case is closed (Ильин Лев Николаевич), sent without the СНИЛС to the other
    provider; the provider that served him refuses the match, so the referral registers a child of
    its own. The РРМЦ sees the pair in «Вероятные дубликаты» and may merge it (one case is open)."""
    from api.services.referrals import decide_match, register
    from models.children import ChildIn, Sex
    from models.common import normalise_name
    from models.referrals import MatchDecision, MatchStatus, ReferralCreate

    known = session.exec(
        select(Child).where(
            Child.region_id == referrer.org.region_id,
            Child.name_key == normalise_name("Ильин", "Лев", "Николаевич"),
        )
    ).first()
    if known is None:
        return
    body = ReferralCreate(
        provider_id=provider_id,
        child=ChildIn(
            last_name="ИЛЬИН",
            first_name="Лев",
            middle_name="Николаевич",
            birth_date=known.birth_date,
            sex=Sex.male,
            municipality="Южный район",
        ),
        criteria=["development_features"],
    )
    referral = register(session, referrer, body, idempotency_key="demo-duplicate").row
    if referral.match_status == MatchStatus.awaiting_review and referral.id is not None:
        decide_match(session, reviewer, referral.id, MatchDecision.refuse)
