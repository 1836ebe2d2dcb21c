"""Signing in and out, for the API's token and the pages' session cookie alike."""

from __future__ import annotations

from sqlalchemy import delete, update
from sqlmodel import Session, select

from api.deps import Principal, Unauthorized
from api.security import LoginThrottle, verify_password
from core.errors import DomainError
from models.common import utcnow
from models.users import ApiToken, RevokedToken, User


class TooManyAttempts(DomainError):
    status_code = 429
    code = "too_many_attempts"

    def __init__(self, wait: int) -> None:
        minutes = max(1, -(-wait // 60))
        super().__init__(f"Слишком много попыток входа. Повторите через {minutes} мин.", retry_after=wait)
        self.wait = wait


def authenticate(session: Session, throttle: LoginThrottle, login: str, password: str, address: str) -> User:
    """The user whose login and password these are. Raises TooManyAttempts, Unauthorized, or
    api.security.ThrottleUnavailable when the throttle's storage cannot be reached."""
    # Before the password hash: a flood of attempts is turned away without costing Argon2 time.
    wait = throttle.admit(login, address)
    if wait is not None:
        raise TooManyAttempts(wait)
    user = session.exec(select(User).where(User.login == login)).first()
    usable = user is not None and user.is_active and user.password_hash
    # One Argon2 verification whatever the login: an unknown, disabled or password-less account
    # answers in the same time as a known one, so logins cannot be found by timing.
    verified = verify_password(password, user.password_hash if user and usable else None)
    if not (user and usable and verified):
        raise Unauthorized("Неверный логин или пароль", field="login")
    throttle.succeeded(login)
    return user


def end_session(session: Session, principal: Principal) -> None:
    """Revoke what the caller presented: a session JWT until it expires, an API token for good."""
    credential = principal.credential
    assert credential is not None
    now = utcnow()
    if credential.api_token_id is not None:
        session.execute(update(ApiToken).where(ApiToken.id == credential.api_token_id).values(revoked_at=now))  # type: ignore[arg-type]
    elif credential.jti is not None and credential.expires_at is not None:
        # Rows of tokens that have expired anyway are no longer needed.
        session.execute(delete(RevokedToken).where(RevokedToken.expires_at < now))  # type: ignore[arg-type]
        session.add(RevokedToken(jti=credential.jti, user_id=principal.id, expires_at=credential.expires_at))
