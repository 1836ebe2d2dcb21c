"""Accounts' security in one place: the password policy, Argon2 hashing, staff JWTs, hashed API tokens
for systems, and login throttling."""

from __future__ import annotations

import gzip
import hashlib
import logging
import math
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import jwt
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from pwdlib import PasswordHash

from core.config import Settings
from core.tokens import KeyStore, Purpose
from models.common import utcnow

log = logging.getLogger("earlyhelp.api")

TOKEN_PREFIX = "eh_"
_hasher = PasswordHash.recommended()

# The password policy: the CLI, the administrators' API and password resets all call
# password_problem(); login accepts passwords up to the same maximum (LoginIn in api/routes/auth.py).
PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 128
# 20 000 common passwords (lowercased), created by Royce Williams and shipped by Django as
# django/contrib/auth/common-passwords.txt.gz (BSD-3-Clause); copied unchanged from Django 5.2.19.
_COMMON_PASSWORDS = Path(__file__).with_name("common-passwords.txt.gz")
# The Russian keyboard layout typed as if it were the Latin one: "йцукен123" is "qwerty123".
_RU_TO_LATIN_KEYS = str.maketrans("йцукенгшщзхъфывапролджэячсмитьбюё", "qwertyuiop[]asdfghjkl;'zxcvbnm,.`")
# Generated passwords: 16 characters without look-alikes (0/O, 1/l/I), in groups of four.
_GENERATED_ALPHABET = "23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"


@cache
def _common_passwords() -> frozenset[str]:
    with gzip.open(_COMMON_PASSWORDS, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip() for line in lines)


def password_problem(password: str, login: str) -> str | None:
    """Why this password may not be used for this login (in Russian, for the person), or None."""
    if len(password) < PASSWORD_MIN_LENGTH:
        return f"Пароль слишком короткий: нужно не менее {PASSWORD_MIN_LENGTH} символов"
    if len(password) > PASSWORD_MAX_LENGTH:
        return f"Пароль слишком длинный: не более {PASSWORD_MAX_LENGTH} символов"
    folded = password.casefold().strip()
    name = login.casefold().strip()
    if name and (folded == name or (len(name) >= 3 and name in folded)):
        return "Пароль не должен совпадать с логином или содержать его"
    if len(set(folded)) < 4:
        return "В пароле слишком мало разных символов"
    if {folded, folded.translate(_RU_TO_LATIN_KEYS)} & _common_passwords():
        return "Это один из самых распространённых паролей, его подбирают первым; выберите другой"
    return None


def generate_password(login: str) -> str:
    while True:
        chars = [secrets.choice(_GENERATED_ALPHABET) for _ in range(16)]
        password = "-".join("".join(chars[i : i + 4]) for i in range(0, 16, 4))
        if password_problem(password, login) is None:
            return password


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(32))


def verify_password(password: str, hashed: str | None) -> bool:
    """Whether the password matches. Without a hash (an unknown login, an account without a
    password) it checks a dummy hash all the same, so the answer takes as long either way."""
    if not hashed:
        _hasher.verify(password, _dummy_hash())
        return False
    return _hasher.verify(password, hashed)


def new_api_token() -> tuple[str, str]:
    """A new token and the hash to store; the token itself is shown once."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, hash_api_token(token)


def hash_api_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class StaffClaims:
    user_id: int
    jti: str
    expires_at: datetime
    # The user's token_generation when it was issued: raising it ends all of the user's sessions.
    generation: int


def issue_jwt(user_id: int, generation: int, keys: KeyStore, ttl_minutes: int) -> str:
    now = utcnow()
    claims = {
        "sub": str(user_id),
        "iat": now,
        "exp": now + timedelta(minutes=ttl_minutes),
        "jti": secrets.token_hex(16),
        "gen": generation,
    }
    return keys.ring(Purpose.staff).sign(claims)


def read_jwt(token: str, keys: KeyStore) -> StaffClaims | None:
    """The claims of a valid, unexpired staff token (our issuer, the staff audience, a staff key),
    else None."""
    try:
        claims = keys.ring(Purpose.staff).verify(token, require=["sub", "iat", "jti", "gen"])
        jti, generation = claims["jti"], claims["gen"]
        if not isinstance(jti, str) or len(jti) != 32 or not isinstance(generation, int):
            return None
        expires_at = datetime.fromtimestamp(claims["exp"], tz=UTC)
        return StaffClaims(int(claims["sub"]), jti, expires_at, generation)
    except (jwt.PyJWTError, KeyError, ValueError, TypeError, OverflowError):
        return None


class ThrottleUnavailable(Exception):
    """The throttle's shared storage (e.g. Redis) does not answer: logins wait rather than go
    unthrottled."""


class LoginThrottle:
    """Attempts per login (cleared by a success, so in effect failures) and per client address, in a
    moving window (the `limits` library; storage by URI: memory:// in one process, redis://... shared
    by replicas).

    Asked before any password hash is computed, so a flood is turned away cheaply; a window, not a
    lock: the real user can log in again once it has passed."""

    def __init__(self, settings: Settings) -> None:
        self._limiter = MovingWindowRateLimiter(storage_from_string(settings.login_throttle_storage_uri))
        self._per_login = parse(settings.login_failures_per_login)
        self._per_address = parse(settings.login_attempts_per_address)

    @staticmethod
    def _login_key(login: str) -> str:
        # Hashed: logins are personal data and need not sit in a shared store.
        return hashlib.sha256(login.casefold().strip().encode()).hexdigest()

    def admit(self, login: str, address: str) -> int | None:
        """None if the attempt may go on (it counts against the address); else seconds to wait."""
        key = self._login_key(login)
        try:
            # Counted now, not after a failed verification: parallel attempts would otherwise all
            # pass the test before the first failure is counted. A success clears it (succeeded).
            if not self._limiter.hit(self._per_login, "login", key):
                return self._wait(self._per_login, "login", key)
            if not self._limiter.hit(self._per_address, "address", address):
                return self._wait(self._per_address, "address", address)
        except Exception as error:
            log.error("login throttle storage unavailable: %s", type(error).__name__)
            raise ThrottleUnavailable from error
        return None

    def succeeded(self, login: str) -> None:
        """The attempts counted against a login end with its successful sign-in."""
        try:
            self._limiter.clear(self._per_login, "login", self._login_key(login))
        except Exception as error:
            log.error("login throttle storage unavailable: %s", type(error).__name__)
            raise ThrottleUnavailable from error

    def _wait(self, item: RateLimitItem, *identifiers: str) -> int:
        stats = self._limiter.get_window_stats(item, *identifiers)
        return max(1, math.ceil(stats.reset_time - time.time()))
