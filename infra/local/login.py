"""`python -m infra.local.login EMAIL [PASSWORD]`: print an ID token from the running local stack.

For curl and scripts: `curl -H "Authorization: Bearer $(python -m infra.local.login admin@serval.local)" ...`.
A demo user's password is known, so it may be left out.
"""

from __future__ import annotations

import argparse
import sys

import boto3

from infra.local.moto_server import DEFAULT_PORT, HOST, REGION
from infra.local.seed import DEMO_USERS
from infra.local.stack import local_spec


def id_token(email: str, password: str, endpoint_url: str) -> str:
    spec = local_spec()
    cognito = boto3.client(
        "cognito-idp",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    pools = [
        p
        for p in cognito.list_user_pools(MaxResults=60)["UserPools"]
        if p["Name"] == spec.auth.user_pool_name
    ]
    if not pools:
        raise SystemExit(
            f"no user pool {spec.auth.user_pool_name!r} at {endpoint_url}: is `make dev` running?"
        )
    pool_id = pools[0]["Id"]
    clients = cognito.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)["UserPoolClients"]
    client_id = next(c["ClientId"] for c in clients if c["ClientName"] == spec.auth.client_name)
    result = cognito.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": password},
    )
    return str(result["AuthenticationResult"]["IdToken"])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m infra.local.login", description=__doc__)
    parser.add_argument("email")
    parser.add_argument("password", nargs="?")
    parser.add_argument("--endpoint-url", default=f"http://{HOST}:{DEFAULT_PORT}")
    args = parser.parse_args()
    password = args.password or next((u.password for u in DEMO_USERS if u.email == args.email), None)
    if password is None:
        raise SystemExit(f"{args.email} is not a demo user: give the password too")
    sys.stdout.write(id_token(args.email, password, args.endpoint_url) + "\n")


if __name__ == "__main__":
    main()
