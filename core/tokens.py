"""Signed, expiring links for families (confirm or ask to reschedule an appointment, no login)."""

from __future__ import annotations

from datetime import datetime

import jwt

PURPOSE = "session_response"


def session_link_token(session_id: int, expires_at: datetime, secret: str) -> str:
    return jwt.encode({"sid": session_id, "p": PURPOSE, "exp": expires_at}, secret, algorithm="HS256")


class LinkInvalid(Exception):
    def __init__(self, expired: bool) -> None:
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


def read_session_link(token: str, secret: str) -> int:
    """The session id of a valid link; LinkInvalid(expired=...) otherwise."""
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp", "sid", "p"]})
    except jwt.ExpiredSignatureError as error:
        raise LinkInvalid(expired=True) from error
    except jwt.PyJWTError as error:
        raise LinkInvalid(expired=False) from error
    if claims.get("p") != PURPOSE or not isinstance(claims.get("sid"), int):
        raise LinkInvalid(expired=False)
    return int(claims["sid"])
