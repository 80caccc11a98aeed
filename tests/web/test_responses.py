import json

from shared.web.responses import error, html_page


def test_html_page_escapes_and_sets_security_headers() -> None:
    r = html_page(200, "Connected", "as <script>alert(1)</script>")
    body = r.get_body().decode()
    assert "<script>" not in body and "&lt;script&gt;" in body
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]


def test_error_is_json_with_extra_fields() -> None:
    r = error(400, "bad", problems=[{"field": "x", "message": "y"}])
    assert r.status_code == 400
    assert json.loads(r.get_body()) == {"error": "bad", "problems": [{"field": "x", "message": "y"}]}
