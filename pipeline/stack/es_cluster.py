"""Elasticsearch as a three-node cluster on 127.0.0.1, from the same distribution as the single
node (:mod:`pipeline.stack.elasticsearch`).

Node ``i`` (1-3) keeps its data, logs, temporary files and pid under
``<state>/elasticsearch-cluster/node-<i>``. HTTP ports come from ``NEWSWATCH_ES_URL`` when it
lists three URLs (``http://127.0.0.1:9200,http://127.0.0.1:9201,http://127.0.0.1:9202``, the
form the client takes to use every node), else from its one port and the next two; transport
ports are ``NEWSWATCH_ES_TRANSPORT_PORT`` (default: the first HTTP port + 100) and the next two.
Every node is master-eligible and holds data, so the cluster keeps a quorum (2 of 3) and every
shard a copy when one node is lost. ``cluster.initial_master_nodes`` is given only while the
cluster has never formed (Elasticsearch warns against it afterwards).

Indices get one replica from their templates (``NEWSWATCH_ES_REPLICAS``, by default ``0-1``:
Elasticsearch keeps none on one node and one from two nodes on): with three nodes a node's loss
turns the cluster yellow, never red, and the replicas are rebuilt when it returns (green).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pipeline.errors import SetupError
from pipeline.stack.elasticsearch import (
    ES_VERSION,
    fetch,
    find_java_home,
    health,
    stop_nodes_under,
)
from pipeline.stack.ports import port_is_free
from pipeline.stack.processes import chown_tree, ensure_service_user, read_pid, stop_pid, tail, wait_for
from pipeline.stack.service import Service, ServiceStatus

__all__ = ["ClusterNode", "ElasticsearchClusterService", "cluster_urls"]

NODES = 3


def cluster_urls(es_url: str) -> list[str]:
    """The three node URLs: as listed in ``es_url``, or its port and the next two."""
    urls = [u.strip().rstrip("/") for u in es_url.split(",") if u.strip()]
    if len(urls) == NODES:
        return urls
    if len(urls) != 1:
        raise SetupError(f"NEWSWATCH_ES_URL lists {len(urls)} URLs; the cluster needs {NODES} or one "
                         "(its port and the next two are used)")
    port = urlparse(urls[0]).port or 9200
    return [f"http://127.0.0.1:{port + i}" for i in range(NODES)]


@dataclass(frozen=True)
class ClusterNode:
    folder: Path
    index: int
    http_port: int
    transport_port: int

    @property
    def name(self) -> str:
        return f"node-{self.index}"

    @property
    def home(self) -> Path:
        return self.folder / self.name

    @property
    def pid_file(self) -> Path:
        return self.home / "es.pid"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


class ElasticsearchClusterService(Service):
    """Three Elasticsearch nodes of this state folder forming one cluster."""

    name = "elasticsearch-cluster"

    @property
    def heap(self) -> str:
        return os.environ.get("NEWSWATCH_ES_HEAP", "384m")  # per node: three share the machine

    def nodes(self) -> list[ClusterNode]:
        urls = cluster_urls(self.settings.elasticsearch.url)
        http = [urlparse(u).port or 9200 for u in urls]
        transport = int(os.environ.get("NEWSWATCH_ES_TRANSPORT_PORT", str(http[0] + 100)))
        return [ClusterNode(self.folder, i + 1, http[i], transport + i) for i in range(NODES)]

    def node(self, index: int) -> ClusterNode:
        return self.nodes()[index - 1]

    @property
    def cluster_name(self) -> str:
        # unique per state folder, so two stacks on one machine can never join each other
        digest = hashlib.sha1(str(self.folder.resolve()).encode()).hexdigest()[:8]  # noqa: S324
        return f"newswatch-{digest}"

    def url(self) -> str:
        return ",".join(n.url for n in self.nodes())

    def pid_files(self) -> list[Path]:
        return [n.pid_file for n in self.nodes()]

    def _formed_before(self) -> bool:
        return any((n.home / "data" / "_state").exists() for n in self.nodes())

    def start_node(self, node: ClusterNode, *, bootstrap: bool) -> None:
        """Start one node (daemonised; returns once its process runs, not once it joined)."""
        if read_pid(node.pid_file):
            return
        for port in (node.http_port, node.transport_port):
            if not port_is_free(port):
                raise SetupError(f"port {port} for Elasticsearch {node.name} is already taken; stop "
                                 "what uses it or choose other ports (NEWSWATCH_ES_URL, "
                                 "NEWSWATCH_ES_TRANSPORT_PORT)")
        java_home = find_java_home()
        home = fetch(ES_VERSION)
        data, logs, tmp = node.home / "data", node.home / "logs", node.home / "tmp"
        for folder in (data, logs):
            folder.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        (data / "node.lock").unlink(missing_ok=True)  # left by a killed node; none runs now
        seeds = ",".join(f"127.0.0.1:{n.transport_port}" for n in self.nodes())
        env = {**os.environ, "ES_JAVA_HOME": str(java_home),
               "ES_JAVA_OPTS": f"-Xms{self.heap} -Xmx{self.heap}", "ES_PATH_CONF": str(home / "config"),
               "ES_TMPDIR": str(tmp),
               "CLI_JAVA_OPTS": f"{os.environ.get('CLI_JAVA_OPTS', '')} -Djava.io.tmpdir={tmp}".strip()}
        env.pop("JAVA_HOME", None)
        cmd = [str(home / "bin" / "elasticsearch"), "-d", "-p", str(node.pid_file),
               "-E", f"cluster.name={self.cluster_name}", "-E", f"node.name={node.name}",
               "-E", "network.host=127.0.0.1", "-E", f"http.port={node.http_port}",
               "-E", f"transport.port={node.transport_port}", "-E", f"discovery.seed_hosts={seeds}",
               "-E", f"path.data={data}", "-E", f"path.logs={logs}",
               "-E", "xpack.security.enabled=false",
               "-E", "cluster.routing.allocation.disk.threshold_enabled=false",
               "-E", "action.destructive_requires_name=false"]
        if bootstrap:
            cmd += ["-E", "cluster.initial_master_nodes=" + ",".join(n.name for n in self.nodes())]
        if os.geteuid() == 0:
            uid, gid = ensure_service_user("Elasticsearch")
            chown_tree(home, uid, gid)
            chown_tree(self.folder, uid, gid)
            cmd = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *cmd]
        out = node.home / "startup.log"
        with out.open("w") as fh:
            proc = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        if proc.returncode != 0:
            raise SetupError(f"Elasticsearch {node.name} failed to start "
                             f"(exit {proc.returncode}):\n{tail(out)}")

    def start(self, timeout: float = 300.0) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        bootstrap = not self._formed_before()
        for node in self.nodes():
            self.start_node(node, bootstrap=bootstrap)
        if not self.wait_status("green", timeout):
            logs = "\n".join(f"{n.name}: {tail(n.home / 'logs' / (self.cluster_name + '.log'), 5)}"
                             for n in self.nodes())
            raise SetupError(f"the Elasticsearch cluster did not form within {timeout:.0f}s:\n{logs}")

    def cluster_health(self) -> dict[str, Any] | None:
        """The health document from the first node that answers."""
        for node in self.nodes():
            try:
                return health(node.url)
            except Exception:  # noqa: BLE001, S112 - that node is down: ask the next
                continue
        return None

    def wait_status(self, status: str, timeout: float, nodes: int = NODES) -> bool:
        wanted = {"green"} if status == "green" else {"green", "yellow"}

        def check() -> bool:
            doc = self.cluster_health()
            return bool(doc) and doc["status"] in wanted and doc["number_of_nodes"] == nodes
        return wait_for(check, timeout, 1.0)

    def stop_node(self, node: ClusterNode, *, kill: bool = False) -> bool:
        pid = read_pid(node.pid_file)
        if pid:
            if kill:
                os.kill(pid, 9)
                wait_for(lambda: read_pid(node.pid_file) is None, 30, 0.2)
            else:
                stop_pid(pid, timeout=60)
            node.pid_file.unlink(missing_ok=True)
        shutil.rmtree(node.home / "tmp", ignore_errors=True)
        return pid is not None

    def stop(self) -> bool:
        was = False
        for node in self.nodes():
            was = self.stop_node(node) or was
        was = stop_nodes_under(self.folder) or was
        self.remove_tmp_dir()
        return was

    def status(self) -> ServiceStatus:
        """Running when this state folder's three nodes run and answer as one cluster (another
        node on one of the ports is not ours)."""
        ours = sum(1 for n in self.nodes() if read_pid(n.pid_file))
        doc = self.cluster_health() if ours else None
        if not doc:
            return ServiceStatus(self.name, False, f"{self.url()} (not answering)")
        return ServiceStatus(self.name, doc["status"] in {"green", "yellow"} and ours == NODES,
                             f"{self.url()} ({doc['status']}, {doc['number_of_nodes']} nodes, "
                             f"{ours} of ours running)")

    def guide(self, started: bool) -> str | None:
        return (f"  Elasticsearch  {self.url()}   (3 nodes, aliases {self.settings.index('*')}, "
                "1 replica)")

