"""`callpulse orgs set-plan|show-plan|clear-plan` — an org's plan, shown by `GET /v1/usage` (api/plans.py).

    callpulse orgs set-plan --org ORG --name NAME --email-limit N --price-usd P   store (replace) the plan
    callpulse orgs show-plan --org ORG [--json]
    callpulse orgs clear-plan --org ORG

`GET /v1/usage?period=` then carries ``plan: {name, email_limit, price_usd, emails_remaining}``
(remaining = limit - emails sent in the period, never below 0); ``plan`` is null without one.
"""

from __future__ import annotations

import re
import sys

HELP = "Set, show and clear an org's plan (name, monthly email limit, price) shown in GET /v1/usage."
_ORG = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


def _org(value: str) -> str:
    import argparse

    if not _ORG.match(value):
        raise argparse.ArgumentTypeError("an org id: 1-128 characters of A-Z a-z 0-9 _ . : -")
    return value


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="orgs_command", metavar="ACTION", required=True)
    s = sub.add_parser("set-plan", help="store (replace) the org's plan")
    s.add_argument("--org", required=True, type=_org)
    s.add_argument("--name", required=True, help="plan name, e.g. Growth")
    s.add_argument("--email-limit", required=True, type=int, metavar="N", help="emails the plan includes per period")
    s.add_argument("--price-usd", required=True, metavar="P", help="price in USD, e.g. 49.99")
    s.add_argument("--json", action="store_true", help="print the stored plan as JSON")
    sh = sub.add_parser("show-plan", help="print the org's plan")
    sh.add_argument("--org", required=True, type=_org)
    sh.add_argument("--json", action="store_true", help="JSON output (null without a plan)")
    c = sub.add_parser("clear-plan", help="remove the org's plan (usage then shows plan: null)")
    c.add_argument("--org", required=True, type=_org)


def run(args) -> int:
    import orjson
    import redis

    from api.plans import clear_plan, get_plan, set_plan
    from callpulse.settings import CliSettings

    settings = CliSettings.from_env()
    client = settings.connect()
    try:
        if args.orgs_command == "set-plan":
            try:
                plan = set_plan(client, args.org, args.name, args.email_limit, args.price_usd)
            except ValueError as exc:
                print(f"callpulse orgs: {exc}", file=sys.stderr)
                return 2
            if args.json:
                print(orjson.dumps(plan).decode())
            else:
                print(f"org {args.org}: plan {plan['name']!r}, {plan['email_limit']} emails, "
                      f"${plan['price_usd']}")
            return 0
        if args.orgs_command == "show-plan":
            plan = get_plan(client, args.org)
            if args.json:
                print(orjson.dumps(plan).decode())
            elif plan is None:
                print(f"org {args.org}: no plan")
            else:
                print(f"org {args.org}: plan {plan['name']!r}, {plan['email_limit']} emails, ${plan['price_usd']}")
            return 0
        if args.orgs_command == "clear-plan":
            removed = clear_plan(client, args.org)
            print(f"org {args.org}: plan {'removed' if removed else 'was not set'}")
            return 0
    except redis.RedisError as exc:
        print(f"callpulse orgs: Redis at {settings.redis_url}: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    return 2
