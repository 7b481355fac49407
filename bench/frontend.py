"""The web app, measured in Debian's headless Chromium against the live local stack.

The stack runs as `make dev` runs it (:func:`bench.live.live_stack`: ``python -m infra.local``
in its own process, every poller, the state machine, the functions in worker processes), and
serves the built app (``frontend/dist``) at its gateway URL. The browser is driven with the
Python Playwright binding; users sign in through the stack's login page, as people do.

- **shell size**: the JS and CSS ``frontend/dist/index.html`` loads before anything else (its
  script and stylesheet tags and their modulepreload links), gzip level 9, beside the largest
  chunks loaded lazily (pages and workspaces);
- **task list, 100k tasks**: from a click on the project's "Tasks" link to the first
  ``task-row`` in the DOM (a MutationObserver set up in the page before the click, timed with
  ``performance.now()``), and to the next frame rendered after it; also a cold load
  (``page.goto`` of the list's URL, from navigation start);
- **scrolling**: the list's scroller moved by a fixed step in a ``requestAnimationFrame`` loop
  for ~3 s: rAF deltas, main-thread time per frame (frame start to the first task after the
  frame rendered) and long tasks (``PerformanceObserver('longtask')``);
- **next task**: an annotator on an image project (bbox control), the next task prefetched
  (leased and its image loaded while the current one is shown), from a click on Skip to the
  next task's image workspace ready (``data-ready=true`` under a different ``data-task-id``);
- **dashboard at 1k and 100k tasks**: from a click on the project's "Dashboard" link to
  ``stat-tasks`` in the DOM.

Beside the task list, dashboard and skip times, the API request each waits on is given (resource
timing), and beside the scrolling figures, the same scroll loop on a static page of plain rows:
what this headless Chromium reaches on this machine at the same moment, without the app. The
next-task times are split by whether the next task was prefetched when Skip was clicked (the
page had leased it and its image was loaded; waited for up to 5 s).

The pipeline is still working through the 100k tasks' events while the browser measures
(the stack's CPU over each measurement is printed), as it would be right after an import in
``make dev``. ``BENCH_WEB_TASKS`` (default 100000), ``BENCH_WEB_N`` (default 10) and
``BENCH_WEB_BUILD`` (default 1: ``npm run build`` first; 0 measures ``frontend/dist`` as it is)
change the run. The build and the whole browser run hold ``/tmp/serval-web.lock`` (flock), which
other agents' browser runs share.
"""

from __future__ import annotations

import fcntl
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import psutil
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

from bench.live import LiveStack, _client, _wait_seeded, live_stack
from bench.report import Table, percentile
from infra.local.datasets import datasets_dir
from infra.local.seed import DEMO_USERS, DemoUser
from infra.local.stack import local_spec
from infra.spec import ROOT

FRONTEND = ROOT / "frontend"
DIST = FRONTEND / "dist"
LOCK = Path("/tmp/serval-web.lock")
BIG = int(os.environ.get("BENCH_WEB_TASKS", "100000"))
SMALL = 1000
IMAGES = 20
N = int(os.environ.get("BENCH_WEB_N", "10"))
BUILD = os.environ.get("BENCH_WEB_BUILD", "1") != "0"
SHELL_TARGET_KIB = 250
FRAME_MS = 1000 / 60
SCROLL_STEP_PX = 150  # about 4 rows a frame: a fast fling
SCROLL_S = 3.0
TIMEOUT_MS = 30_000
PREFETCH_WAIT_MS = 5_000
CHROMIUM = os.environ.get("SERVAL_CHROMIUM", "/usr/bin/chromium")
TEXT_CONTROLS = [{"name": "topic", "type": "classification", "classes": [{"name": "a"}, {"name": "b"}]}]
IMAGE_CONTROLS = [{"name": "shape", "type": "bbox", "classes": [{"name": "a"}, {"name": "b"}]}]
LIVE = "live local stack (python -m infra.local: every poller, the state machine)"


# ---- shell size ------------------------------------------------------------------------------


