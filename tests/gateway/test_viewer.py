"""The live viewer in a real browser: Debian's headless Chromium driven by Playwright."""

from __future__ import annotations

import shutil

import pytest

from gateway.client import SyncMemoryClient
from tests.gateway.conftest import LiveGateway, token

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)")
def test_viewer_logs_in_lists_memories_and_shows_events_live(threaded_gateway: LiveGateway):
    from playwright.sync_api import expect, sync_playwright

    with SyncMemoryClient(threaded_gateway.url, token(["user:alice"])) as writer:
        writer.add("Alice is allergic to peanuts", user_id="alice", infer=False)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=["--no-sandbox", "--disable-gpu"])
            try:
                page = browser.new_page()
                page.goto(threaded_gateway.http + "/")
                expect(page.get_by_test_id("status")).to_have_text("not connected")
                page.fill("input[name=token]", "garbage")
                page.fill("input[name=user_id]", "alice")
                page.click("button[type=submit]")
                expect(page.get_by_test_id("error")).to_contain_text("unauthenticated", timeout=15000)

                page.fill("input[name=token]", token(["user:alice"], rights=["read", "subscribe"]))
                page.click("button[type=submit]")
                expect(page.get_by_test_id("status")).to_have_text("live: user:alice", timeout=15000)
                expect(page.get_by_test_id("memories")).to_contain_text("Alice is allergic to peanuts")
                expect(page.get_by_test_id("count")).to_have_text("1")

                added = writer.add("Alice drinks green tea", user_id="alice", infer=False)
                expect(page.get_by_test_id("events")).to_contain_text("added: Alice drinks green tea", timeout=15000)
                expect(page.get_by_test_id("count")).to_have_text("2")
                writer.update(added["results"][0]["id"], "Alice drinks oolong tea")
                expect(page.get_by_test_id("events")).to_contain_text("updated: Alice drinks oolong tea",
                                                                      timeout=15000)
                writer.delete(added["results"][0]["id"])
                expect(page.get_by_test_id("events")).to_contain_text("deleted: Alice drinks oolong tea",
                                                                      timeout=15000)
                expect(page.get_by_test_id("count")).to_have_text("1")
                expect(page.get_by_test_id("head")).to_have_text("4")
            finally:
                browser.close()
