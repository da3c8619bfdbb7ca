"""The local stack: real services on 127.0.0.1 started and stopped by the project.

Elasticsearch (from Maven Central's integ-test-zip), an SMTP server that keeps every message as an
``.eml`` file, the sample feed server, and Airflow. Each service keeps its pid, data and logs under
the state folder so ``newswatch stack down`` stops exactly what ``stack up`` started.
"""

from pipeline.stack.common import port_is_free, wait_for

__all__ = ["port_is_free", "wait_for"]
