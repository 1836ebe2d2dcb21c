"""The statistics pages: the region's and a provider's numbers over any period, with charts."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
