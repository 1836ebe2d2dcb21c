"""The target-group registry: children identified, in need and served; likely duplicates and their merge."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["Реестр детей целевой группы"])
