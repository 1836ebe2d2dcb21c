"""The standard of care as data: default.yaml, overridden per region by regions/<code>.yaml."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

STANDARDS_DIR = Path(__file__).resolve().parent


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Coded(_Strict):
    code: str = Field(min_length=1, max_length=64)
    label: str = Field(min_length=1)


class ServiceDef(Coded):
    specialist_roles: list[str] = Field(min_length=1)


class AgeRules(_Strict):
    max_months_at_referral: int = Field(ge=1, le=96)


class ContactRules(_Strict):
    failed_attempts_for_lost_contact: int = Field(ge=1, le=50)


class NeedDeterminationRules(_Strict):
    session_minutes: int = Field(ge=10, le=600)


class MessageTemplate(_Strict):
    sms: str | None = None
    email_subject: str | None = None
    email_body: str | None = None


class Messages(_Strict):
    """Templates by audience: the family, an organisation (provider, pre-school, curator), the referrer."""

    family: dict[str, MessageTemplate]
    organisation: dict[str, MessageTemplate]
    referrer: dict[str, MessageTemplate]


class Standard(_Strict):
    name: str
    age: AgeRules
    contact: ContactRules
    need_determination: NeedDeterminationRules
    criteria: list[Coded] = Field(min_length=1)
    specialist_roles: list[Coded] = Field(min_length=1)
    services: list[ServiceDef] = Field(min_length=1)
    messages: Messages

    @model_validator(mode="after")
    def _services_name_known_roles(self) -> Standard:
        roles = {r.code for r in self.specialist_roles}
        for service in self.services:
            unknown = set(service.specialist_roles) - roles
            if unknown:
                raise ValueError(f"service {service.code}: unknown specialist roles {sorted(unknown)}")
        return self

    @model_validator(mode="after")
    def _templates_compile(self) -> Standard:
        from jinja2 import Environment, TemplateSyntaxError

        env = Environment()
        for audience, templates in self.messages:
            for name, template in templates.items():
                for part in ("sms", "email_subject", "email_body"):
                    source = getattr(template, part)
                    if source is None:
                        continue
                    try:
                        env.parse(source)
                    except TemplateSyntaxError as error:
                        raise ValueError(f"messages.{audience}.{name}.{part}: {error}") from error
        return self

    def criterion_codes(self) -> set[str]:
        return {c.code for c in self.criteria}

    def service(self, code: str) -> ServiceDef | None:
        return next((s for s in self.services if s.code == code), None)

    def criterion_label(self, code: str) -> str:
        return next((c.label for c in self.criteria if c.code == code), code)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the top level must be a mapping")
    return data


_directory = STANDARDS_DIR


def configure(directory: Path) -> None:
    """Read standards from `directory` from now on (settings.standards_dir; tests use their own)."""
    global _directory
    if directory != _directory:
        _directory = directory
        load_standard.cache_clear()


@lru_cache(maxsize=128)
def load_standard(region_code: str | None = None) -> Standard:
    """The default standard, with the region's file laid over it when there is one."""
    directory = _directory
    data = _read(directory / "default.yaml")
    data["messages"] = _read(directory / "messages.yaml")
    if region_code:
        region_file = directory / "regions" / f"{region_code}.yaml"
        if region_file.exists():
            data = _merge(data, _read(region_file))
    return Standard.model_validate(data)
