"""The public pages of the provider registry (no login): the list, a provider's page, QR codes, posters."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
