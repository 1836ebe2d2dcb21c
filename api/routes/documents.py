"""The unified documents of a case as PDF: заключение, ИПРП, рекомендации (api/services/case_documents.py
says which exist and who may get them: exactly who reads the case)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlmodel import Session

from api.deps import Audit, AuditDep, CurrentUser, Principal, SessionDep
from api.openapi import responses
from api.services import case_documents as service
from api.services.case_documents import CaseDocumentsPublic, DocumentKind
from models.common import IdParam

router = APIRouter(tags=["Документы случая"], responses=responses(403))


@router.get(
    "/cases/{case_id}/documents",
    response_model=CaseDocumentsPublic,
    summary="Документы случая: какие есть, их даты и ссылки на PDF",
    responses=responses(404),
)
def list_documents(
    case_id: IdParam, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> CaseDocumentsPublic:
    case, listing = service.case_documents(session, principal, case_id)
    audit("read", "case", case.id, case.child_id)
    return listing


@router.get(
    "/cases/{case_id}/documents/{kind}.pdf",
    response_class=Response,
    summary="Документ случая (PDF): заключение, ИПРП или рекомендации по итогам сопровождения",
    responses={200: {"content": {"application/pdf": {}}}, **responses(404)},
)
def get_document(
    case_id: IdParam, kind: DocumentKind, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> Response:
    return document_pdf(session, principal, audit, case_id, kind)


def document_pdf(
    session: Session, principal: Principal, audit: Audit, case_id: int, kind: DocumentKind
) -> Response:
    """The document as the API and the case page both answer it, its download audited."""
    case, pdf = service.document(session, principal, case_id, kind)
    audit("read", service.AUDIT_ENTITY, case.id, case.child_id)
    return Response(
        pdf,
        media_type="application/pdf",
        # No name of the child in the file name: it travels in logs and browser histories.
        headers={"Content-Disposition": f'inline; filename="{kind.value}-{case.id}.pdf"'},
    )


@router.get(
    "/referrals/{referral_id}/documents/{kind}.pdf",
    response_class=Response,
    summary="Документ случая по направлению (PDF) — для направившей организации, с согласия семьи",
    responses={200: {"content": {"application/pdf": {}}}, **responses(404)},
)
def get_referral_document(
    referral_id: IdParam, kind: DocumentKind, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> Response:
    case, pdf = service.referral_document(session, principal, referral_id, kind)
    audit("read", service.AUDIT_ENTITY, case.id, case.child_id)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{kind.value}-referral-{referral_id}.pdf"'},
    )
