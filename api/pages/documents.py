"""The case documents' part of the case card: заключение, ИПРП, рекомендации as PDF."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
