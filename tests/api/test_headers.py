"""Security headers on the page and the API (the browser tests check that the page runs under
its Content-Security-Policy without a refusal)."""

from sfumato.api.headers import CONTENT_SECURITY_POLICY


def test_the_page_and_the_api_carry_the_security_headers(server):
    for path in ("/", "/v1/health", "/static/js/main.js", "/v1/nonesuch"):
        answer = server.client.get(path)
        assert answer.headers["x-content-type-options"] == "nosniff", path
        assert answer.headers["x-frame-options"] == "DENY", path
        assert answer.headers["referrer-policy"] == "same-origin", path
        policy = answer.headers["content-security-policy"]
        assert policy == CONTENT_SECURITY_POLICY, path
        assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
    # an error answer keeps its own headers beside them
    assert server.client.get("/v1/nonesuch").status_code == 404


def test_the_api_docs_page_may_load_swagger_ui(server):
    answer = server.client.get("/docs")
    assert answer.status_code == 200
    assert "content-security-policy" not in answer.headers
    assert answer.headers["x-frame-options"] == "DENY"
