"""The case documents' part of the case card: заключение, ИПРП, рекомендации as PDF.

The part «Документы» lists the documents the case has, with links the page router serves under the
session cookie (the same service, scoping and audit as the API's, api/routes/documents.py); a case
with none yet shows nothing.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlmodel import Session

from api.deps import Principal, SessionDep
from api.pages import case_sections
from api.pages.web import PageAuditDep, PageUser, render
from api.routes.documents import document_pdf
from api.services import case_documents as service
from api.services.case_documents import DocumentKind
from core.errors import Forbidden, NotFound
from models.cases import Case
from models.common import IdParam

router = APIRouter(include_in_schema=False)


def _load_documents(session: Session, principal: Principal, case: Case) -> dict[str, Any] | None:
    listing = service.listing(session, case)
    if not any(item.available for item in listing.items):
        return None
    return {"items": listing.items}


case_sections.register("documents", "pages/documents/_case_documents.html", _load_documents, order=80)


@router.get("/cases/{case_id}/documents/{kind}.pdf")
def case_document(
    request: Request,
    case_id: IdParam,
    kind: DocumentKind,
    principal: PageUser,
    session: SessionDep,
    audit: PageAuditDep,
) -> Response:
    try:
        return document_pdf(session, principal, audit, case_id, kind)
    except Forbidden as refused:
        # A page never says that a case exists (api/pages/cases.py _visible_case).
        raise NotFound("Случай не найден", field="case_id") from refused
    except NotFound as missing:
        if missing.field != "kind":
            raise
        # The case is the caller's: say which document is not there yet and why.
        context = {"title": "Документа ещё нет", "message": missing.message}
        return render(request, "pages/error.html", context, 404)
