"""The target-group registry: merges of duplicate children, kept so that each can be undone."""

from __future__ import annotations
