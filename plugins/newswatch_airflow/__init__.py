"""Airflow glue for newswatch: settings from connections, notifiers, DAG policy, UI links.

Everything here is cheap to import (DAG files import it at parse time): clients are built at task
run time by ``settings_from_airflow`` and the pipeline functions the tasks call, never at import.
"""

from newswatch_airflow.assets import ARTICLES, CLAIMS
from newswatch_airflow.connections import settings_from_airflow
from newswatch_airflow.links import kibana_links
from newswatch_airflow.notifier import failure_notifier, operator_recipients
from newswatch_airflow.policy import default_args, env_schedule, run_time

__all__ = [
    "ARTICLES",
    "CLAIMS",
    "default_args",
    "env_schedule",
    "failure_notifier",
    "kibana_links",
    "operator_recipients",
    "run_time",
    "settings_from_airflow",
]