class _Shell(HTMLParser):
    """The JS and CSS an HTML page loads up front: script src, stylesheet and modulepreload hrefs."""

    def __init__(self) -> None:
        super().__init__()
        self.assets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script" and a.get("src"):
            self.assets.append(str(a["src"]))
        elif tag == "link" and a.get("href") and (a.get("rel") or "") in ("stylesheet", "modulepreload"):
            self.assets.append(str(a["href"]))


def _gzip_kib(path: Path) -> float:
    return len(gzip.compress(path.read_bytes(), compresslevel=9)) / 1024


def _asset(href: str) -> Path:
    return DIST / href.split("?", maxsplit=1)[0].lstrip("/")


def shell_tables(built: str) -> list[Table]:
    parser = _Shell()
    parser.feed((DIST / "index.html").read_text())
    shell = [_asset(h) for h in parser.assets]
    shell_kib = sum(_gzip_kib(p) for p in shell)
    raw_kib = sum(p.stat().st_size for p in shell) / 1024
    size = Table(
        f"Web app shell: what frontend/dist/index.html loads up front ({built})",
        ["measure", "result", "target", "met?"],
    )
    for p in shell:
        size.add(f"  {p.name}", f"{_gzip_kib(p):.1f} KiB gzip ({p.stat().st_size / 1024:.1f} raw)", "", "")
    size.add(
        f"shell JS + CSS, gzip -9 ({len(shell)} files)",
        f"{shell_kib:.1f} KiB ({raw_kib:.1f} KiB raw)",
        f"<= {SHELL_TARGET_KIB} KiB",
        "yes" if shell_kib <= SHELL_TARGET_KIB else "NO",
    )
    lazy = [
        p
        for p in (DIST / "assets").iterdir()
        if p.suffix in (".js", ".css") and p not in shell and not p.name.endswith(".map")
    ]
    chunks = Table(
        "Lazily loaded chunks, largest first (gzip -9; not part of the shell)",
        ["chunk", "gzip KiB", "raw KiB", "kind"],
    )
    for p in sorted(lazy, key=_gzip_kib, reverse=True)[:10]:
        kind = "workspace" if "Workspace" in p.name or p.name.startswith("workspace") else "page/shared"
        chunks.add(p.name, f"{_gzip_kib(p):.1f}", f"{p.stat().st_size / 1024:.1f}", kind)
    chunks.add(
        f"all {len(lazy)} lazy chunks", f"{sum(_gzip_kib(p) for p in lazy):.1f}", "", "(loaded as pages open)"
    )
    return [size, chunks]


# ---- the lock, the build ---------------------------------------------------------------------


def _inherited_lock() -> bool:
    """Whether a parent (``flock /tmp/serval-web.lock …``) already holds the lock for us."""
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(LOCK):
                return True
        except OSError:
            continue
    return False


@contextmanager
def web_lock() -> Iterator[None]:
    """``/tmp/serval-web.lock``, held as ``flock(1)`` holds it, for the build and the browser run."""
    if _inherited_lock():
        yield
        return
    with LOCK.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for {LOCK} (another browser run holds it)", file=sys.stderr, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build() -> str:
    """``npm run build`` (unless BENCH_WEB_BUILD=0): what was measured, for the tables' titles."""
    if BUILD:
        start = time.perf_counter()
        done = subprocess.run(
            ["npm", "run", "--silent", "build"], cwd=FRONTEND, capture_output=True, text=True, check=False
        )
        if done.returncode == 0:
            return f"built now, {time.perf_counter() - start:.0f} s"
        print(done.stdout[-3000:], done.stderr[-3000:], sep="\n", file=sys.stderr)
        if not (DIST / "index.html").is_file():
            raise RuntimeError("npm run build failed and frontend/dist is not built")
        note = "npm run build FAILED: the existing dist"
    else:
        note = "BENCH_WEB_BUILD=0: the existing dist"
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime((DIST / "index.html").stat().st_mtime))
    return f"{note}, built {stamp}"


# ---- projects through the API ----------------------------------------------------------------


