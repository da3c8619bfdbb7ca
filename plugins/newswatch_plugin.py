"""The newswatch Airflow plugin: links from the Airflow UI to the Kibana dashboard and searches,
and the endpoint that records readers' feedback from the links in alert emails.

Only this file is scanned by Airflow's plugin loader (``.airflowignore`` hides the package); the
links are built from the ``kibana/`` saved objects when the API server loads plugins. The feedback
app is mounted by the API server under ``/newswatch`` (``fastapi_apps``, Airflow 3.1+); it builds
FastAPI, its settings and its Elasticsearch client on its first request, so the other components
that load this plugin pay nothing for it.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from newswatch_airflow.feedback import fastapi_apps as feedback_apps
from newswatch_airflow.links import kibana_links


class NewswatchPlugin(AirflowPlugin):
    name = "newswatch"
    external_views = kibana_links()
    fastapi_apps = feedback_apps()
