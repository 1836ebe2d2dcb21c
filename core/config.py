"""Runtime settings, read from EARLYHELP_* environment variables (pydantic-settings)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EARLYHELP_", env_file=".env", extra="ignore")

    # Embedded default: a SQLite file next to the checkout. PostgreSQL: postgresql+psycopg://...
    database_url: str = "sqlite:///./var/earlyhelp.db"
    # Where secrets and the SQLite file live in embedded mode.
    var_dir: Path = Path("./var")
    # Signing keys (core/tokens.py). Empty: keys are generated into var_dir/keys/ (0600) and rotated
    # with `earlyhelp keys rotate`. Set: the current key of staff tokens / family links; earlier
    # values listed in *_previous stay accepted until removed (rotation by settings).
    secret_key: str = ""
    secret_keys_previous: list[str] = []
    family_link_key: str = ""
    family_link_keys_previous: list[str] = []
    jwt_ttl_minutes: int = 8 * 60
    # A family link lives until its appointment is over, but never longer than this.
    family_link_max_days: int = 14
    # Login throttling (api/routes/auth.py, the `limits` library): failed logins per login, attempts
    # per client address. Storage: memory:// (one process); redis://host:6379 when replicas share it.
    login_failures_per_login: str = "10/15 minutes"
    login_attempts_per_address: str = "60/minute"
    login_throttle_storage_uri: str = "memory://"
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
    # Move what start-up made (the app, the standards, SQLAlchemy's and Jinja2's caches: ~200 000
    # objects) out of the garbage collector's sight once the server has started: otherwise about
    # every tenth request pays a full collection over them, ~100 ms (bench/RESULTS.md, staff pages).
    # The tests turn it off: they make hundreds of apps in one process, and frozen objects stay.
    freeze_gc_on_start: bool = True
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

    @field_validator("login_failures_per_login", "login_attempts_per_address")
    @classmethod
    def _rate(cls, value: str) -> str:
        from limits import parse

        try:
            parse(value)
        except ValueError:
            raise ValueError("ожидается частота вида 10/15 minutes") from None
        return value

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
