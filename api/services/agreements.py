"""Agreements on inter-agency interaction («соглашения о межведомственном взаимодействии»).

The 2025 letter rests an early-help provider's cooperation with other organisations on such
agreements; here one decides whether a partner organisation's staff may join a case's team
(api/services/teams.py). The region's administrator and the РРМЦ supervisor keep them; a provider's
head reads its own. The API (api/routes/teams.py) and the admin pages (api/pages/teams.py) call these.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.orm import aliased
from sqlmodel import Session, and_, col, or_, select

from api.deps import Principal
from core.errors import Conflict, Forbidden, NotFound, Unprocessable
from models.common import today_in, utcnow
from models.organisations import Organisation, OrgKind, Region
from models.teams import Agreement, AgreementIn, AgreementPublic
from models.users import Role


def can_manage(principal: Principal) -> bool:
    return principal.role == Role.admin or principal.is_regional_supervisor


def can_read(principal: Principal) -> bool:
    return can_manage(principal) or (principal.is_provider_staff and principal.role == Role.supervisor)


def require_manager(principal: Principal) -> None:
    if not can_manage(principal):
        raise Forbidden("Соглашения ведут администратор региона и руководитель РРМЦ")


def in_force(today: date) -> Any:
    """SQL: the agreement holds on `today` (signed, not expired, not ended)."""
    return and_(
        col(Agreement.ended_at).is_(None),
        col(Agreement.signed_on) <= today,
        or_(col(Agreement.valid_until).is_(None), col(Agreement.valid_until) >= today),
    )


def region_today(session: Session, region_id: int) -> date:
    region = session.get(Region, region_id)
    assert region is not None
    return today_in(region.timezone)  # the region's today, not the server's


def holds(agreement: Agreement, today: date) -> bool:
    return (
        agreement.ended_at is None
        and agreement.signed_on <= today
        and (agreement.valid_until is None or agreement.valid_until >= today)
    )


def partners_in_force(session: Session, provider_id: int, today: date) -> set[int]:
    """The organisations with an agreement in force with the provider today."""
    rows = session.exec(
        select(Agreement.partner_org_id).where(Agreement.provider_id == provider_id, in_force(today))
    )
    return set(rows)


def _public(
    agreement: Agreement, provider: Organisation, partner: Organisation, today: date
) -> AgreementPublic:
    assert agreement.id is not None
    return AgreementPublic(
        id=agreement.id,
        region_id=agreement.region_id,
        provider_id=agreement.provider_id,
        provider_name=provider.name,
        partner_org_id=agreement.partner_org_id,
        partner_name=partner.name,
        number=agreement.number,
        signed_on=agreement.signed_on,
        valid_until=agreement.valid_until,
        ended_at=agreement.ended_at,
        in_force=holds(agreement, today),
        created_at=agreement.created_at,
    )


def list_agreements(
    session: Session, principal: Principal, *, provider_id: int | None = None
) -> list[AgreementPublic]:
    """The region's agreements (a provider's head: its own), newest first."""
    if not can_read(principal):
        raise Forbidden("Соглашения о взаимодействии недоступны для вашей роли")
    provider = aliased(Organisation)
    partner = aliased(Organisation)
    query = (
        select(Agreement, provider, partner)
        .join(provider, provider.id == Agreement.provider_id)  # type: ignore[arg-type]
        .join(partner, partner.id == Agreement.partner_org_id)  # type: ignore[arg-type]
        .where(Agreement.region_id == principal.org.region_id)
        .order_by(col(Agreement.signed_on).desc(), col(Agreement.id).desc())
    )
    if not can_manage(principal):
        query = query.where(Agreement.provider_id == principal.org.id)
    if provider_id is not None:
        query = query.where(Agreement.provider_id == provider_id)
    today = region_today(session, principal.org.region_id)
    return [_public(a, p, o, today) for a, p, o in session.exec(query)]


def _org_of_region(session: Session, principal: Principal, org_id: int, field: str) -> Organisation:
    org = session.get(Organisation, org_id)
    if org is None or org.region_id != principal.org.region_id:
        raise Unprocessable("Организация не найдена в вашем регионе", field=field)
    return org


def create_agreement(session: Session, principal: Principal, body: AgreementIn) -> AgreementPublic:
    """Records an agreement (flushed, with an id). Raises Forbidden (role) or Unprocessable naming
    the field: the provider is not an early-help provider of the region, the partner is the provider
    itself or of another region, the term ends before the signing."""
    require_manager(principal)
    provider = _org_of_region(session, principal, body.provider_id, "provider_id")
    if provider.kind != OrgKind.provider:
        raise Unprocessable(
            "Соглашение заключает организация, оказывающая раннюю помощь", field="provider_id"
        )
    partner = _org_of_region(session, principal, body.partner_org_id, "partner_org_id")
    if partner.id == provider.id:
        raise Unprocessable("Организация не может заключить соглашение сама с собой", field="partner_org_id")
    if body.valid_until is not None and body.valid_until < body.signed_on:
        raise Unprocessable("Срок действия не может закончиться раньше даты подписания", field="valid_until")
    number = " ".join(body.number.split())
    if not number:
        raise Unprocessable("Укажите номер соглашения", field="number")
    assert principal.user.id is not None
    agreement = Agreement(
        region_id=principal.org.region_id,
        provider_id=body.provider_id,
        partner_org_id=body.partner_org_id,
        number=number,
        signed_on=body.signed_on,
        valid_until=body.valid_until,
        created_by_id=principal.user.id,
    )
    session.add(agreement)
    session.flush()
    return _public(agreement, provider, partner, region_today(session, principal.org.region_id))


def end_agreement(session: Session, principal: Principal, agreement_id: int) -> AgreementPublic:
    """Ends an agreement now; the partner's staff leave the provider's teams at once (membership is
    what opens a case to them), unless another agreement with the partner holds. Raises NotFound or
    Conflict (already ended)."""
    from api.services.teams import end_partner_memberships  # teams imports this module

    require_manager(principal)
    agreement = session.get(Agreement, agreement_id)
    if agreement is None or agreement.region_id != principal.org.region_id:
        raise NotFound("Соглашение не найдено", field="agreement_id")
    if agreement.ended_at is not None:
        raise Conflict("Соглашение уже прекращено", field="agreement_id")
    agreement.ended_at = utcnow()
    session.add(agreement)
    session.flush()
    end_partner_memberships(session, agreement.provider_id, agreement.partner_org_id, agreement.ended_at)
    provider = session.get(Organisation, agreement.provider_id)
    partner = session.get(Organisation, agreement.partner_org_id)
    assert provider is not None and partner is not None
    return _public(agreement, provider, partner, region_today(session, principal.org.region_id))