def _api(stack: LiveStack, token: str, method: str, path: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        stack.api_url + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        raise RuntimeError(f"{method} {path}: {error.code} {error.read()[:500]!r}") from None


def _user(label: str) -> DemoUser:
    return next(u for u in DEMO_USERS if u.label == label)


def _token(stack: LiveStack, label: str) -> str:
    user = _user(label)
    return stack.token(user.email, user.password)


def _project(stack: LiveStack, manager: str, name: str, media: str, controls: list[dict[str, Any]]) -> str:
    body = {"name": name, "media_types": [media], "label_config": {"controls": controls}}
    return str(_api(stack, manager, "POST", "/projects", body)["project_id"])


def _member(stack: LiveStack, manager: str, pid: str, role: str) -> None:
    me = _api(stack, _token(stack, role), "GET", "/me")
    try:
        _api(stack, manager, "POST", f"/projects/{pid}/members", {"user_id": me["user_id"], "role": role})
    except RuntimeError as error:
        if ": 409 " not in str(error):  # a member already
            raise


def text_project(stack: LiveStack, manager: str, name: str, tasks: int) -> tuple[str, float]:
    """A text project with a classification control and ``tasks`` tasks, created 1,000 a request
    (4 requests at a time): its id and the seconds the requests took."""
    pid = _project(stack, manager, name, "text", TEXT_CONTROLS)

    def batch(start: int) -> None:
        rows = [
            {"data": {"text": f"{name}: review {i}, the product was fine"}}
            for i in range(start, start + 1000)
        ]
        _api(stack, manager, "POST", f"/projects/{pid}/tasks", rows[: tasks - start])

    began = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(batch, range(0, tasks, 1000)))
    return pid, time.perf_counter() - began


def image_project(stack: LiveStack, manager: str) -> str:
    """An image project with a bbox control and ``IMAGES`` shapes, uploaded under its prefix (the
    annotator a member); its id once every image is a queued task."""
    pid = _project(stack, manager, "Web bench: images", "image", IMAGE_CONTROLS)
    _member(stack, manager, pid, "annotator")
    spec = local_spec()
    s3 = _client("s3", stack.environment)
    files = sorted((datasets_dir() / "images" / "shapes").glob("*.png"))[:IMAGES]
    for file in files:
        s3.put_object(
            Bucket=spec.buckets[spec.uploads.bucket].name,
            Key=f"{spec.upload_prefix}{pid}/{file.name}",
            Body=file.read_bytes(),
            ContentType="image/png",
        )
    _until_queued(stack, manager, pid, len(files), timeout_s=300)
    return pid


def _until_queued(stack: LiveStack, token: str, pid: str, want: int, timeout_s: float) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout_s:
        if _api(stack, token, "GET", f"/projects/{pid}/stats")["by_status"].get("queued", 0) >= want:
            return time.perf_counter() - start
        time.sleep(0.5)
    raise TimeoutError(f"{want} tasks of {pid} were not queued within {timeout_s:.0f} s")


# ---- the browser -----------------------------------------------------------------------------

# From a click on ``click`` (a selector) to the first element matching ``want`` in the DOM (a
# MutationObserver), to the first task after the next frame rendered, and the longest API request
# whose URL holds ``request`` started meanwhile (resource timing): {dom, frame, request} in ms.
CLICK_TO = """([click, want, request, timeout]) => new Promise((resolve, reject) => {
  let done = false;
  performance.setResourceTimingBufferSize(100000);
  performance.clearResourceTimings();
  const finish = () => {
    if (done || !document.querySelector(want)) return;
    done = true;
    const dom = performance.now() - t0;
    observer.disconnect();
    requestAnimationFrame(() => {
      const channel = new MessageChannel();
      channel.port1.onmessage = () => {
        const frame = performance.now() - t0;
        const calls = performance.getEntriesByType("resource")
          .filter((e) => e.name.includes(request) && e.startTime >= t0 && e.responseEnd > 0);
        resolve({ dom, frame, request: Math.max(-1, ...calls.map((e) => e.responseEnd - e.startTime)) });
      };
      channel.port2.postMessage(0);
    });
  };
  const observer = new MutationObserver(finish);
  observer.observe(document.body, { childList: true, subtree: true, attributes: true });
  setTimeout(() => { if (!done) { observer.disconnect(); reject(new Error("timed out: " + want)); } }, timeout);
  const t0 = performance.now();
  document.querySelector(click).click();
  finish();
})"""

