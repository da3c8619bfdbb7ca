"""The local stack's services behind one interface, started and stopped for real on free ports with
a private state folder: what they report, and that their temporary files stay in their own folder
and are gone after a stop."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.errors import SetupError
from pipeline.settings import Settings
from pipeline.stack import registry
from pipeline.stack.ports import free_port, port_is_free
from pipeline.stack.processes import pid_alive
from pipeline.stack.service import Service, ServiceStatus


def _private(base: Settings, state_dir: Path, monkeypatch) -> Settings:
    """Settings whose every service port is free and whose state is ``state_dir``."""
    monkeypatch.setenv("NEWSWATCH_FEED_PORT", str(free_port()))
    monkeypatch.setenv("NEWSWATCH_AIRFLOW_PORT", str(free_port()))
    return replace(base, state_dir=state_dir,
                   elasticsearch=replace(base.elasticsearch, url=f"http://127.0.0.1:{free_port()}"),
                   smtp=replace(base.smtp, port=free_port()))


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_every_registered_service_answers_the_same_interface(base_settings, tmp_path, monkeypatch):
    settings = _private(base_settings, tmp_path / "state", monkeypatch)
    found = registry.services(settings)
    assert [svc.name for svc in found] == list(registry.SERVICES)
    assert list(registry.SERVICES) == ["elasticsearch", "smtp", "feeds", "airflow"]  # start order
    for svc in found:
        assert isinstance(svc, Service)
        status = svc.status()
        assert isinstance(status, ServiceStatus)
        assert (status.name, status.running) == (svc.name, False), status  # nothing runs here yet
        assert svc.url().split("://")[0] in {"http", "smtp"}
        assert svc.folder == settings.state_dir / svc.name
        assert svc.tmp_dir == svc.folder / "tmp"
        assert svc.pids() == set()
    assert registry.down(settings) == []  # stopping what does not run is not an error


def test_an_unknown_service_is_named(base_settings, tmp_path, monkeypatch):
    settings = _private(base_settings, tmp_path / "state", monkeypatch)
    with pytest.raises(SetupError, match=r"unknown services \['kibana'\]"):
        registry.up(settings, ["smtp", "kibana"])
    assert port_is_free(settings.smtp.port)  # nothing was started before the check


def test_python_services_keep_temporary_files_in_their_folder_and_remove_them(
        base_settings, tmp_path, monkeypatch):
    settings = _private(base_settings, tmp_path / "state", monkeypatch)
    chosen = registry.services(settings, ["feeds", "smtp"])
    try:
        statuses = registry.up(settings, ["feeds", "smtp"])
        assert [(s.name, s.running) for s in statuses] == [("smtp", True), ("feeds", True)]
        for svc in chosen:
            [pid] = svc.pids()
            assert _environ(pid)["TMPDIR"] == str(svc.tmp_dir)
            assert svc.tmp_dir.is_dir()
        assert registry.up(settings, ["smtp"])[0].running  # idempotent: the same process
        smtp = next(svc for svc in chosen if svc.name == "smtp")
        assert smtp.pids() == {int((settings.state_dir / "smtp" / "smtp.pid").read_text())}
    finally:
        stopped = registry.down(settings, ["smtp", "feeds"])
    assert stopped == ["feeds", "smtp"]  # reverse start order
    for svc in chosen:
        assert not svc.tmp_dir.exists()
        assert svc.pids() == set() and not svc.status().running
    assert port_is_free(settings.smtp.port)


def _new_temp_dirs(since: float) -> set[str]:
    """Folders in the system's temporary folder that an Elasticsearch start leaves when it is not
    told where to put its temporary files, made at or after ``since``."""
    root = Path("/tmp")  # the JVM's default java.io.tmpdir on Linux, whatever TMPDIR says
    return {p.name for p in root.iterdir()
            if p.name.startswith(("elasticsearch-", "final-flags")) and p.is_dir()
            and p.stat().st_mtime >= since}


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_elasticsearch_keeps_its_temporary_files_in_its_state_folder(base_settings, monkeypatch):
    # Elasticsearch runs as an unprivileged user when we are root, so its state folder must be one
    # that user can reach: not pytest's private tmp folders.
    state = Path(tempfile.mkdtemp(prefix="newswatch-stack-test-"))
    state.chmod(0o755)
    settings = _private(base_settings, state, monkeypatch)
    node = registry.service(settings, "elasticsearch")
    started_at = time.time() - 1  # mtimes have a coarser clock than time.time()
    before = _new_temp_dirs(started_at)
    try:
        node.start()
        assert node.status().running
        [pid] = node.pids()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert f"-Djava.io.tmpdir={node.tmp_dir}".encode() in cmdline
        assert node.tmp_dir.is_dir()
        during = _new_temp_dirs(started_at) - before
        assert node.stop() is True
        assert not pid_alive(pid)
        assert not node.tmp_dir.exists()
        after = _new_temp_dirs(started_at) - before
        assert (during, after) == (set(), set())
        assert node.stop() is False
    finally:
        node.stop()
        shutil.rmtree(state, ignore_errors=True)
    assert not os.path.exists(state)
