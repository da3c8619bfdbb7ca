"""newswatch: watch a topic in the news, classify motives, index in Elasticsearch, alert on new claims.

The ``pipeline`` package is the domain. It never imports ``airflow``; the DAGs in ``dags/`` and the
glue in ``plugins/`` call into it.
"""

from pipeline.errors import (
    ConfigError,
    NewswatchError,
    ServiceError,
    ServiceUnavailable,
    SetupError,
)
from pipeline.settings import Settings, load_settings

__all__ = [
    "ConfigError",
    "NewswatchError",
    "ServiceError",
    "ServiceUnavailable",
    "SetupError",
    "Settings",
    "load_settings",
]

__version__ = "0.1.0"
