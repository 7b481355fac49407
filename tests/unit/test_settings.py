"""Runtime settings: read from os.environ per call, or from an invocation's bound environment."""

from __future__ import annotations

import threading

import pytest
from pydantic import ValidationError

from serval.settings import invocation_environment, settings

REQUIRED = {
    "SERVAL_ENV": "test",
    "TASKS_TABLE": "tasks",
    "AUDIT_TABLE": "audit",
    "DATA_BUCKET": "data",
    "EXPORT_BUCKET": "export",
    "EVENT_BUS": "bus",
}


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def env_of(name: str, **extra: str) -> dict[str, str]:
    return REQUIRED | {"SERVAL_ENV": name, "TASKS_TABLE": f"tasks-{name}"} | extra


def test_settings_read_os_environ_with_defaults(environ: pytest.MonkeyPatch) -> None:
    # Given only the required variables / When settings are read / Then they come with defaults
    current = settings()
    assert current.TASKS_TABLE == "tasks"
    assert current.LEASE_SECONDS == 1800
    assert current.INGEST_RANGES_QUEUE_URL == ""
    assert current.INGEST_RANGE_BYTES == 16 * 2**20


def test_settings_follow_changes_to_os_environ(environ: pytest.MonkeyPatch) -> None:
    # Given settings already read once
    assert settings().LEASE_SECONDS == 1800

    # When the environment changes / Then the next read sees it (nothing frozen at first read)
    environ.setenv("LEASE_SECONDS", "60")
    environ.setenv("DATA_BUCKET", "other")
    assert settings().LEASE_SECONDS == 60
    assert settings().DATA_BUCKET == "other"


def test_settings_coerce_and_reject_bad_values(environ: pytest.MonkeyPatch) -> None:
    environ.setenv("MAX_BULK_CREATE", "not-a-number")
    with pytest.raises(ValidationError):
        settings()


def test_settings_require_the_required_names(environ: pytest.MonkeyPatch) -> None:
    environ.delenv("EVENT_BUS")
    with pytest.raises(ValidationError):
        settings()


def test_invocation_environment_overrides_for_the_block_only(environ: pytest.MonkeyPatch) -> None:
    # Given os.environ says 'test'
    assert settings().SERVAL_ENV == "test"

    # When an invocation binds its own environment
    with invocation_environment(env_of("bound", LEASE_SECONDS="5")):
        # Then settings come from it inside the block
        assert settings().SERVAL_ENV == "bound"
        assert settings().LEASE_SECONDS == 5

    # And os.environ is back afterwards
    assert settings().SERVAL_ENV == "test"
    assert settings().LEASE_SECONDS == 1800


def test_bound_environment_replaces_os_environ_entirely(environ: pytest.MonkeyPatch) -> None:
    # Given os.environ sets a value the bound environment leaves out
    environ.setenv("LEASE_SECONDS", "60")

    # When the invocation's environment is bound / Then the default applies, not os.environ's value
    with invocation_environment(env_of("bound")):
        assert settings().LEASE_SECONDS == 1800


def test_invocation_environment_is_restored_after_an_error(environ: pytest.MonkeyPatch) -> None:
    with pytest.raises(RuntimeError), invocation_environment(env_of("bound")):
        raise RuntimeError("handler failed")
    assert settings().SERVAL_ENV == "test"


def test_invocation_environments_nest(environ: pytest.MonkeyPatch) -> None:
    with invocation_environment(env_of("outer")):
        with invocation_environment(env_of("inner")):
            assert settings().SERVAL_ENV == "inner"
        assert settings().SERVAL_ENV == "outer"
    assert settings().SERVAL_ENV == "test"


def test_bound_environment_is_a_snapshot(environ: pytest.MonkeyPatch) -> None:
    # Given a mapping bound for an invocation, then changed by the caller
    env = env_of("bound")
    with invocation_environment(env):
        env["SERVAL_ENV"] = "mutated"

        # Then the invocation still sees what was bound
        assert settings().SERVAL_ENV == "bound"


def test_each_thread_sees_its_own_bound_environment(environ: pytest.MonkeyPatch) -> None:
    # Given two threads that bind different environments and read while both are bound
    both_bound = threading.Barrier(2, timeout=5)
    seen: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def invoke(name: str) -> None:
        try:
            with invocation_environment(env_of(name)):
                both_bound.wait()
                first = settings()
                both_bound.wait()
                seen[name] = [first.SERVAL_ENV, first.TASKS_TABLE, settings().SERVAL_ENV]
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=invoke, args=(name,)) for name in ("alpha", "beta")]

    # When they run concurrently
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)

    # Then each saw only its own environment, and the main thread still sees os.environ
    assert errors == []
    assert seen == {"alpha": ["alpha", "tasks-alpha", "alpha"], "beta": ["beta", "tasks-beta", "beta"]}
    assert settings().SERVAL_ENV == "test"


def test_media_urls_may_not_outlive_the_lease() -> None:
    # Given an environment whose media URLs would outlive its leases
    from infra import config

    base = config.load("dev").model_dump() | {"lease_seconds": 1800}
    # When it is validated, Then it is refused; at the lease's length it is accepted
    with pytest.raises(ValidationError, match="media_url_seconds"):
        config.EnvConfig.model_validate(base | {"media_url_seconds": 1801})
    assert config.EnvConfig.model_validate(base | {"media_url_seconds": 1800}).media_url_seconds == 1800
