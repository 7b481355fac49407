"""One synthesis per test session: dev and prod side by side in a single CDK app.

The fixture builds both environments into one ``App`` with cdk-nag attached and
synthesizes it once; every test reads templates from that cloud assembly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from infra.app import ServalApp, add_checks, build_app, cdk_context


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.infra)


@dataclass
class Synthesized:
    app: App
    envs: dict[str, ServalApp]
    outdir: Path
    _templates: dict[tuple[str, str], Template] = field(default_factory=dict)
    _raw: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def template(self, env: str, concern: str) -> Template:
        key = (env, concern)
        if key not in self._templates:
            self._templates[key] = Template.from_stack(self.envs[env].stacks[concern])
        return self._templates[key]

    def raw(self, env: str, concern: str) -> dict[str, Any]:
        key = (env, concern)
        if key not in self._raw:
            self._raw[key] = self.template(env, concern).to_json()
        return self._raw[key]

    def template_files(self) -> list[Path]:
        return sorted(self.outdir.glob("*.template.json"))

    def validation_report(self) -> dict[str, Any]:
        report: dict[str, Any] = json.loads((self.outdir / "validation-report.json").read_text())
        return report


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = App(context=cdk_context(), outdir=str(outdir))
    envs = {name: build_app(app, name) for name in ("dev", "prod")}
    add_checks(app)
    app.synth()  # raises ValidationFailed on any unacknowledged cdk-nag finding
    yield Synthesized(app=app, envs=envs, outdir=outdir)
