"""Login in the browser: authorization code + PKCE against the local OIDC server, as the app
does it against Cognito's managed login in AWS."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from playwright.sync_api import Page, expect

from tests.browser.conftest import demo_user, shot, sign_in
from tests.e2e.conftest import DevStack


def _token(stack: DevStack, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        stack.api_url + "/oauth2/token",
        data=urllib.parse.urlencode(form).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_sign_in_lands_on_the_projects_page_and_sign_out_clears_the_session(
    web_stack: DevStack, page: Page
) -> None:
    sign_in(page, web_stack, "annotator")
    expect(page.get_by_test_id("projects-page")).to_be_visible()
    expect(page.get_by_test_id("project-card").first).to_be_visible()
    shot(page, "projects")
    page.get_by_test_id("sign-out").click()
    # signed out: the app asks for a login again, and the stored tokens are gone
    page.wait_for_url(re.compile(r"/oauth2/authorize"))
    assert page.evaluate("Object.keys(sessionStorage).filter(k => k.startsWith('oidc.user'))") == []


def test_a_deep_link_returns_to_its_page_after_login(web_stack: DevStack, page: Page) -> None:
    sign_in(page, web_stack, "manager", path="/projects?from=deep-link")
    assert page.url.endswith("/projects?from=deep-link")


def test_a_wrong_password_is_refused_on_the_login_page(web_stack: DevStack, page: Page) -> None:
    sign_in(page, web_stack, "annotator", password="not-the-password-1A!")
    expect(page.get_by_role("alert")).to_be_visible()
    assert "/oauth2/authorize" in page.url
    shot(page, "login-refused")


def _login_state(page: Page, stack: DevStack) -> tuple[dict[str, list[str]], str]:
    """Open the app, which redirects to the login page: the authorize query and the PKCE
    verifier oidc-client-ts stored for it (same origin locally)."""
    page.goto(stack.api_url + "/")
    page.wait_for_url(re.compile(r"/oauth2/authorize"))
    authorize = urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query)
    assert authorize["code_challenge_method"] == ["S256"]
    stored = page.evaluate(f"localStorage.getItem('oidc.{authorize['state'][0]}')")
    return authorize, json.loads(stored)["code_verifier"]


def _exchange(authorize: dict[str, list[str]], code: str, verifier: str) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "client_id": authorize["client_id"][0],
        "redirect_uri": authorize["redirect_uri"][0],
        "code": code,
        "code_verifier": verifier,
    }


def test_a_wrong_pkce_verifier_is_refused_and_spends_the_code(web_stack: DevStack, page: Page) -> None:
    """The login form the browser shows, posted without following its redirect, gives the code
    meant for the app. With another verifier it is refused, and the code is spent: the right
    verifier cannot use it afterwards."""
    user = demo_user("annotator")
    authorize, verifier = _login_state(page, web_stack)
    fields = page.eval_on_selector_all(
        "form input[type=hidden]", "inputs => Object.fromEntries(inputs.map(i => [i.name, i.value]))"
    )
    answer = page.request.post(
        web_stack.api_url + "/oauth2/authorize",
        form=fields | {"email": user.email, "password": user.password},
        max_redirects=0,
    )
    assert answer.status == 302
    callback = urllib.parse.parse_qs(urllib.parse.urlsplit(answer.headers["location"]).query)
    assert callback["state"] == authorize["state"]
    status, body = _token(web_stack, _exchange(authorize, callback["code"][0], "x" * 64))
    assert (status, body["error"]) == (400, "invalid_grant")
    status, body = _token(web_stack, _exchange(authorize, callback["code"][0], verifier))
    assert (status, body["error"]) == (400, "invalid_grant")


def test_a_code_the_app_already_used_is_refused(web_stack: DevStack, page: Page) -> None:
    user = demo_user("annotator")
    callbacks: list[str] = []
    page.on("request", lambda r: callbacks.append(r.url) if "/auth/callback?" in r.url else None)
    authorize, verifier = _login_state(page, web_stack)
    page.fill("#email", user.email)
    page.fill("#password", user.password)
    page.click("button[type=submit]")
    expect(page.get_by_test_id("who")).to_contain_text(user.email)  # the app exchanged the code
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(callbacks[0]).query)["code"][0]
    status, body = _token(web_stack, _exchange(authorize, code, verifier))
    assert (status, body["error"]) == (400, "invalid_grant")
