"""``newswatch run`` stops every service it started on SIGINT, SIGTERM and SIGHUP, whatever its
output is connected to: a file, a pipe whose reader is gone (``| tee`` killed by the same Ctrl-C),
or no stdout/stderr at all. Checked afterwards by the pids it started and the ports they held.

Each case starts the real command as a subprocess in its own process group, with a private state
folder, its own SMTP and feed-server ports, and the test Elasticsearch (``--services smtp,feeds``:
the node is the suite's, so the run creates its indices there but starts and stops only those two).

Exit status after a stop by signal is 128 + the signal number: 130 (SIGINT), 143 (SIGTERM),
129 (SIGHUP), as ``newswatch --help`` documents.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from pipeline.stack.ports import free_port, port_is_free
from pipeline.stack.processes import pid_alive, wait_for

NEWSWATCH = str(Path(sys.executable).with_name("newswatch"))
READY = "Press Ctrl-C to stop everything."
# copies its stdin to a file, flushing every read, until killed: the `tee` of the pipeline
TEE = ("import os, sys\n"
       "with open(sys.argv[1], 'wb', buffering=0) as out:\n"
       "    while chunk := os.read(0, 65536):\n"
       "        out.write(chunk)\n")


@pytest.fixture
def run_env(tmp_path: Path, settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "NEWSWATCH_SOURCES_FILE"}
    env.update({
        "NEWSWATCH_STATE_DIR": str(tmp_path / "state"),
        "NEWSWATCH_SMTP_PORT": str(free_port()),
        "NEWSWATCH_FEED_PORT": str(free_port()),
        "NEWSWATCH_INDEX_PREFIX": settings.index_prefix,  # dropped by the fixture afterwards
        "NEWSWATCH_FEED_INTERVAL": "0.5",
        "NEWSWATCH_FEED_INITIAL": "1",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _start(env: dict[str, str], **streams) -> subprocess.Popen:
    return subprocess.Popen([NEWSWATCH, "run", "--services", "smtp,feeds", "--refresh", "0.5"],
                            env=env, stdin=subprocess.DEVNULL, start_new_session=True, **streams)


def _wait_ready(proc: subprocess.Popen, env: dict[str, str], log: Path | None,
                timeout: float = 120) -> dict[str, int]:
    """Wait until the run is up (its message in ``log``, or both ports answering); return the pids
    it started, from its pid files, checked against its actual children."""
    state = Path(env["NEWSWATCH_STATE_DIR"])
    ports = [int(env["NEWSWATCH_SMTP_PORT"]), int(env["NEWSWATCH_FEED_PORT"])]

    def ready() -> bool:
        if proc.poll() is not None:
            return True
        if log is not None:
            return READY in _read(log)
        return not any(port_is_free(p) for p in ports) and (state / "feeds" / "feeds.pid").exists()

    assert wait_for(ready, timeout, 0.2), f"run did not become ready: {_read(log)}"
    assert proc.poll() is None, f"run exited early with {proc.returncode}: {_read(log)}"
    pids = {name: int((state / name / f"{name}.pid").read_text()) for name in ("smtp", "feeds")}
    assert set(pids.values()) <= _children(proc.pid)  # the pid files name what it really started
    assert all(pid_alive(p) for p in pids.values())
    return pids


def _read(log: Path | None) -> str:
    return log.read_text(errors="replace") if log is not None and log.exists() else ""


def _stop_and_check(proc: subprocess.Popen, sig: int, pids: dict[str, int], env: dict[str, str]) -> int:
    started = _children(proc.pid) | set(pids.values())
    os.kill(proc.pid, sig)
    try:
        code = proc.wait(timeout=90)  # stopping takes seconds; 90 s only proves it did not hang
        left = sorted(p for p in started if pid_alive(p))
        assert not left, f"still running after the run exited: {left}"
    finally:  # a failed case must not leave its services behind for the next tests
        for pid in [proc.pid, *started]:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
    for name in ("NEWSWATCH_SMTP_PORT", "NEWSWATCH_FEED_PORT"):
        assert port_is_free(int(env[name])), f"{name} {env[name]} still accepts connections"
    assert not list(Path(env["NEWSWATCH_STATE_DIR"]).rglob("*.pid"))
    return code


@pytest.mark.parametrize(("sig", "expected"), [(signal.SIGINT, 130), (signal.SIGTERM, 143),
                                               (signal.SIGHUP, 129)])
def test_output_to_a_file_stops_everything_and_says_so(run_env, tmp_path, sig, expected):
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        proc = _start(run_env, stdout=out, stderr=subprocess.STDOUT)
    pids = _wait_ready(proc, run_env, log)
    assert _stop_and_check(proc, sig, pids, run_env) == expected
    text = _read(log)
    assert f"{signal.Signals(sig).name}: stopping" in text
    assert text.rstrip().endswith("nothing is left running."), text[-2000:]
    assert "Traceback" not in text and "error" not in text.lower(), text[-2000:]


def test_a_closed_pipe_does_not_stop_the_stop(run_env, tmp_path):
    """`newswatch run 2>&1 | tee log`, then Ctrl-C: tee dies first, so every later write fails."""
    log = tmp_path / "tee.log"
    proc = _start(run_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    tee = subprocess.Popen([sys.executable, "-c", TEE, str(log)], stdin=proc.stdout)
    proc.stdout.close()  # the reader's end is now tee's alone, as in a shell pipeline
    try:
        pids = _wait_ready(proc, run_env, log)
    finally:
        tee.kill()
        tee.wait()
    # the run goes on printing a summary every 0.5 s into the dead pipe until the signal comes
    assert wait_for(lambda: proc.poll() is not None, 1.5, 0.1) is False
    assert _stop_and_check(proc, signal.SIGINT, pids, run_env) == 130
    assert "Traceback" not in _read(log)


def test_no_stdout_and_no_stderr_at_all(run_env):
    """Started with descriptors 1 and 2 closed (a daemon or a terminal long gone), then SIGHUP."""
    def close_output() -> None:
        os.close(1)
        os.close(2)

    proc = subprocess.Popen([NEWSWATCH, "run", "--services", "smtp,feeds", "--refresh", "0.5"],
                            env=run_env, stdin=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=close_output)  # noqa: PLW1509 - single-threaded enough here
    pids = _wait_ready(proc, run_env, None)
    assert _stop_and_check(proc, signal.SIGHUP, pids, run_env) == 129


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.timeout(600)
def test_the_full_default_set_stops_on_a_closed_terminal(run_env, tmp_path, request, monkeypatch):
    """Every default service (its own Elasticsearch node on a free port, SMTP, the feeds and
    Airflow with all its processes), output to a file, then SIGHUP: nothing survives, checked by
    pids (the run's children and the pid files, plus every process of its AIRFLOW_HOME and of its
    Elasticsearch state folder) and by ports."""
    from pipeline.settings import load_settings
    from pipeline.stack import airflow as airflow_stack
    from pipeline.stack.processes import processes_using

    es_port, airflow_port = free_port(), free_port()
    # Elasticsearch runs as an unprivileged user when we are root: its state folder must be where
    # that user can reach it (pytest's tmp folders are private), so beside the suite's own state
    base = Path(os.environ.get("NEWSWATCH_STATE_DIR") or tmp_path)
    private = base / f"run-shutdown-{uuid.uuid4().hex[:8]}"
    request.addfinalizer(lambda: shutil.rmtree(private, ignore_errors=True))
    run_env.update({"NEWSWATCH_STATE_DIR": str(private), "NEWSWATCH_ES_URL": f"http://127.0.0.1:{es_port}",
                    "NEWSWATCH_AIRFLOW_PORT": str(airflow_port), "NEWSWATCH_AIRFLOW_PARALLELISM": "2"})
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([NEWSWATCH, "run", "--refresh", "2"], env=run_env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    state = Path(run_env["NEWSWATCH_STATE_DIR"])
    for key, value in run_env.items():  # so the helpers below look at this run's state and ports
        monkeypatch.setenv(key, value)
    settings = load_settings()
    pids = _wait_ready(proc, run_env, log, timeout=480)
    airflow = set(airflow_stack.processes(settings))
    es_nodes = set(processes_using(state / "elasticsearch", "org.elasticsearch"))
    assert airflow and es_nodes
    try:
        code = _stop_and_check(proc, signal.SIGHUP, pids, run_env)
    finally:
        for pid in airflow | es_nodes:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert code == 129, _read(log)[-3000:]
    assert not [p for p in airflow | es_nodes if pid_alive(p)]
    assert not airflow_stack.processes(settings)
    assert port_is_free(es_port) and port_is_free(airflow_port)
    assert _read(log).rstrip().endswith("nothing is left running.")
