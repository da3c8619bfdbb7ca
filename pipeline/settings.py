"""One typed settings object, read from the environment.

Every setting has an environment variable ``NEWSWATCH_<NAME>``; Airflow connections, when present,
are turned into the same object by ``plugins/`` at task run time (never at import).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_DIR = REPO_ROOT / "config"
DEFAULT_STATE_DIR = REPO_ROOT / ".state"
# The width of every sentence embedding (MiniLM and multilingual-e5-small alike): the classifier's
# arrays and the dense_vector fields of the indices must agree, so it is written once, here.
EMBEDDING_DIMS = 384


def cache_dir() -> Path:
    """``$NEWSWATCH_CACHE_DIR`` (default ``.cache/`` in the checkout): the downloaded Elasticsearch,
    the ONNX build of the classifier, the unpacked language model."""
    return Path(os.environ.get("NEWSWATCH_CACHE_DIR") or REPO_ROOT / ".cache")


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(f"NEWSWATCH_{name}")
    return value if value not in (None, "") else default


def _env_bool(name: str, default: bool) -> bool:
    value = _env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True, kw_only=True)
class ElasticsearchSettings:
    url: str = "http://127.0.0.1:9200"
    api_key: str | None = None
    username: str | None = None
    password: str | None = None
    ca_certs: str | None = None
    verify_certs: bool = True
    request_timeout: float = 30.0
    # Replicas of every index: a count, or a range Elasticsearch keeps within the data nodes it
    # has ("0-1": none on a single node, where a replica could never be placed and would keep the
    # cluster yellow, one as soon as a second node joins).
    replicas: str = "0-1"


@dataclass(frozen=True, kw_only=True)
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 8025
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    ssl: bool = False
    timeout: float = 30.0
    sender: str = "newswatch <newswatch@localhost>"


@dataclass(frozen=True, kw_only=True)
class FeedbackSettings:
    """The signed feedback links in alert emails (``pipeline.feedback``).

    ``keys`` are HMAC keys, the first signs and every one verifies (rotation: put the new key
    first, drop the old one once its links have expired). Links are made only when there is a
    key and a ``base_url`` (where the Airflow plugin's endpoint answers, e.g.
    ``http://airflow.example.org:8080/newswatch/feedback``).
    """

    keys: tuple[str, ...] = field(default=(), repr=False)  # secrets: never in logs
    base_url: str | None = None
    link_days: float = 14.0

    @property
    def enabled(self) -> bool:
        return bool(self.keys and self.base_url)


FEEDBACK_KEY_MIN_LENGTH = 16


def feedback_settings(keys: str | None, base_url: str | None, link_days: str | float | None, *,
                      where: str = "environment", key_field: str = "NEWSWATCH_FEEDBACK_KEY",
                      url_field: str = "NEWSWATCH_FEEDBACK_URL",
                      days_field: str = "NEWSWATCH_FEEDBACK_DAYS") -> FeedbackSettings:
    """Validate raw feedback values (from the environment or an Airflow connection).

    Several keys are separated by commas or white space. Errors name ``where`` and the field,
    never the key itself.
    """
    from urllib.parse import urlsplit

    from pipeline.errors import ConfigError

    parsed = tuple(k for k in re.split(r"[\s,]+", keys or "") if k)
    for number, key in enumerate(parsed, 1):
        if len(key) < FEEDBACK_KEY_MIN_LENGTH:
            raise ConfigError(f"key {number} of {len(parsed)} is {len(key)} characters long; use at "
                              f"least {FEEDBACK_KEY_MIN_LENGTH} random characters "
                              "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)",
                              item=where, field=key_field)
    url = (base_url or "").strip().rstrip("/") or None
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ConfigError(f"expected http(s)://host[:port]/path without query, got {url!r}",
                              item=where, field=url_field)
    try:
        days = float(link_days) if link_days not in (None, "") else FeedbackSettings.link_days
    except (TypeError, ValueError):
        raise ConfigError(f"expected a number of days, got {link_days!r}", item=where,
                          field=days_field) from None
    if not 0 < days <= 366:
        raise ConfigError(f"link lifetime must be more than 0 and at most 366 days, got {days}",
                          item=where, field=days_field)
    return FeedbackSettings(keys=parsed, base_url=url, link_days=days)


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything a pipeline function needs to know about its environment."""

    elasticsearch: ElasticsearchSettings = field(default_factory=ElasticsearchSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    feedback: FeedbackSettings = field(default_factory=FeedbackSettings)
    index_prefix: str = "newswatch"
    config_dir: Path = DEFAULT_CONFIG_DIR
    state_dir: Path = DEFAULT_STATE_DIR
    kibana_url: str = "http://127.0.0.1:5601"
    user_agent: str = "newswatch/0.1 (+https://github.com/newswatch/newswatch)"
    allow_private_hosts: bool = False

    sources_path: Path | None = None
    subscriptions_path: Path | None = None

    @property
    def sources_file(self) -> Path:
        return self.sources_path or self.config_dir / "sources.yaml"

    @property
    def taxonomy_file(self) -> Path:
        return self.config_dir / "taxonomy.yaml"

    @property
    def topic_file(self) -> Path:
        return self.config_dir / "topic.yaml"

    @property
    def subscriptions_file(self) -> Path:
        return self.subscriptions_path or self.config_dir / "subscriptions.yaml"

    def index(self, kind: str) -> str:
        """The alias name of an index kind: ``articles``, ``claims``, ``alerts``, ``feeds``."""
        return f"{self.index_prefix}-{kind}"

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def load_settings() -> Settings:
    """Build settings from ``NEWSWATCH_*`` environment variables."""
    es = ElasticsearchSettings(
        url=_env("ES_URL", "http://127.0.0.1:9200") or "",
        api_key=_env("ES_API_KEY"),
        username=_env("ES_USERNAME"),
        password=_env("ES_PASSWORD"),
        ca_certs=_env("ES_CA_CERTS"),
        verify_certs=_env_bool("ES_VERIFY_CERTS", True),
        request_timeout=float(_env("ES_TIMEOUT", "30") or 30),
        replicas=_env("ES_REPLICAS", "0-1") or "0-1",
    )
    smtp = SmtpSettings(
        host=_env("SMTP_HOST", "127.0.0.1") or "",
        port=int(_env("SMTP_PORT", "8025") or 8025),
        username=_env("SMTP_USERNAME"),
        password=_env("SMTP_PASSWORD"),
        starttls=_env_bool("SMTP_STARTTLS", False),
        ssl=_env_bool("SMTP_SSL", False),
        timeout=float(_env("SMTP_TIMEOUT", "30") or 30),
        sender=_env("SMTP_FROM", "newswatch <newswatch@localhost>") or "",
    )
    return Settings(
        elasticsearch=es,
        smtp=smtp,
        feedback=feedback_settings(_env("FEEDBACK_KEY"), _env("FEEDBACK_URL"), _env("FEEDBACK_DAYS")),
        index_prefix=_env("INDEX_PREFIX", "newswatch") or "newswatch",
        config_dir=Path(_env("CONFIG_DIR", str(DEFAULT_CONFIG_DIR)) or DEFAULT_CONFIG_DIR),
        # absolute: services run in their own folders, where a relative path would point elsewhere
        state_dir=Path(_env("STATE_DIR") or DEFAULT_STATE_DIR).expanduser().absolute(),
        kibana_url=_env("KIBANA_URL", "http://127.0.0.1:5601") or "",
        allow_private_hosts=_env_bool("ALLOW_PRIVATE_HOSTS", False),
        sources_path=Path(p) if (p := _env("SOURCES_FILE")) else None,
        subscriptions_path=Path(p) if (p := _env("SUBSCRIPTIONS_FILE")) else None,
    )