# After page.goto(..., wait_until="commit"): milliseconds from navigation start to ``want``.
UNTIL = """([want, timeout]) => new Promise((resolve, reject) => {
  const check = () => { if (document.querySelector(want)) { observer.disconnect(); resolve(performance.now()); } };
  const observer = new MutationObserver(check);
  observer.observe(document, { childList: true, subtree: true, attributes: true });
  setTimeout(() => { observer.disconnect(); reject(new Error("timed out: " + want)); }, timeout);
  check();
})"""

# Scroll the task list by ``step`` px a frame for ``seconds``: rAF deltas, main-thread time per
# frame (frame start to the first task after the frame rendered), long tasks.
SCROLL = """([step, seconds]) => new Promise((resolve) => {
  const el = document.querySelector("[data-testid=task-scroller]");
  const longTasks = [];
  const observer = new PerformanceObserver((list) => { for (const e of list.getEntries()) longTasks.push(e.duration); });
  observer.observe({ type: "longtask" });
  const deltas = [], busy = [];
  const channel = new MessageChannel();
  let frameStart = 0, last = 0, start = 0;
  channel.port1.onmessage = () => busy.push(performance.now() - frameStart);
  const frame = (now) => {
    if (last) deltas.push(now - last);
    last = now;
    frameStart = now;
    if (!start) start = now;
    if (now - start >= seconds * 1000) {
      setTimeout(() => {
        observer.disconnect();
        resolve({ deltas, busy, longTasks, scrollTop: el.scrollTop, pages: el.dataset.pages,
                  rows: document.querySelectorAll("[data-testid=task-row][data-task-id]").length });
      }, 200);
      return;
    }
    el.scrollTop += step;
    channel.port2.postMessage(0);
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
})"""

# Skip, and time until the next task's image workspace is ready under another task id: [ms, the
# POST .../skip request's ms (resource timing)].
NEXT_TASK = """([before, timeout]) => new Promise((resolve, reject) => {
  const want = () => {
    const page = document.querySelector("[data-testid=labeling]");
    return page && page.dataset.taskId !== before
      && page.querySelector("[data-testid=image-workspace][data-ready=true]");
  };
  let done = false;
  const finish = () => {
    if (done || !want()) return;
    done = true;
    observer.disconnect();
    const ms = performance.now() - t0;
    const skip = performance.getEntriesByType("resource")
      .filter((e) => e.name.includes("/skip") && e.startTime >= t0 && e.responseEnd > 0);
    resolve([ms, Math.max(-1, ...skip.map((e) => e.responseEnd - e.startTime))]);
  };
  const observer = new MutationObserver(finish);
  observer.observe(document.body, { childList: true, subtree: true, attributes: true });
  setTimeout(() => { if (!done) { observer.disconnect(); reject(new Error("timed out: next task")); } }, timeout);
  const t0 = performance.now();
  document.querySelector("[data-testid=skip]").click();
  finish();
})"""

# Whether the next task is prefetched: leased (its id remembered) and its image loaded.
PREFETCHED = """([pid, shown]) => {
  const next = sessionStorage.getItem("serval.lease.next." + pid);
  if (!next) return false;
  return performance.getEntriesByType("resource")
    .some((e) => e.initiatorType === "img" && !shown.includes(e.name) && e.responseEnd > 0);
}"""


ROW = "[data-testid=task-row][data-task-id]"

# A static page of plain rows in a scroller of the same size: the floor this headless Chromium
# reaches on this machine at the same moment, for the scrolling figures.
FLOOR_PAGE = (
    """<div data-testid="task-scroller" style="height:600px;overflow:auto;font:14px sans-serif">
<div style="position:relative">"""
    + "".join(
        f'<div style="height:38px;display:flex;gap:1em"><span>task {i}</span><span>queued</span><span>text</span></div>'
        for i in range(5000)
    )
    + "</div></div>"
)


@dataclass
class Browser:
    """A Playwright Chromium; :meth:`page` signs a demo user in on a page of its own."""

    stack: LiveStack
    browser: Any
    last: Any = None  # the page opened last: its screenshot if a measurement fails

    def page(self, label: str, path: str) -> Any:
        user = _user(label)
        context = self.browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-US")
        page = self.last = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(self.stack.api_url + path)
        page.wait_for_url("**/oauth2/authorize**")
        page.fill("#email", user.email)
        page.fill("#password", user.password)
        page.click("button[type=submit]")
        page.wait_for_selector(f"[data-testid=who]:has-text('{user.email}')")
        return page


