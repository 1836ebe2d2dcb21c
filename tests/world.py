"""A test world: two regions with organisations and users of every role, and API helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine

from api.demo import Staff, seed_region
from api.security import new_api_token
from core.db import session_scope
from models.children import snils_with_control
from models.common import today_in
from models.organisations import OrgKind
from models.users import ApiToken

API = "/api/v1"


def region_today() -> date:
    """Today in the demo region (Moscow), as the guards see it: the server's UTC date is a day
    behind from 21:00 UTC, and a date a guard compares with the region's today must be this one."""
    return today_in("Europe/Moscow")


def snils_for(seed: int) -> str:
    return snils_with_control(300_000_000 + seed * 7907)


@dataclass
class World:
    client: TestClient
    tokens: dict[str, str]
    org_ids: dict[str, int]
    user_ids: dict[str, int]
    counter: list[int] = field(default_factory=lambda: [0])

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    @property
    def provider_id(self) -> int:
        return self.org_ids["provider"]

    def referral_body(self, **overrides: Any) -> dict[str, Any]:
        self.counter[0] += 1
        n = self.counter[0]
        body: dict[str, Any] = {
            "provider_id": self.provider_id,
            "child": {
                "last_name": "Ёжикова",
                "first_name": f"Алёна{'а' * n}",
                "middle_name": "Петровна",
                "birth_date": (date.today() - timedelta(days=400)).isoformat(),
                "sex": "female",
                "snils": snils_for(n),
                "municipality": "Центральный район",
            },
            "representatives": [
                {
                    "full_name": "Ёжикова Ирина Ивановна",
                    "relation": "mother",
                    "phone": "+7 900 123-45-67",
                    "email": "mother@example.org",
                    "preferred_channel": "sms",
                }
            ],
            "criteria": ["parental_concern"],
            "consent_personal_data": {"date": date.today().isoformat(), "document_ref": "Согласие № 1"},
        }
        for key, value in overrides.items():
            if key == "child":
                body["child"] = {**body["child"], **value}
            else:
                body[key] = value
        return body

    def refer(self, who: str = "referrer", **overrides: Any) -> dict[str, Any]:
        response = self.client.post(
            f"{API}/referrals", json=self.referral_body(**overrides), headers=self.h(who)
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    def case(self, case_id: int, who: str = "curator") -> dict[str, Any]:
        response = self.client.get(f"{API}/cases/{case_id}", headers=self.h(who))
        assert response.status_code == 200, response.text
        return dict(response.json())

    def event(
        self,
        case_id: int,
        event: str,
        payload: dict[str, Any] | None = None,
        *,
        who: str = "curator",
        reason: str | None = None,
        version: int | None = None,
    ) -> Response:
        if version is None:
            version = self.case(case_id, who)["version"]
        body: dict[str, Any] = {"version": version, "payload": payload or {}}
        if reason is not None:
            body["reason"] = reason
        return self.client.post(f"{API}/cases/{case_id}/events/{event}", json=body, headers=self.h(who))

    def advance(
        self,
        case_id: int,
        event: str,
        payload: dict[str, Any] | None = None,
        *,
        who: str = "curator",
        reason: str | None = None,
    ) -> dict[str, Any]:
        response = self.event(case_id, event, payload, who=who, reason=reason)
        assert response.status_code == 200, response.text
        return dict(response.json())


def build_world(engine: Engine, client: TestClient) -> World:
    tokens: dict[str, str] = {}
    org_ids: dict[str, int] = {}
    user_ids: dict[str, int] = {}
    with session_scope(engine) as session:
        a: Staff = seed_region(session, "demo", "Демонстрационная область", "Europe/Moscow")
        b: Staff = seed_region(session, "other", "Другая область", "Asia/Kamchatka", login_prefix="b_")
        for prefix, staff in (("", a), ("b_", b)):
            for login, user in staff.users.items():
                token, digest = new_api_token()
                session.add(ApiToken(user_id=user.id or 0, name="test", token_hash=digest))
                tokens[prefix + login] = token
                user_ids[prefix + login] = user.id or 0
            providers = [o for o in staff.orgs if o.kind == OrgKind.provider]
            org_ids[prefix + "provider"] = providers[0].id or 0
            org_ids[prefix + "provider2"] = providers[1].id or 0
            org_ids[prefix + "health"] = next(o.id for o in staff.orgs if o.kind == OrgKind.health) or 0
            org_ids[prefix + "rrmc"] = next(o.id for o in staff.orgs if o.kind == OrgKind.rrmc) or 0
    return World(client=client, tokens=tokens, org_ids=org_ids, user_ids=user_ids)
