"""The public registry of providers (no login): JSON, CSV, QR codes and posters. Nothing about any child."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["Публичный реестр поставщиков ранней помощи"])