def _stack_cpu_s(stack: LiveStack) -> float:
    """CPU seconds of the stack's processes, the workers it already reaped included (their time
    is in their parent's ``children_*``), so a worker stopped meanwhile does not lower it."""
    total = 0.0
    for process in stack.tree():
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


class Cpu:
    """The stack's CPU (all its processes) over a measurement, and the machine's load average."""

    def __init__(self, stack: LiveStack) -> None:
        self.stack = stack
        self.cpu, self.wall = _stack_cpu_s(stack), time.perf_counter()

    def share(self) -> str:
        used = (_stack_cpu_s(self.stack) - self.cpu) / (time.perf_counter() - self.wall)
        return f"stack CPU {used:.1f} of {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}"


def _ms(values: list[float]) -> str:
    if not values:
        return "-"
    return f"p50 {percentile(values, 50):.0f} ms, p95 {percentile(values, 95):.0f} ms"


def _met(value: float, target: float) -> str:
    return "yes" if value <= target else "NO"


def _frames(table: Table, what: str, scrolled: dict[str, Any]) -> None:
    deltas, busy, long_tasks = scrolled["deltas"], scrolled["busy"], scrolled["longTasks"]
    over = sum(1 for d in deltas if round(d, 1) > 16.7)
    missed = sum(1 for d in deltas if d > 1.5 * FRAME_MS)
    p95 = percentile(deltas, 95)
    table.add(what, "", "", "")
    table.add("  frame time (rAF delta)", _ms(deltas), "<= 16.7 ms (p95)", _met(round(p95, 1), 16.7))
    table.add(
        "  main-thread time per frame (frame start to the frame rendered)",
        _ms(busy),
        "<= 16 ms (p95)",
        _met(percentile(busy, 95), 16),
    )
    table.add(
        "  frames > 16.7 ms (> 25 ms: one or more frames missed)",
        f"{over} of {len(deltas)} ({missed} > 25 ms)",
        "0",
        "yes" if over == 0 else "NO",
    )
    table.add(
        "  long tasks (> 50 ms)",
        f"{len(long_tasks)}: {sum(long_tasks):.0f} ms in all, max {max(long_tasks, default=0):.0f} ms",
        "0",
        "yes" if not long_tasks else "NO",
    )


def task_list(browser: Browser, big: str, table: Table) -> None:
    stack = browser.stack
    page = browser.page("manager", f"/projects/{big}")
    page.wait_for_selector("[data-testid=stat-tasks]")
    cpu = Cpu(stack)
    timed = []
    for _ in range(N):
        page.wait_for_selector("[data-testid=nav-tasks]")
        timed.append(
            page.evaluate(CLICK_TO, ["[data-testid=nav-tasks]", ROW, f"/projects/{big}/tasks?", TIMEOUT_MS])
        )
        page.click("[data-testid=nav-dashboard]")
        page.wait_for_selector("[data-testid=stat-tasks]")
    dom = [t["dom"] for t in timed]
    frame = [t["frame"] for t in timed]
    calls = [t["request"] for t in timed if t["request"] >= 0]
    table.add(
        f"task list, {BIG:,} tasks: click 'Tasks' to the first row in the DOM (N={N}; {cpu.share()})",
        _ms(dom),
        "<= 300 ms (p50)",
        _met(percentile(dom, 50), 300),
    )
    table.add(
        "  ... to the next frame rendered after it",
        _ms(frame),
        "<= 300 ms (p50)",
        _met(percentile(frame, 50), 300),
    )
    table.add("  of which GET .../tasks, the first page (resource timing)", _ms(calls), "", "")

    cpu = Cpu(stack)
    cold: list[float] = []
    for _ in range(N):
        page.goto(f"{stack.api_url}/projects/{big}/tasks", wait_until="commit")
        cold.append(page.evaluate(UNTIL, [ROW, TIMEOUT_MS]))
    table.add(
        f"  cold load: page.goto the list's URL, navigation start to the first row (N={N}; {cpu.share()})",
        _ms(cold),
        "- (shell, session restore and first page)",
        "",
    )

    page.wait_for_selector(ROW)
    cpu = Cpu(stack)
    scrolled = page.evaluate(SCROLL, [SCROLL_STEP_PX, SCROLL_S])
    what = (
        f"scrolling the list, {SCROLL_STEP_PX} px a frame for {SCROLL_S:.0f} s: {len(scrolled['deltas'])} frames, "
        f"{scrolled['scrollTop'] / 38:,.0f} rows down, {scrolled['pages']} pages read ({cpu.share()})"
    )
    _frames(table, what, scrolled)
    page.set_content(FLOOR_PAGE)
    cpu = Cpu(stack)
    floor = page.evaluate(SCROLL, [SCROLL_STEP_PX, SCROLL_S])
    _frames(
        table,
        f"  floor: the same scroll of 5,000 static rows (no app), at the same time ({cpu.share()})",
        floor,
    )


