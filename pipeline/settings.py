"""One typed settings object, read from the environment.

Every setting has an environment variable ``NEWSWATCH_<NAME>``; Airflow connections, when present,
are turned into the same object by ``plugins/`` at task run time (never at import).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_DIR = REPO_ROOT / "config"
DEFAULT_STATE_DIR = REPO_ROOT / ".state"


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
class Settings:
    """Everything a pipeline function needs to know about its environment."""

    elasticsearch: ElasticsearchSettings = field(default_factory=ElasticsearchSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
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
        index_prefix=_env("INDEX_PREFIX", "newswatch") or "newswatch",
        config_dir=Path(_env("CONFIG_DIR", str(DEFAULT_CONFIG_DIR)) or DEFAULT_CONFIG_DIR),
        state_dir=Path(_env("STATE_DIR", str(DEFAULT_STATE_DIR)) or DEFAULT_STATE_DIR),
        kibana_url=_env("KIBANA_URL", "http://127.0.0.1:5601") or "",
        allow_private_hosts=_env_bool("ALLOW_PRIVATE_HOSTS", False),
        sources_path=Path(p) if (p := _env("SOURCES_FILE")) else None,
        subscriptions_path=Path(p) if (p := _env("SUBSCRIPTIONS_FILE")) else None,
    )
