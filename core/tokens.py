"""Signing keys and the tokens signed with them: staff sessions (JWT) and family links.

Two key rings, one per purpose, so that a family link never passes as a staff token nor the reverse
(each purpose also has its own audience). Every key has an id, written as `kid` in the JWT header.

Where keys live:
- settings: EARLYHELP_SECRET_KEY (staff) and EARLYHELP_FAMILY_LINK_KEY (family) — the current key,
  its id derived from its value; EARLYHELP_SECRET_KEYS_PREVIOUS / EARLYHELP_FAMILY_LINK_KEYS_PREVIOUS
  hold earlier values that are still accepted until the operator removes them;
- otherwise var_dir/keys/<purpose>.json (0600, folder 0700), created on first use. `earlyhelp keys
  rotate <purpose>` adds a new current key there; the key it replaces is accepted for as long as a
  token it signed can live (staff: EARLYHELP_JWT_TTL_MINUTES; family: EARLYHELP_FAMILY_LINK_MAX_DAYS)
  and is then dropped from the file.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from threading import Lock
from typing import Any

import jwt

from core.config import Settings, make_private_dir
from models.common import utcnow

ISSUER = "earlyhelp"
ALGORITHM = "HS256"


class Purpose(StrEnum):
    staff = "staff"
    family = "family"


AUDIENCE: dict[Purpose, str] = {Purpose.staff: "earlyhelp:staff", Purpose.family: "earlyhelp:family"}


@dataclass(frozen=True)
class SigningKey:
    kid: str
    secret: str
    created_at: datetime
    # When a newer key replaced it; None for the current key.
    retired_at: datetime | None = None


@dataclass(frozen=True)
class KeyRing:
    """The keys of one purpose: the current one signs, every accepted one verifies."""

    purpose: Purpose
    keys: tuple[SigningKey, ...]  # the current key first
    # The longest a token of this purpose can live: how long a retired key stays accepted.
    lifetime: timedelta
    # Keys from settings are accepted until removed from the settings; file keys for `lifetime`.
    from_settings: bool = False

    @property
    def current(self) -> SigningKey:
        return self.keys[0]

    def accepted(self, kid: object, now: datetime | None = None) -> SigningKey | None:
        now = now or utcnow()
        for key in self.keys:
            if key.kid == kid and (
                self.from_settings or key.retired_at is None or now < key.retired_at + self.lifetime
            ):
                return key
        return None

    def sign(self, claims: dict[str, Any]) -> str:
        key = self.current
        body = {**claims, "iss": ISSUER, "aud": AUDIENCE[self.purpose]}
        return jwt.encode(body, key.secret, algorithm=ALGORITHM, headers={"kid": key.kid})

    def verify(self, token: str, require: list[str]) -> dict[str, Any]:
        """The claims of a token signed by an accepted key of this ring, for this purpose's audience
        and our issuer; jwt.PyJWTError otherwise (ExpiredSignatureError when only its time is over)."""
        key = self.accepted(jwt.get_unverified_header(token).get("kid"))
        if key is None:
            raise jwt.InvalidTokenError("unknown or dropped key")
        claims: dict[str, Any] = jwt.decode(
            token,
            key.secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE[self.purpose],
            issuer=ISSUER,
            options={"require": ["exp", "iss", "aud", *require]},
        )
        return claims


def _settings_kid(secret: str) -> str:
    return "cfg-" + hashlib.sha256(secret.encode()).hexdigest()[:12]


def _new_key(now: datetime) -> SigningKey:
    return SigningKey(kid=secrets.token_hex(8), secret=secrets.token_urlsafe(48), created_at=now)


@dataclass
class KeyStore:
    """Both key rings of one installation; file keys are re-read when the file changes, so a
    rotation by `earlyhelp keys rotate` reaches running servers and workers without a restart."""

    var_dir: Path
    settings_keys: dict[Purpose, tuple[str, tuple[str, ...]]]
    lifetimes: dict[Purpose, timedelta]
    _cache: dict[Purpose, tuple[tuple[int, int], KeyRing]] = field(default_factory=dict)
    _lock: Lock = field(default_factory=Lock)

    def path(self, purpose: Purpose) -> Path:
        return self.var_dir / "keys" / f"{purpose}.json"

    def ring(self, purpose: Purpose) -> KeyRing:
        current, previous = self.settings_keys[purpose]
        if current:
            now = utcnow()
            keys = tuple(SigningKey(_settings_kid(s), s, now) for s in (current, *previous) if s)
            return KeyRing(purpose, keys, self.lifetimes[purpose], from_settings=True)
        path = self.path(purpose)
        try:
            stat = path.stat()
        except FileNotFoundError:
            self.ensure(purpose)
            stat = path.stat()
        stamp = (stat.st_ino, stat.st_mtime_ns)
        with self._lock:
            cached = self._cache.get(purpose)
            if cached is not None and cached[0] == stamp:
                return cached[1]
        keys = _read(path)
        if not keys:
            raise ValueError(f"в файле ключей {path} нет ни одного ключа")
        ring = KeyRing(purpose, keys, self.lifetimes[purpose])
        with self._lock:
            self._cache[purpose] = (stamp, ring)
        return ring

    def ensure(self, purpose: Purpose) -> None:
        """Create the key file with its first key, unless the keys come from settings or it exists."""
        if self.settings_keys[purpose][0]:
            return
        path = self.path(purpose)
        with _locked(path.parent):
            if not path.exists():
                _write(path, (_new_key(utcnow()),))

    def rotate(self, purpose: Purpose) -> SigningKey:
        """A new current key; the previous one retires now, keys retired longer ago than a token
        lives are dropped."""
        if self.settings_keys[purpose][0]:
            name = "EARLYHELP_SECRET_KEY" if purpose == Purpose.staff else "EARLYHELP_FAMILY_LINK_KEY"
            raise ValueError(
                f"ключ задан настройкой {name}: задайте новое значение, а прежнее перенесите "
                f"в {name.replace('_KEY', '_KEYS')}_PREVIOUS"
            )
        path = self.path(purpose)
        lifetime = self.lifetimes[purpose]
        now = utcnow()
        with _locked(path.parent):
            old = _read(path) if path.exists() else ()
            kept = [
                replace(k, retired_at=k.retired_at or now)
                for k in old
                if k.retired_at is None or now < k.retired_at + lifetime
            ]
            new = _new_key(now)
            _write(path, (new, *kept))
        return new


def key_store(settings: Settings) -> KeyStore:
    return _key_store(
        settings.var_dir.resolve(),
        settings.secret_key,
        tuple(settings.secret_keys_previous),
        settings.family_link_key,
        tuple(settings.family_link_keys_previous),
        settings.jwt_ttl_minutes,
        settings.family_link_max_days,
    )


@lru_cache(maxsize=16)
def _key_store(
    var_dir: Path,
    staff_key: str,
    staff_previous: tuple[str, ...],
    family_key: str,
    family_previous: tuple[str, ...],
    jwt_ttl_minutes: int,
    family_link_max_days: int,
) -> KeyStore:
    return KeyStore(
        var_dir=var_dir,
        settings_keys={
            Purpose.staff: (staff_key, staff_previous),
            Purpose.family: (family_key, family_previous),
        },
        lifetimes={
            Purpose.staff: timedelta(minutes=jwt_ttl_minutes),
            Purpose.family: timedelta(days=family_link_max_days),
        },
    )


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One writer of a key folder at a time, across processes."""
    make_private_dir(folder)
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _read(path: Path) -> tuple[SigningKey, ...]:
    data = json.loads(path.read_text())
    return tuple(
        SigningKey(
            kid=k["kid"],
            secret=k["secret"],
            created_at=datetime.fromisoformat(k["created_at"]),
            retired_at=datetime.fromisoformat(k["retired_at"]) if k.get("retired_at") else None,
        )
        for k in data["keys"]
    )