def next_task(browser: Browser, pid: str, table: Table) -> None:
    page = browser.page("annotator", f"/projects/{pid}/label")
    ready = "[data-testid=labeling] [data-testid=image-workspace][data-ready=true]"
    page.wait_for_selector(ready, timeout=2 * TIMEOUT_MS)
    page.evaluate("performance.setResourceTimingBufferSize(100000)")
    cpu = Cpu(browser.stack)
    prefetched: list[float] = []
    cold: list[float] = []
    skips: list[float] = []
    shown: list[str] = []
    for _ in range(N):
        page.wait_for_selector(ready)
        before = page.get_attribute("[data-testid=labeling]", "data-task-id")
        shown.append(page.get_attribute("[data-testid=task-image]", "src") or "")
        try:
            page.wait_for_function(PREFETCHED, arg=[pid, shown], timeout=PREFETCH_WAIT_MS)
            into = prefetched
        except PlaywrightTimeout:
            into = cold
        page.wait_for_selector("[data-testid=skip]:not([disabled])")
        ms, skip = page.evaluate(NEXT_TASK, [before, TIMEOUT_MS])
        into.append(ms)
        if skip >= 0:
            skips.append(skip)
    every = prefetched + cold
    how = f"N={N}, {IMAGES} image tasks, a bbox control; {cpu.share()}"
    table.add(
        f"next task: click Skip to the next image workspace ready ({how})",
        _ms(every),
        "<= 300 ms (p50)",
        _met(percentile(every, 50), 300),
    )
    table.add(
        f"  the next task prefetched (leased, its image loaded): {len(prefetched)} of {N}",
        _ms(prefetched),
        "<= 300 ms (p50)",
        _met(percentile(prefetched, 50), 300) if prefetched else "-",
    )
    table.add(
        f"  not prefetched {PREFETCH_WAIT_MS / 1000:.0f} s after the workspace was ready: {len(cold)} of {N}",
        _ms(cold),
        "(every task prefetched)",
        "yes" if not cold else "NO",
    )
    table.add(
        "  of which POST .../skip (resource timing; awaited before the next task shows)", _ms(skips), "", ""
    )


def dashboards(browser: Browser, projects: list[tuple[int, str]], table: Table) -> None:
    """The projects' dashboards in turn (1k, 100k, 1k, ...), so both sizes meet the same load:
    each time the project's task list is opened (untimed), then its "Dashboard" link clicked."""
    page = browser.page("manager", "/")
    cpu = Cpu(browser.stack)
    timed: dict[str, list[dict[str, float]]] = {pid: [] for _, pid in projects}
    for _ in range(N):
        for _, pid in projects:
            page.goto(f"{browser.stack.api_url}/projects/{pid}/tasks")
            page.wait_for_selector(ROW)
            click = ["[data-testid=nav-dashboard]", "[data-testid=stat-tasks]", "/stats", TIMEOUT_MS]
            timed[pid].append(page.evaluate(CLICK_TO, click))
    load = cpu.share()
    first = percentile([t["dom"] for t in timed[projects[0][1]]], 50)
    for size, pid in projects:
        dom = [t["dom"] for t in timed[pid]]
        ratio = percentile(dom, 50) / first
        last = pid == projects[-1][1] and len(projects) > 1
        table.add(
            f"dashboard, {size:,} tasks: click 'Dashboard' to stat-tasks in the DOM (N={N}, sizes in turn; {load})",
            _ms(dom),
            f"no slower than {projects[0][0]:,} (p50, 10% allowed)" if last else "",
            f"{'yes' if ratio <= 1.1 else 'NO'} ({ratio:.2f}x)" if last else "",
        )
        table.add(
            "  of which GET .../stats (resource timing)",
            _ms([t["request"] for t in timed[pid] if t["request"] >= 0]),
            "",
            "",
        )


