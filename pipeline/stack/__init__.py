"""The local stack: real services on 127.0.0.1 started and stopped by the project.

Elasticsearch (from Maven Central's integ-test-zip), an SMTP server that keeps every message as an
``.eml`` file, the sample feed server, and Airflow. Each is a :class:`~pipeline.stack.service.Service`
(``start``, ``stop``, ``status``, ``url``) listed in :mod:`pipeline.stack.registry`, and keeps its
pid, data, logs and temporary files under its own folder of the state folder, so ``newswatch stack
down`` stops exactly what ``stack up`` started and nothing is left in the system's temporary folder.
"""

from pipeline.stack.ports import port_is_free
from pipeline.stack.processes import wait_for

__all__ = ["port_is_free", "wait_for"]
