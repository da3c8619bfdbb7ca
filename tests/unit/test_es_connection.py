"""The one mapping of an Airflow ``elasticsearch`` connection's fields to settings (pure function).

``plugins/newswatch_airflow/connections.py`` only hands these fields over; tests/dags/test_plugins.py
checks that hand-over with real ``airflow.sdk.Connection`` objects.
"""

from __future__ import annotations

import pytest

from pipeline.errors import ConfigError
from pipeline.es.client import settings_from_connection
from pipeline.settings import ElasticsearchSettings


def conn(**fields):
    return settings_from_connection(**{"host": "es.example.test", **fields})


def test_host_is_required_and_may_be_a_whole_url():
    for missing in (None, "", "   "):
        with pytest.raises(ConfigError) as info:
            settings_from_connection(host=missing, conn_id="my_es")
        assert (info.value.item, info.value.field) == ("my_es", "host")
    whole = conn(host="https://reader:p%40ss@es.example.test:9243/?ca_certs=/ca.pem", port=1,
                 schema="http")
    assert whole.url == "https://es.example.test:9243"  # port and schema are ignored for a URL
    assert (whole.username, whole.password, whole.ca_certs) == ("reader", "p@ss", "/ca.pem")
    with pytest.raises(ConfigError) as info:
        conn(host="ftp://es.example.test", conn_id="my_es")
    assert (info.value.item, info.value.field) == ("my_es", "host")
    assert str(info.value).count("field") == 1


def test_port_defaults_to_9200_for_both_schemes():
    assert conn().url == "http://es.example.test:9200"
    assert conn(schema="https").url == "https://es.example.test:9200"
    assert conn(port=9243).url == "http://es.example.test:9243"
    assert conn(port="9243").url == "http://es.example.test:9243"
    for bad in ("ninety", 0, 70000):
        with pytest.raises(ConfigError) as info:
            conn(port=bad, conn_id="my_es")
        assert (info.value.item, info.value.field) == ("my_es", "port")


def test_scheme_from_extra_then_schema_then_use_ssl():
    assert conn(schema="HTTPS").url.startswith("https://")
    assert conn(schema="http", extra={"scheme": "https"}).url.startswith("https://")
    assert conn(extra={"use_ssl": "true"}).url.startswith("https://")
    assert conn(extra={"use_ssl": True}).url.startswith("https://")
    assert conn(schema="http", extra={"use_ssl": True}).url.startswith("http://")
    with pytest.raises(ConfigError) as info:
        conn(schema="ftp", conn_id="my_es")
    assert (info.value.item, info.value.field) == ("my_es", "schema")
    with pytest.raises(ConfigError) as info:
        conn(extra={"scheme": "gopher"})
    assert info.value.field == "extra.scheme"
    with pytest.raises(ConfigError) as info:
        conn(extra={"use_ssl": "perhaps"})
    assert info.value.field == "extra.use_ssl"


def test_login_and_password_are_basic_auth_unless_an_api_key_is_given():
    basic = conn(login="elastic", password="pw")
    assert (basic.username, basic.password, basic.api_key) == ("elastic", "pw", None)
    keyed = conn(login="ignored", password="ignored", extra={"api_key": "abc=="})
    assert (keyed.username, keyed.password, keyed.api_key) == (None, None, "abc==")
    url_keyed = conn(host="https://u:p@es.example.test", extra={"api_key": "k"})
    assert (url_keyed.username, url_keyed.password, url_keyed.api_key) == (None, None, "k")
    assert conn(login="", password="").username is None


def test_extras_ca_certs_verify_certs_and_timeout():
    cfg = conn(extra={"ca_certs": "/etc/ca.pem", "verify_certs": "false", "request_timeout": 5})
    assert (cfg.ca_certs, cfg.verify_certs, cfg.request_timeout) == ("/etc/ca.pem", False, 5.0)
    assert conn().verify_certs is True
    assert conn(extra={"verify_certs": False}).verify_certs is False
    assert conn(extra={"timeout": "7.5"}).request_timeout == 7.5
    with pytest.raises(ConfigError) as info:
        conn(extra={"verify_certs": "maybe"}, conn_id="my_es")
    assert (info.value.item, info.value.field) == ("my_es", "extra.verify_certs")
    with pytest.raises(ConfigError) as info:
        conn(extra={"request_timeout": "soon"}, conn_id="my_es")
    assert (info.value.item, info.value.field) == ("my_es", "extra.request_timeout")


def test_only_the_timeout_comes_from_the_base_settings():
    base = ElasticsearchSettings(url="https://other.example.test:9200", api_key="env-key",
                                 username="env-user", password="env-pw", ca_certs="/env/ca.pem",
                                 verify_certs=False, request_timeout=12.0)
    cfg = conn(base=base)
    assert cfg == ElasticsearchSettings(url="http://es.example.test:9200", request_timeout=12.0)
    assert conn(base=base, extra={"request_timeout": 3}).request_timeout == 3.0
