"""The reports' pages: start a yearly form 1-РП, watch its progress, download XLSX and PDF."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
