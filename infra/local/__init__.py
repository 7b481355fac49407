"""The local stack: Serval's resources on an in-process moto server, the real handlers, a local API gateway.

``python -m infra.local`` (``make dev``) starts it; :class:`infra.local.stack.LocalStack` is the same for tests.
Importing :mod:`infra.spec` first puts the layer (``serval``) on ``sys.path``.
"""

from infra import spec as _spec  # noqa: F401
