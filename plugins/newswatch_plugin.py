"""The newswatch Airflow plugin: links from the Airflow UI to the Kibana dashboard and searches.

Only this file is scanned by Airflow's plugin loader (``.airflowignore`` hides the package); the
links are built from the ``kibana/`` saved objects when the API server loads plugins.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from newswatch_airflow.links import kibana_links


class NewswatchPlugin(AirflowPlugin):
    name = "newswatch"
    external_views = kibana_links()