def _write(path: Path, keys: tuple[SigningKey, ...]) -> None:
    """Replace the file at once (readers see the old or the new keys), readable by the owner only."""
    data = {
        "keys": [
            {
                "kid": k.kid,
                "secret": k.secret,
                "created_at": k.created_at.isoformat(),
                "retired_at": k.retired_at.isoformat() if k.retired_at else None,
            }
            for k in keys
        ]
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # created 0600
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=1)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# Family links: confirm or ask to reschedule an appointment, no login.

SESSION_LINK = "session_response"


def session_link_token(session_id: int, expires_at: datetime, keys: KeyStore) -> str:
    """A link token signed with the family key; it lives until `expires_at`, but never longer than
    the family keys' lifetime (so a retired key can be dropped once its links are all expired)."""
    ring = keys.ring(Purpose.family)
    return ring.sign({"sid": session_id, "p": SESSION_LINK, "exp": session_link_expiry(expires_at, keys)})


class LinkInvalid(Exception):
    def __init__(self, expired: bool) -> None:
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


def read_session_link(token: str, keys: KeyStore) -> int:
    """The session id of a valid link; LinkInvalid(expired=...) otherwise."""
    try:
        claims = keys.ring(Purpose.family).verify(token, require=["sid", "p"])
    except jwt.ExpiredSignatureError as error:
        raise LinkInvalid(expired=True) from error
    except jwt.PyJWTError as error:
        raise LinkInvalid(expired=False) from error
    if claims.get("p") != SESSION_LINK or not isinstance(claims.get("sid"), int):
        raise LinkInvalid(expired=False)
    return int(claims["sid"])


# Short links: a random code instead of the signed token, so that a reminder SMS with its link fits
# in two Cyrillic segments. The code is a key to a row (models/links.py), not a signature: it is
# unguessable (10 characters of 62: about 59 bits), expires with the row, and a refused one is
# audited like a refused token.

SHORT_CODE_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
SHORT_CODE_LENGTH = 10


def short_code() -> str:
    return "".join(secrets.choice(SHORT_CODE_ALPHABET) for _ in range(SHORT_CODE_LENGTH))


def is_short_code(value: str) -> bool:
    """Whether `value` has the shape of a short code (a signed token has dots and is much longer)."""
    return len(value) == SHORT_CODE_LENGTH and all(c in SHORT_CODE_ALPHABET for c in value)


def session_link_expiry(expires_at: datetime, keys: KeyStore) -> datetime:
    """When a family link meant to live until `expires_at` expires: never later than the family
    keys' lifetime from now (what `session_link_token` signs, and what a short link keeps)."""
    return min(expires_at, utcnow() + keys.ring(Purpose.family).lifetime)
