"""`/api/docs/` works on a machine without internet: Swagger UI is served by the service.

The page and everything it loads come from the service itself
(drf-spectacular-sidecar's assets through the static files), checked in the
HTML and, where Chromium is installed, in a real browser that is refused any
other host.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from django.test import Client

from testing.browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, needs_chromium

URL_IN_PAGE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|(https?:)?//[\w.-]+\.[a-z]{2,}[^\s"'<>)]*""")


def test_the_docs_page_references_no_other_host():
    client = Client(HTTP_HOST="localhost")
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "swagger-ui" in html
    references = [m.group(1) or m.group(0) for m in URL_IN_PAGE.finditer(html)]
    assert references, "the page loads nothing: the test would prove nothing"
    foreign = [ref for ref in references if urlsplit(ref).netloc]
    assert foreign == [], foreign
    assert '"validatorUrl": null' in html  # Swagger UI's default validator badge is fetched from afar
    # Each asset the page names is served here.
    assets = [ref for ref in references if ref.startswith("/static/")]
    assert len(assets) >= 3  # the stylesheet, the bundle, the preset
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert b"".join(response.streaming_content if response.streaming else [response.content])


@pytest.mark.slow
@needs_chromium
@pytest.mark.django_db(transaction=True)
def test_the_docs_render_in_a_browser_that_cannot_reach_other_hosts(live_server, monkeypatch):
    from playwright.sync_api import expect, sync_playwright

    # Playwright's sync API runs an event loop in this thread; the live server's ORM calls are elsewhere.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    local = urlsplit(live_server.url).netloc
    refused: list[str] = []

    def only_this_service(route, request) -> None:
        if urlsplit(request.url).netloc == local:
            route.continue_()
        else:
            refused.append(request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.route("**/*", only_this_service)
            page.goto(live_server.url + "/api/docs/")
            operations = page.locator(".swagger-ui .opblock")
            expect(operations.first).to_be_visible(timeout=20_000)
            assert operations.count() > 20  # the whole API, from the schema the page fetched here
            expect(page.locator(".swagger-ui .info .title")).to_contain_text("User service")
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "api-docs-offline.png"), full_page=False)
        finally:
            browser.close()
    assert refused == []
