"""Connection settings from one URL or an Airflow connection's fields; the client they build works."""

from __future__ import annotations

import pytest

from pipeline.errors import ConfigError
from pipeline.es.client import build_client, settings_from_connection, settings_from_url


def test_url_with_credentials_and_options():
    cfg = settings_from_url("https://elastic:p%40ss%3Aword@es.example.test:9243/?ca_certs=/etc/ca.pem"
                            "&verify_certs=true&request_timeout=12")
    assert cfg.url == "https://es.example.test:9243"
    assert (cfg.username, cfg.password) == ("elastic", "p@ss:word")
    assert cfg.ca_certs == "/etc/ca.pem" and cfg.verify_certs is True and cfg.request_timeout == 12.0
    key = settings_from_url("https://es.example.test/?api_key=abc%3D%3D", verify_certs=False)
    assert key.api_key == "abc==" and key.url == "https://es.example.test" and key.verify_certs is False


@pytest.mark.parametrize("bad", ["es.example.test:9200", "ftp://es.example.test", "http://:9200",
                                 "http://host:notaport", "http://host/?verify_certs=maybe"])
def test_bad_urls_are_config_errors_without_leaking_passwords(bad):
    with pytest.raises(ConfigError):
        settings_from_url(bad)
    with pytest.raises(ConfigError) as err:
        settings_from_url("ftp://user:hunter2@host")
    assert "hunter2" not in str(err.value)


def test_airflow_connection_fields():
    cfg = settings_from_connection(host="es.example.test", port=9243, schema="https", login="elastic",
                                   password="pw", extra={"ca_certs": "/ca.pem"})
    assert cfg.url == "https://es.example.test:9243" and cfg.username == "elastic"
    assert cfg.ca_certs == "/ca.pem"
    api = settings_from_connection(host="es.example.test", login="ignored", password="ignored",
                                   extra={"api_key": "k", "use_ssl": "true", "verify_certs": "false"})
    assert api.url == "https://es.example.test:9200" and api.api_key == "k"
    assert api.username is None and api.verify_certs is False
    whole = settings_from_connection(host="http://127.0.0.1:9250", login="u", password="p")
    assert whole.url == "http://127.0.0.1:9250" and (whole.username, whole.password) == ("u", "p")


def test_client_built_from_a_parsed_url_talks_to_the_real_node(base_settings):
    cfg = settings_from_url(base_settings.elasticsearch.url + "/?request_timeout=5")
    client = build_client(cfg)
    assert client.cluster.health()["status"] in {"green", "yellow"}


def test_env_url_with_credentials_is_parsed_before_the_client_sees_it(base_settings):
    """NEWSWATCH_ES_URL=http://user:pass@host works like NEWSWATCH_ES_USERNAME/PASSWORD."""
    from dataclasses import replace

    url = base_settings.elasticsearch.url.replace("http://", "http://reader:s3cret@")
    client = build_client(replace(base_settings.elasticsearch, url=url + "/?request_timeout=7"))
    [node] = client.transport.node_pool.all()
    assert node.config.host == "127.0.0.1" and "s3cret" not in str(node.config)
    assert client._headers["authorization"].startswith("Basic ")
    assert client.cluster.health()["status"] in {"green", "yellow"}  # security off: auth ignored


def test_package_exports():
    import pipeline.es as es_pkg

    assert sorted(es_pkg.__all__) == sorted(n for n in es_pkg.__all__ if hasattr(es_pkg, n))
    assert {"bulk_write", "ensure_indices", "settings_from_url", "build_client"} <= set(es_pkg.__all__)


def test_airflow_connection_uri():
    cfg = settings_from_url("elasticsearch://elastic:pw@es.example.test:9243?use_ssl=true&ca_certs=%2Fca.pem")
    assert cfg.url == "https://es.example.test:9243"
    assert (cfg.username, cfg.password, cfg.ca_certs) == ("elastic", "pw", "/ca.pem")
    assert settings_from_url("es://127.0.0.1:9250").url == "http://127.0.0.1:9250"


def test_a_cluster_connection_gives_the_client_every_node(base_settings):
    from urllib.parse import urlsplit

    node = urlsplit(base_settings.elasticsearch.url)
    others = [f"localhost:{node.port}", f"{node.hostname}:{node.port}"]
    cfg = settings_from_connection(host=node.hostname, port=node.port, schema="http", extra={"hosts": others})
    assert cfg.url == f"http://{node.hostname}:{node.port},http://localhost:{node.port}"  # no repeat
    es = build_client(cfg)
    assert len(es.transport.node_pool.all()) == 2
    assert es.cluster.health()["status"] in {"green", "yellow"}
    listed = settings_from_connection(host="es1.example.test", schema="https",
                                      extra={"hosts": "es2.example.test, https://es3.example.test:9243"})
    assert listed.url.split(",") == ["https://es1.example.test:9200", "https://es2.example.test:9200",
                                     "https://es3.example.test:9243"]


@pytest.mark.parametrize("hosts", [["user:pw@es2:9200"], "es2:99999", ["ftp://es2"], "es2/path"])
def test_a_bad_cluster_host_names_the_field(hosts):
    with pytest.raises(ConfigError) as err:
        settings_from_connection(host="es1.example.test", extra={"hosts": hosts})
    assert "extra.hosts" in str(err.value) and "pw" not in str(err.value)
