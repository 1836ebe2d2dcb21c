"""The page a family opens from a reminder: confirm the appointment or ask to move it, no login.

The link carries a short code (`/f/<code>`, models/links.py: what the reminder SMS has room for)
or a signed token (`/f/<token>`, links sent before short links); either expires after the
appointment. An expired, unknown or altered link shows a clear page and changes nothing (and its
refusal is audited, api/audit.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlmodel import select

from api.deps import SessionDep
from core.tokens import SESSION_LINK, LinkInvalid, is_short_code, read_session_link
from models.audit import AuditLog
from models.cases import Case
from models.common import utcnow
from models.links import ShortLink
from models.organisations import Organisation, Region
from models.programmes import ServiceSession, SessionStatus
from statemachines.effects import enqueue

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")

ANSWERS = {
    "confirm": ("confirmed", "Спасибо! Вы подтвердили, что придёте."),
    "reschedule": ("reschedule_requested", "Спасибо! Куратор свяжется с вами, чтобы выбрать другое время."),
}


def _page(request: Request, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("title", "Занятие в службе ранней помощи")
    return templates.TemplateResponse(request, "family.html", context, status_code=status)


def _invalid(request: Request, error: LinkInvalid) -> HTMLResponse:
    if error.expired:
        return _page(
            request,
            410,
            title="Ссылка устарела",
            message="Срок действия ссылки истёк. Ничего не изменено. Позвоните, пожалуйста, в службу.",
        )
    return _page(
        request,
        400,
        title="Ссылка недействительна",
        message="Ссылка повреждена или неполная. Ничего не изменено. Позвоните, пожалуйста, в службу.",
    )


def _load(session: SessionDep, session_id: int) -> tuple[ServiceSession, Case, Organisation, Region] | None:
    row = session.exec(
        select(ServiceSession, Case, Organisation, Region)
        .join(Case, Case.id == ServiceSession.case_id)  # type: ignore[arg-type]
        .join(Organisation, Organisation.id == Case.provider_id)  # type: ignore[arg-type]
        .join(Region, Region.id == Organisation.region_id)  # type: ignore[arg-type]
        .where(ServiceSession.id == session_id)
    ).first()
    return tuple(row) if row else None  # type: ignore[return-value]


def _context(found: tuple[ServiceSession, Case, Organisation, Region]) -> dict[str, Any]:
    planned, _, provider, region = found
    local = planned.scheduled_at.astimezone(ZoneInfo(region.timezone))
    return {
        "session": planned,
        "session_at": f"{local:%d.%m.%Y} в {local:%H:%M}",
        "provider_name": provider.name,
        "provider_phone": provider.phone,
        "can_answer": planned.status == SessionStatus.planned and planned.scheduled_at > utcnow(),
    }


def _session_of(token: str, request: Request, session: SessionDep) -> int:
    """The session a family link answers for; LinkInvalid(expired=...) otherwise."""
    if not is_short_code(token):
        return read_session_link(token, request.app.state.keys)
    link = session.exec(
        select(ShortLink).where(ShortLink.code == token, ShortLink.purpose == SESSION_LINK)
    ).first()
    if link is None:
        raise LinkInvalid(expired=False)
    if link.expires_at <= utcnow():
        raise LinkInvalid(expired=True)
    return link.session_id


@router.get("/f/{token}", response_class=HTMLResponse)
def family_page(token: str, request: Request, session: SessionDep) -> HTMLResponse:
    try:
        session_id = _session_of(token, request, session)
    except LinkInvalid as error:
        return _invalid(request, error)
    found = _load(session, session_id)
    if found is None:
        return _invalid(request, LinkInvalid(expired=False))
    context = _context(found)
    if found[0].family_response in ("confirmed", "reschedule_requested"):
        context["message"] = ANSWERS["confirm" if found[0].family_response == "confirmed" else "reschedule"][
            1
        ]
        context["ok"] = True
    elif not context["can_answer"]:
        context["message"] = "Это занятие уже прошло или отменено."
    return _page(request, **context)


@router.post("/f/{token}", response_class=HTMLResponse)
async def family_answer(token: str, request: Request, session: SessionDep) -> HTMLResponse:
    try:
        session_id = _session_of(token, request, session)
    except LinkInvalid as error:
        return _invalid(request, error)
    action = parse_qs((await request.body()).decode("utf-8", "replace")).get("action", [""])[0]
    found = _load(session, session_id)
    if found is None:
        return _invalid(request, LinkInvalid(expired=False))
    context = _context(found)
    if action not in ANSWERS:
        return _page(request, 400, message="Выберите: подтвердить или перенести.", **context)
    if not context["can_answer"]:
        return _page(
            request, 409, message="Это занятие уже прошло или отменено. Ничего не изменено.", **context
        )
    planned, case, _, _ = found
    answer, message = ANSWERS[action]
    first_time = planned.family_response != answer
    planned.family_response, planned.family_response_at = answer, utcnow()
    session.add(planned)
    if answer == "reschedule_requested" and first_time:
        enqueue(session, "reschedule_requested", case_id=case.id, context={"session_id": planned.id})
    session.add(
        AuditLog(
            action="update",
            entity="session",
            entity_id=planned.id,
            child_id=case.child_id,
            client_ip=request.client.host if request.client else None,
            path=f"POST /f/… (семья: {answer})",
        )
    )
    context.update(message=message, ok=True, can_answer=False)
    return _page(request, **context)
