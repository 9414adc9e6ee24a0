"""Service configuration, read from the environment and an optional `.env` file."""

from __future__ import annotations

from typing import Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from bot.storage.crypto import DEMO_KEY_ID, BadKeyRing, KeyRing
from bot.storage.models import StaffRole

LINE_API_DEFAULT_BASE = "https://api.line.me"
# LINE serves images and files (message content, rich menu images) from a host of their own.
LINE_DATA_DEFAULT_BASE = "https://api-data.line.me"


class SettingsError(Exception):
    """A setting is missing or malformed; the message names it in one line."""


class StorageSettings(BaseSettings):
    """What every command needs: where the data and content are, and the local clock."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # Secret: a PostgreSQL URL carries the password. Read it with `database`; print only `database_shown`.
    database_url: SecretStr = SecretStr("sqlite+aiosqlite:///./tsunagi.db")
    tsunagi_timezone: str = "Asia/Tokyo"
    content_dir: str = "content"
    # The trained risk classifier (`tsunagi risk train` writes it); without one the keyword floor screens alone.
    risk_model_dir: str = "models/risk"
    # Secret: the keys what people wrote is encrypted with, `ID:BASE64KEY[,ID:BASE64KEY...]`, the first writing
    # (bot/storage/crypto.py; `tsunagi keys generate`). Losing them loses every stored word.
    encryption_keys: SecretStr | None = None
    # "json": one JSON object per log line (with the event, outbox or consultation id as a field), for log collectors.
    log_format: Literal["text", "json"] = "text"

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("use sqlite+aiosqlite:///FILE or postgresql+asyncpg://USER@HOST/DB")
        return value

    @field_validator("encryption_keys")
    @classmethod
    def _key_ring(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                KeyRing.parse(value.get_secret_value())
            except BadKeyRing as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("tsunagi_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @property
    def database(self) -> str:
        """The database URL, password included: for opening connections only, never for printing."""
        return self.database_url.get_secret_value()

    @property
    def database_shown(self) -> str:
        """The database URL as it may be printed or logged: the password replaced by ***."""
        return make_url(self.database).render_as_string(hide_password=True)

    def key_ring(self, *, real: bool = False) -> KeyRing:
        """The encryption keys; with `real`, the public demo key may not be the one that writes.

        Raises:
            SettingsError: ENCRYPTION_KEYS is not set (or, with `real`, writes with the demo key).
        """
        if self.encryption_keys is None:
            raise SettingsError("ENCRYPTION_KEYS is not set: `tsunagi keys generate` prints a new key (README: Keys)")
        ring = KeyRing.parse(self.encryption_keys.get_secret_value())
        if real and ring.current == DEMO_KEY_ID:
            raise SettingsError("ENCRYPTION_KEYS writes with the public demo key: `tsunagi keys generate` prints a real one")
        return ring

    @property
    def timezone(self) -> ZoneInfo:
        """The zone in which times are shown and scheduled."""
        return ZoneInfo(self.tsunagi_timezone)


class Settings(StorageSettings):
    """Everything the service needs to talk to LINE as well."""

    line_channel_secret: SecretStr = Field(min_length=1)
    line_channel_access_token: SecretStr = Field(min_length=1)
    line_api_base: str = LINE_API_DEFAULT_BASE
    line_data_base: str = LINE_DATA_DEFAULT_BASE
    # Console cookies are Secure (sent over HTTPS only); turn off only behind plain HTTP on one machine.
    console_secure_cookies: bool = True
    # Roles that need a second factor (TOTP) at log-in: by default every role, since each reads what
    # people wrote or can change who reads it. Narrow it only with a reason (e.g. a demo on one machine).
    console_second_factor_roles: frozenset[StaffRole] = frozenset(StaffRole)
    # A chat with no word from the person for this long is closed kindly (a high-risk one goes to a supervisor).
    consultation_idle_minutes: int = Field(default=30, ge=1)
    # A high-risk person waiting longer than this alerts the supervisors.
    high_risk_max_wait_seconds: int = Field(default=120, ge=1)

    @field_validator("line_api_base", "line_data_base")
    @classmethod
    def _base_is_http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        # line-bot-sdk joins host and path itself; a trailing slash would double it.
        return value.rstrip("/")


SettingsT = TypeVar("SettingsT", bound=StorageSettings)


def load_settings(kind: type[SettingsT] = Settings, **overrides: object) -> SettingsT:
    """Read the settings, turning pydantic's report into one line per bad setting.

    Args:
        kind: which settings the command needs.
        **overrides: values that take precedence over the environment (used by `demo` and tests).

    Raises:
        SettingsError: naming the first missing or malformed environment variable.
    """
    try:
        return kind(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]).upper() if error["loc"] else "settings"
        if error["type"] == "missing":
            raise SettingsError(f"{name} is not set") from None
        raise SettingsError(f"{name} is invalid: {error['msg']}") from None
