"""``newswatch kibana import`` against a real HTTP server standing in for Kibana's import API."""

from __future__ import annotations

import json
from email import message_from_bytes
from email.policy import HTTP

import pytest

from pipeline import kibana
from pipeline import kibana_api as kibana_client
from pipeline.cli import main
from pipeline.errors import ServiceError, ServiceUnavailable
from pipeline.stack.ports import free_port
from tests.support import Response


@pytest.fixture
def kibana_api(http_server):
    """Kibana's import endpoint on the test server: records each POST's headers and body.

    ``tests/support.LocalHTTPServer`` only routes GET/HEAD; its per-instance handler class gets
    POST routed the same way here (the shared helper could simply add ``do_POST = do_GET``).
    """
    handler_class = http_server._httpd.RequestHandlerClass
    handler_class.do_POST = handler_class.do_GET
    posts: list[dict] = []
    answer = {"status": 200, "body": None}

    def handle(handler):
        length = int(handler.headers.get("Content-Length", "0"))
        body = handler.rfile.read(length)
        posts.append({"path": handler.path, "headers": {k.lower(): v for k, v in handler.headers.items()},
                      "body": body})
        if answer["body"] is not None:
            payload = answer["body"]
        else:
            count = sum(1 for line in _file_part(posts[-1]).splitlines() if line.strip())
            payload = {"success": True, "successCount": count, "successResults": []}
        return Response(json.dumps(payload).encode(), answer["status"],
                        {"Content-Type": "application/json"})

    http_server.route("/api/saved_objects/_import", handle)
    http_server.route("/s/analysts/api/saved_objects/_import", handle)
    http_server.route("/api/status", Response(b'{"status":{"overall":{"level":"available"}}}'))
    return http_server, posts, answer


def _file_part(post: dict) -> str:
    """The uploaded file of a multipart/form-data body, parsed with the standard library."""
    raw = f"Content-Type: {post['headers']['content-type']}\r\n\r\n".encode() + post["body"]
    msg = message_from_bytes(raw, policy=HTTP)
    assert msg.is_multipart()
    [part] = list(msg.iter_parts())
    assert part.get_param("name", header="content-disposition") == "file"
    assert part.get_filename().endswith(".ndjson")
    return part.get_payload(decode=True).decode("utf-8")


def test_cli_import_posts_the_ndjson_with_kbn_xsrf_and_overwrite(kibana_api, capsys):
    server, posts, _ = kibana_api
    assert main(["kibana", "import", "--url", server.base_url, "--prefix", "newswatch"]) == 0
    [post] = posts
    assert post["path"] == "/api/saved_objects/_import?overwrite=true"
    assert post["headers"]["kbn-xsrf"]
    assert post["headers"]["content-type"].startswith("multipart/form-data; boundary=")
    assert _file_part(post) == kibana.NDJSON_PATH.read_text(encoding="utf-8")
    assert "imported 25 saved objects" in capsys.readouterr().out


def test_import_to_a_space_with_another_prefix_and_basic_auth(kibana_api):
    server, posts, _ = kibana_api
    url = server.base_url.replace("http://", "http://analyst:s%40cret@")
    assert main(["kibana", "import", "--url", url, "--space", "analysts", "--prefix", "acme",
                 "--wait", "5"]) == 0
    [post] = posts
    assert post["path"].startswith("/s/analysts/api/saved_objects/_import")
    assert post["headers"]["authorization"].startswith("Basic ")
    import base64
    assert base64.b64decode(post["headers"]["authorization"][6:]) == b"analyst:s@cret"
    titles = {o["attributes"]["title"] for o in map(json.loads, _file_part(post).splitlines())
              if o["type"] == "index-pattern"}
    assert titles == {"acme-articles", "acme-claims", "acme-alerts", "acme-feeds", "acme-clusters"}


def test_import_errors_reported_by_kibana_fail_the_command(kibana_api):
    server, _, answer = kibana_api
    answer["body"] = {"success": False, "successCount": 19, "errors": [
        {"id": kibana.DASHBOARD_ID, "type": "dashboard", "error": {"type": "missing_references"}}]}
    with pytest.raises(ServiceError, match="missing_references"):
        kibana_client.import_saved_objects(server.base_url, kibana.NDJSON_PATH.read_text())
    assert main(["kibana", "import", "--url", server.base_url]) == 2


def test_kibana_5xx_and_kibana_down_are_service_unavailable(kibana_api):
    server, _, answer = kibana_api
    answer["status"], answer["body"] = 503, {"message": "Kibana server is not ready yet"}
    with pytest.raises(ServiceUnavailable):
        kibana_client.import_saved_objects(server.base_url, "{}\n")
    with pytest.raises(ServiceUnavailable):
        kibana_client.import_saved_objects(f"http://127.0.0.1:{free_port()}", "{}\n", timeout=2)
    with pytest.raises(ServiceUnavailable, match="not ready"):
        kibana_client.wait_for_kibana(f"http://127.0.0.1:{free_port()}", timeout=0.3, interval=0.1)
