"""NER in the browser: the offsets the API stores are exactly those of the selected characters
(``text[start:end]`` in Python, which counts code points, equals the selection), on every line
of the multilingual dataset and on a Japanese sentence with an emoji ZWJ sequence and a
combining mark."""

from __future__ import annotations

import json

from playwright.sync_api import Page, expect

from infra.local.datasets import datasets_dir
from tests.browser.conftest import annotations_of, missing_keys, new_project, shot, sign_in
from tests.e2e.conftest import DevStack, demo_token, http

# 👩‍👩‍👧 is five code points (three people joined by two ZWJ), é here is e + U+0301
HARD = "東京で👩‍👩‍👧の家族がcafé\u0301を楽しんだ。"
HARD_TARGET = "👩‍👩‍👧の家族がcafé\u0301"


def _lines() -> list[str]:
    path = datasets_dir() / "text" / "multilingual.jsonl"
    return [
        json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def _target(text: str) -> str:
    """The part of ``text`` to select: its middle third (by code points), or the hard part."""
    if text == HARD:
        return HARD_TARGET
    points = list(text)
    third = max(1, len(points) // 3)
    return "".join(points[third : 2 * third])


def _select(page: Page, target: str) -> None:
    """Select ``target`` in the task's text as a mouse would (a DOM range, then pointerup)."""
    page.evaluate(
        """target => {
            const box = document.querySelector('[data-testid=task-text]');
            const walker = document.createTreeWalker(box, NodeFilter.SHOW_TEXT);
            let node, offset = -1;
            while ((node = walker.nextNode())) { offset = node.data.indexOf(target); if (offset >= 0) break; }
            if (offset < 0) throw new Error('target not in the text: ' + target);
            box.dispatchEvent(new PointerEvent('pointerdown', { bubbles: true, isPrimary: true, button: 0 }));
            const range = document.createRange();
            range.setStart(node, offset);
            range.setEnd(node, offset + target.length);
            const selection = window.getSelection();
            selection.removeAllRanges();
            selection.addRange(range);
            document.dispatchEvent(new Event('selectionchange'));
            return new Promise(resolve => setTimeout(() => {
                box.dispatchEvent(new PointerEvent('pointerup', { bubbles: true, isPrimary: true, button: 0 }));
                resolve(null);
            }, 50));
        }""",
        target,
    )


def test_span_offsets_are_the_selected_characters(web_stack: DevStack, page: Page) -> None:
    texts = [*_lines(), HARD]
    pid = new_project(
        web_stack,
        "NER offsets",
        ["text"],
        [
            {
                "name": "entities",
                "type": "ner",
                "source": "text",
                "classes": [{"name": "PART"}, {"name": "OTHER"}],
            }
        ],
        [{"text": {"kind": "text", "text": text}} for text in texts],
    )
    sign_in(page, web_stack, "annotator", f"/projects/{pid}/label")
    labelled: dict[str, str] = {}
    for _ in texts:
        expect(page.get_by_test_id("text-workspace")).to_be_visible()
        labeling = page.get_by_test_id("labeling")
        task_id = labeling.get_attribute("data-task-id") or ""
        text = page.get_by_test_id("task-text").inner_text()
        target = _target(text)
        _select(page, target)
        expect(page.get_by_test_id("region")).to_have_count(1)
        if text == HARD:
            shot(page, "labeling-text")
        labelled[task_id] = target
        page.get_by_test_id("submit").click()
        expect(labeling.or_(page.get_by_test_id("queue-empty"))).not_to_have_attribute(
            "data-task-id", task_id
        )
    expect(page.get_by_test_id("queue-empty")).to_be_visible()
    assert missing_keys(page) == []

    manager = demo_token(web_stack, "manager")
    assert len(labelled) == len(texts)
    for task_id, target in labelled.items():
        status, task = http(web_stack, "GET", f"/projects/{pid}/tasks/{task_id}", manager)
        assert status == 200, task
        text = task["data"]["text"]["text"]
        page_of = annotations_of(web_stack, pid, task_id)
        (span,) = page_of[0]["results"][0]["spans"]
        assert text[span["start"] : span["end"]] == target, (text, span, target)