# ---- the run ---------------------------------------------------------------------------------


def _guarded(browser: Browser, table: Table, name: str, measure: Callable[[], None]) -> None:
    """Run one measurement; if it fails, say so in its table (and keep a screenshot of the page)
    rather than stop the bench."""
    try:
        measure()
    except Exception as error:  # reported in the table; the other measurements still run
        shot = Path(tempfile.gettempdir()) / f"serval-bench-web-{name.replace(' ', '-')}.png"
        try:
            browser.last.screenshot(path=str(shot), full_page=True)
        except Exception:
            shot = Path("(no screenshot)")
        first = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
        table.add(f"{name}: FAILED ({first}; {shot})", "-", "", "NO")
    finally:
        if browser.last is not None:
            browser.last.context.close()
            browser.last = None


def _by_status(stack: LiveStack, manager: str, pid: str) -> str:
    by = _api(stack, manager, "GET", f"/projects/{pid}/stats")["by_status"]
    return "tasks " + ", ".join(f"{k} {v:,}" for k, v in sorted(by.items()) if v)


def run() -> list[Table]:
    started = time.perf_counter()
    with web_lock():
        built = build()
        tables = shell_tables(built)
        with live_stack() as stack:
            _wait_seeded(stack)
            manager = _token(stack, "manager")
            setup = Table(f"Web app bench setup on the {LIVE}", ["step", "seconds", "note"])
            setup.add(
                "stack start and seed",
                f"{time.perf_counter() - started:.0f}",
                f"load {os.getloadavg()[0]:.1f}",
            )
            began = time.perf_counter()
            images = image_project(stack, manager)
            setup.add(
                f"image project: {IMAGES} PNGs uploaded, until queued",
                f"{time.perf_counter() - began:.1f}",
                "",
            )
            small, seconds = text_project(stack, manager, "Web bench: 1k", SMALL)
            setup.add(
                f"text project: {SMALL:,} tasks through POST .../tasks",
                f"{seconds:.1f}",
                _by_status(stack, manager, small),
            )
            big, seconds = text_project(stack, manager, "Web bench: 100k", BIG)
            note = f"{BIG / seconds:.0f} tasks/s; {_by_status(stack, manager, big)}; load {os.getloadavg()[0]:.1f}"
            setup.add(
                f"text project: {BIG:,} tasks through POST .../tasks (1,000 a request, 4 at once)",
                f"{seconds:.1f}",
                note,
            )
            results = Table(
                f"Web app in headless Chromium on the {LIVE}", ["measure", "result", "target", "met?"]
            )
            began = time.perf_counter()
            with sync_playwright() as p:
                chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
                results.title = f"Web app in headless Chromium {chromium.version} on the {LIVE}"
                browser = Browser(stack, chromium)
                try:
                    _guarded(browser, results, "task list", lambda: task_list(browser, big, results))
                    _guarded(browser, results, "next task", lambda: next_task(browser, images, results))
                    projects = [(SMALL, small), (BIG, big)]
                    _guarded(browser, results, "dashboard", lambda: dashboards(browser, projects, results))
                finally:
                    chromium.close()
            setup.add(
                "browser measurements",
                f"{time.perf_counter() - began:.0f}",
                f"after them: {_by_status(stack, manager, big)}",
            )
            setup.add(
                "whole bench (build, stack, setup, browser)",
                f"{time.perf_counter() - started:.0f}",
                f"load {os.getloadavg()[0]:.1f}",
            )
    return [*tables, setup, results]


def main() -> int:
    for table in run():
        print(table.render(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
