"""`make bench`: every benchmark, one after the other, each printing its tables.

These are measurements, not tests: nothing here asserts a time. Targets are printed
beside the results so a reader can compare.
"""

from __future__ import annotations

import logging
import sys

from bench import cloud_model, flow, frontend, imports, ingest, live, query_flatness, webhooks, write_flatness


def main() -> int:
    logging.disable(logging.WARNING)
    print("== The live local stack, as `make dev` runs it (the headline figures) ==", flush=True)
    for table in live.run():
        print(table.render(), flush=True)
    print("\n== Handler cold starts ==", flush=True)
    print(imports.run().render(), flush=True)
    print("== DynamoDB query flatness (local stack patches vs moto) ==", flush=True)
    query_flatness.main()
    print("\n== DynamoDB write flatness (moto's write path alone) ==", flush=True)
    print(write_flatness.run().render(), flush=True)
    print("\n== Ingest and listing on the local stack ==", flush=True)
    for table in ingest.run():
        print(table.render(), flush=True)
    print("\n== Label -> review -> export on the local stack ==", flush=True)
    for table in flow.run():
        print(table.render(), flush=True)
    print("\n== Webhook deliveries on the live local stack (all pollers, state machine) ==", flush=True)
    for table in webhooks.run():
        print(table.render(), flush=True)
    print(
        "\n== The web app in headless Chromium on the live local stack (all pollers, state machine) ==",
        flush=True,
    )
    for table in frontend.run():
        print(table.render(), flush=True)
    print("\n== Cloud cost and capacity model (measured inputs, published prices and quotas) ==", flush=True)
    for table in cloud_model.run():
        print(table.render(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
