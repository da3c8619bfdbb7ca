"""A real Elasticsearch node on 127.0.0.1, from Maven Central's integ-test-zip.

The zip is fetched once with ``mvn`` into ``.cache/elasticsearch`` and unpacked there; each stack
keeps data, logs, temporary files and the pid file under its own state folder. Elasticsearch
refuses to run as root, so when we are root the node runs as an unprivileged system user created
on first use.

Temporary files: without ``ES_TMPDIR`` the launcher creates a fresh ``elasticsearch-<n>`` folder
in the system's temporary folder at every start and never removes it (and its JVM-flags probe a
``final-flags<n>`` one), so both are pointed at ``<state>/elasticsearch/tmp``, which ``stop``
removes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from pipeline.errors import SetupError
from pipeline.settings import cache_dir
from pipeline.stack.ports import port_is_free
from pipeline.stack.processes import (
    chown_tree,
    ensure_service_user,
    processes_using,
    read_pid,
    stop_pid,
    tail,
    wait_for,
)
from pipeline.stack.service import Service, ServiceStatus

ES_VERSION = "9.5.4"
MIN_JAVA = 21
ARTIFACT = "org.elasticsearch.distribution.integ-test-zip:elasticsearch:{version}:zip"
CACHE_DIR = cache_dir()


@dataclass(frozen=True, kw_only=True)
class NodeConfig:
    state_dir: Path
    port: int = 9200
    heap: str = "512m"
    version: str = ES_VERSION

    @property
    def home(self) -> Path:
        return CACHE_DIR / "elasticsearch" / f"elasticsearch-{self.version}"

    @property
    def data_dir(self) -> Path:
        return self.state_dir / "elasticsearch" / "data"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "elasticsearch" / "logs"

    @property
    def tmp_dir(self) -> Path:
        return self.state_dir / "elasticsearch" / "tmp"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "elasticsearch" / "es.pid"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def port_from_url(url: str, default: int = 9200) -> int:
    return urlparse(url).port or default


def java_version(java: Path) -> int | None:
    try:
        out = subprocess.run([str(java), "-version"], capture_output=True, text=True,
                             timeout=30).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)', out)
    return int(match.group(1)) if match else None


def find_java_home() -> Path:
    """A JDK of version >= 21: ``ES_JAVA_HOME``, ``JAVA_HOME``, then ``/usr/lib/jvm/*``."""
    candidates: list[Path] = []
    for var in ("ES_JAVA_HOME", "JAVA_HOME"):
        if os.environ.get(var):
            candidates.append(Path(os.environ[var]))
    jvm = Path("/usr/lib/jvm")
    if jvm.is_dir():
        candidates.extend(sorted(jvm.iterdir(), reverse=True))
    seen: list[str] = []
    for home in candidates:
        java = home / "bin" / "java"
        if not java.exists():
            continue
        version = java_version(java)
        seen.append(f"{home} (Java {version})")
        if version and version >= MIN_JAVA:
            return home
    found = "; ".join(seen) or "none"
    raise SetupError(
        f"Elasticsearch {ES_VERSION} needs Java {MIN_JAVA} or newer; found: {found}. "
        "Install a JDK 21+ (e.g. apt-get install openjdk-21-jdk-headless or a Temurin JDK) "
        "and set ES_JAVA_HOME to it."
    )


def fetch(version: str = ES_VERSION) -> Path:
    """Download the distribution zip with Maven into the project cache (once) and unpack it."""
    target = CACHE_DIR / "elasticsearch"
    home = target / f"elasticsearch-{version}"
    if (home / "bin" / "elasticsearch").exists():
        return home
    target.mkdir(parents=True, exist_ok=True)
    archive = target / f"elasticsearch-{version}.zip"
    if not archive.exists():
        mvn = shutil.which("mvn")
        if not mvn:
            raise SetupError("Maven (mvn) is needed to fetch Elasticsearch: apt-get install maven")
        cmd = [mvn, "-q", "-B", "-U", "dependency:copy",
               f"-Dartifact={ARTIFACT.format(version=version)}", f"-DoutputDirectory={target}"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not archive.exists():
            detail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
            raise SetupError(
                f"Maven could not fetch Elasticsearch {version} ({ARTIFACT.format(version=version)}):"
                f" {' / '.join(detail)}. Check the network to Maven Central or ~/.m2/settings.xml."
            )
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(target)
    for script in (home / "bin").iterdir():
        script.chmod(0o755)
    for sub in ("jdk", "lib", "modules"):
        for path in (home / sub).rglob("*"):
            if path.is_file() and path.parent.name == "bin":
                path.chmod(0o755)
    return home


def health(url: str, timeout: float = 2.0) -> dict:
    with urllib.request.urlopen(f"{url}/_cluster/health", timeout=timeout) as resp:  # noqa: S310
        return json.loads(resp.read())


def is_healthy(url: str) -> bool:
    try:
        return health(url)["status"] in {"green", "yellow"}
    except Exception:  # noqa: BLE001 - any failure means "not healthy yet"
        return False


def start(cfg: NodeConfig, *, timeout: float = 180.0) -> str:
    """Start the node (or reuse the one this state folder already runs) and wait for health."""
    pid = read_pid(cfg.pid_file)
    if pid and is_healthy(cfg.url):
        return cfg.url
    if pid:
        stop_pid(pid)
    if not port_is_free(cfg.port):
        raise SetupError(
            f"port {cfg.port} is already taken, so Elasticsearch cannot listen there. Stop what "
            f"uses it (ss -ltnp 'sport = :{cfg.port}') or choose another port with "
            f"NEWSWATCH_ES_URL=http://127.0.0.1:<port>."
        )
    java_home = find_java_home()
    home = fetch(cfg.version)
    for folder in (cfg.data_dir, cfg.logs_dir):
        folder.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(cfg.tmp_dir, ignore_errors=True)  # left by a node that was killed
    cfg.tmp_dir.mkdir(parents=True)
    lock = cfg.data_dir / "node.lock"
    if lock.exists():
        lock.unlink()  # left by a node that was killed; no node of ours is running now
    env = {**os.environ, "ES_JAVA_HOME": str(java_home),
           "ES_JAVA_OPTS": f"-Xms{cfg.heap} -Xmx{cfg.heap}", "ES_PATH_CONF": str(home / "config"),
           "ES_TMPDIR": str(cfg.tmp_dir),
           # the launcher's own JVM, where its flags probe writes (the last -D of a name wins)
           "CLI_JAVA_OPTS": f"{os.environ.get('CLI_JAVA_OPTS', '')} -Djava.io.tmpdir={cfg.tmp_dir}".strip()}
    env.pop("JAVA_HOME", None)
    cmd = [str(home / "bin" / "elasticsearch"), "-d", "-p", str(cfg.pid_file),
           "-E", "network.host=127.0.0.1", "-E", f"http.port={cfg.port}",
           "-E", "transport.port=0", "-E", "discovery.type=single-node",
           "-E", f"path.data={cfg.data_dir}", "-E", f"path.logs={cfg.logs_dir}",
           "-E", "xpack.security.enabled=false",
           "-E", "cluster.routing.allocation.disk.threshold_enabled=false",
           "-E", "action.destructive_requires_name=false"]
    if os.geteuid() == 0:
        uid, gid = ensure_service_user("Elasticsearch")
        chown_tree(home, uid, gid)
        chown_tree(cfg.state_dir / "elasticsearch", uid, gid)
        cmd = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *cmd]
    out = cfg.state_dir / "elasticsearch" / "startup.log"
    with out.open("w") as fh:
        proc = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT,
                              start_new_session=True)
    if proc.returncode != 0:
        raise SetupError(f"Elasticsearch failed to start (exit {proc.returncode}):\n{tail(out)}")
    if not wait_for(lambda: is_healthy(cfg.url), timeout, 1.0):
        log = cfg.logs_dir / "elasticsearch.log"
        raise SetupError(f"Elasticsearch did not become healthy within {timeout:.0f}s:\n{tail(log)}")
    return cfg.url


def stop(cfg: NodeConfig) -> bool:
    """Stop the node recorded in the pid file and remove its temporary files. True when one was
    running."""
    pid = read_pid(cfg.pid_file)
    if pid:
        stop_pid(pid, timeout=60)
        cfg.pid_file.unlink(missing_ok=True)
    shutil.rmtree(cfg.tmp_dir, ignore_errors=True)
    return pid is not None


def stop_nodes_under(folder: Path) -> bool:
    """Stop any node still writing under ``folder`` (one interrupted while starting may not have
    written its pid file yet); True when there was one."""
    pids = processes_using(folder, "org.elasticsearch")
    for pid in pids:
        stop_pid(pid, timeout=60)
    return bool(pids)


def server_version(url: str) -> str:
    with urllib.request.urlopen(f"{url}/_nodes/_local?filter_path=nodes.*.version",  # noqa: S310
                                timeout=5) as resp:
        nodes = json.loads(resp.read())["nodes"]
    return next(iter(nodes.values()))["version"]


class ElasticsearchService(Service):
    """The node of this state folder, on the port of ``NEWSWATCH_ES_URL``."""

    name = "elasticsearch"

    @property
    def config(self) -> NodeConfig:
        return NodeConfig(state_dir=self.settings.state_dir,
                          port=port_from_url(self.settings.elasticsearch.url),
                          heap=os.environ.get("NEWSWATCH_ES_HEAP", "512m"))

    def url(self) -> str:
        return self.config.url

    def pid_files(self) -> list[Path]:
        return [self.config.pid_file]

    def start(self) -> None:
        start(self.config)

    def stop(self) -> bool:
        """Stop the node by its pid file, and then any node still writing under this folder (one
        interrupted while starting may not have written its pid file yet)."""
        cfg = self.config
        was = stop(cfg)
        was = stop_nodes_under(self.folder) or was
        self.remove_tmp_dir()
        return was

    def status(self) -> ServiceStatus:
        return ServiceStatus(self.name, is_healthy(self.url()), self.url())

    def guide(self, started: bool) -> str | None:
        # shown either way: the pipeline writes there whether or not this command started it
        return (f"  Elasticsearch  {self.settings.elasticsearch.url}   "
                f"(aliases {self.settings.index('*')})")
