"""Runtime settings, read from EARLYHELP_* environment variables (pydantic-settings)."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EARLYHELP_", env_file=".env", extra="ignore")

    # Embedded default: a SQLite file next to the checkout. PostgreSQL: postgresql+psycopg://...
    database_url: str = "sqlite:///./var/earlyhelp.db"
    # Where secrets and the SQLite file live in embedded mode.
    var_dir: Path = Path("./var")
    # JWT signing key; when empty, one is generated once and kept in var_dir/secret_key.
    secret_key: str = ""
    jwt_ttl_minutes: int = 8 * 60
    standards_dir: Path = PROJECT_ROOT / "standards"
    # Requests larger than this are refused with 413 before any parsing.
    max_body_bytes: int = 1_000_000
    host: str = "127.0.0.1"
    port: int = 8000
    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed, comma-separated
    # addresses or networks (e.g. "127.0.0.1" or "10.0.0.0/8"). Empty (the default): none, and the
    # client's address is the connection's peer. The app applies it (api/main.py), whatever server runs it.
    trusted_proxies: str = ""
    # SQL echo for debugging.
    echo_sql: bool = False
    # Where links in messages point (the feedback document).
    public_url: str = "http://127.0.0.1:8000"

    # Delivery channels. An empty host/URL means the channel is not configured: its deliveries
    # are recorded as skipped with that reason, never silently dropped.
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    mail_from: str = "earlyhelp@localhost"
    sms_gateway_url: str = ""
    sms_gateway_token: str = ""
    channel_timeout_seconds: float = 10.0
    # In-flow retries of one delivery task (seconds between tries); the relay's back-off follows.
    delivery_retry_delays: list[float] = [0.5, 2.0]

    # The outbox relay and the sweeps: inside `earlyhelp serve` unless disabled, and in every
    # `earlyhelp worker`.
    relay_in_serve: bool = True
    sweep_interval_seconds: int = 60
    relay_batch_size: int = 500
    relay_idle_seconds: float = 0.2
    # Longer than a batch of 500 can take with slow channels; also how long a dead relay's rows wait.
    relay_lease_seconds: int = 300
    relay_max_attempts: int = 12
    relay_backoff_seconds: float = 5.0
    # What `earlyhelp worker` logs of its own (DEBUG: every relay batch with its timings).
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    def jwt_secret(self) -> str:
        if self.secret_key:
            return self.secret_key
        path = self.var_dir / "secret_key"
        if not path.exists():
            make_private_dir(path.parent)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()

    @property
    def trusted_proxy_hosts(self) -> list[str]:
        return [host.strip() for host in self.trusted_proxies.split(",") if host.strip()]

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def make_private_dir(path: Path) -> Path:
    """Create a directory for keys or the database readable by its owner only (0700). One that
    exists is left as it is: it may be a directory the operator chose and shares."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=0o700, exist_ok=True)
        path.chmod(0o700)  # the umask can only narrow mkdir's mode; say it outright
    return path


class SettingsError(ValueError):
    """A bad EARLYHELP_* value, named in one line (the CLI prints it as is)."""


@lru_cache
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        first = error.errors()[0]
        name = f"EARLYHELP_{str(first['loc'][0]).upper()}" if first["loc"] else "EARLYHELP_*"
        raise SettingsError(f"неверная настройка {name}={first['input']!r}: {first['msg']}") from None
