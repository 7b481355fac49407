"""Uploads in the browser: files, a folder's path and a manifest go to S3 through presigned URLs
(a large file in parts, its ETags read through the bucket's CORS); a file the API refuses and
a transfer that breaks are marked per file and don't stop the others; retry sends the broken
one; the manifest's import shows its broken line in its error report."""

from __future__ import annotations

import json
from pathlib import Path

from playwright.sync_api import Page, Route, expect

from tests.browser.conftest import missing_keys, new_project, shapes, shot, sign_in
from tests.e2e.conftest import DevStack, demo_token, http, wait_for

CLASSIFY = [{"name": "kind", "type": "classification", "classes": [{"name": "a"}, {"name": "b"}]}]


def _files(tmp: Path) -> dict[str, Path]:
    square, circle = shapes(2)
    manifest = tmp / "lines.jsonl"
    good = [json.dumps({"data": {"text": f"manifest line {i}"}}) for i in range(3)]
    manifest.write_text("\n".join([good[0], good[1], '{"data": broken', good[2]]) + "\n", encoding="utf-8")
    refused = tmp / "notes.exe"
    refused.write_bytes(b"MZ not media")
    big = tmp / "big.png"  # above the app's multipart threshold (16 MiB): sent in parts
    big.write_bytes(square.read_bytes() + b"\0" * (17 * 1024 * 1024))
    return {"square": square, "circle": circle, "manifest": manifest, "refused": refused, "big": big}


def test_uploads_report_each_file_retry_and_the_import_error_report(
    web_stack: DevStack, page: Page, tmp_path: Path
) -> None:
    # Given a project that takes images and text, and a transfer of one file that breaks once
    pid = new_project(web_stack, "Uploads", ["image", "text"], CLASSIFY, [], members=())
    files = _files(tmp_path)
    broken = {"left": 1}

    def flaky(route: Route) -> None:
        if route.request.method == "PUT" and broken["left"] > 0:
            broken["left"] -= 1
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route(f"**/{files['circle'].name}?*", flaky)
    sign_in(page, web_stack, "manager", f"/projects/{pid}/upload")

    # When the manager chooses the files
    page.get_by_test_id("upload-input").set_input_files([str(p) for p in files.values()])

    # Then each file ends as it should, the refused and the broken one with their reasons
    def row(name: str):  # a Locator
        return page.locator(f"[data-testid=upload-file][data-name='{name}']")

    for name in (files["square"].name, "lines.jsonl", "big.png"):
        expect(row(name)).to_have_attribute("data-status", "done", timeout=60_000)
    expect(row("notes.exe")).to_have_attribute("data-status", "failed")
    expect(row("notes.exe").get_by_test_id("upload-error")).to_contain_text("neither a supported media type")
    expect(row(files["circle"].name)).to_have_attribute("data-status", "failed")
    expect(page.get_by_test_id("upload-summary")).to_have_attribute("data-failed", "2")
    shot(page, "upload-errors")

    # When the broken transfer is retried / Then it is uploaded
    row(files["circle"].name).get_by_test_id("upload-retry").click()
    expect(row(files["circle"].name)).to_have_attribute("data-status", "done")

    # And the objects are in S3 as tasks: two images, the big one, three manifest lines
    manager = demo_token(web_stack, "manager")

    def tasks() -> bool:
        status, stats = http(web_stack, "GET", f"/projects/{pid}/stats", manager)
        return status == 200 and stats["tasks"] == 6

    wait_for(tasks, timeout_s=120, what="the six tasks of the uploads")

    # And the manifest's import shows its broken line in the error report
    manifest_row = page.locator("[data-testid=import-row][data-key$='lines.jsonl']")
    expect(manifest_row).to_have_attribute("data-status", "completed_with_errors", timeout=60_000)
    expect(manifest_row).to_have_attribute("data-tasks", "3")
    expect(manifest_row).to_have_attribute("data-errors", "1")
    manifest_row.get_by_test_id("import-errors-open").click()
    href = manifest_row.get_by_test_id("import-errors").get_attribute("href")
    assert href
    report = page.request.get(href)
    assert report.ok, report.status
    assert "3" in report.text() and "broken" in report.text(), report.text()
    shot(page, "upload-imports")
    assert missing_keys(page) == []
