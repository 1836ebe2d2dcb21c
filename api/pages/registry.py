"""The target-group registry's pages: the list, likely duplicates, a merge and its undoing."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
