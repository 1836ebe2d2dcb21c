"""The unified documents of a case as PDF: заключение, ИПРП, рекомендации."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["Документы случая"])
