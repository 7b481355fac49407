"""The Lambda layer: the ``serval`` package plus pinned dependencies, bundled without Docker."""

from __future__ import annotations

from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.bundling import layer_code
from infra.spec import ARCHITECTURE, PYTHON_RUNTIME

RUNTIME = lambda_.Runtime(PYTHON_RUNTIME, lambda_.RuntimeFamily.PYTHON)
LAMBDA_ARCHITECTURE = lambda_.Architecture.ARM_64 if ARCHITECTURE == "arm64" else lambda_.Architecture.X86_64


class ServalLayer(Construct):
    """One layer version per stack that has functions, all built from the same asset.

    Keeping the layer version in the stack of the functions that use it means one
    deployment updates both together and no stack exports a layer ARN that changes
    on every dependency bump.
    """

    def __init__(self, scope: Construct, construct_id_: str) -> None:
        super().__init__(scope, construct_id_)
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            code=layer_code(),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[LAMBDA_ARCHITECTURE],
            description="serval package and its pinned runtime dependencies (layers/requirements.txt)",
        )
