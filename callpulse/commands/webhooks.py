"""`callpulse webhooks add|list|remove|deliveries` — where an org's alerts are POSTed (api/webhook_store.py).

    callpulse webhooks add --org ORG --url URL [--secret whsec_…] [--kinds level,forecast]
    callpulse webhooks list --org ORG
    callpulse webhooks remove WEBHOOK_ID
    callpulse webhooks deliveries WEBHOOK_ID [--limit N]

`add` prints the signing secret once (stdout, alone on its line). Deliveries are made by
`callpulse api` (unless started with --no-webhooks); see docs/operations.md.
"""

from __future__ import annotations

import sys

HELP = "Add, list and remove webhook endpoints that receive an org's alerts (signed, retried)."


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="webhooks_command", metavar="ACTION", required=True)
    a = sub.add_parser("add", help="register an endpoint and print its signing secret once")
    a.add_argument("--org", required=True)
    a.add_argument("--url", required=True, help="http(s) URL to POST alerts to")
    a.add_argument("--secret", default=None, help="signing secret whsec_<base64> (default: a new random one)")
    a.add_argument("--kinds", default=None, help="comma-separated alert kinds: level, forecast (default: all)")
    a.add_argument("--json", action="store_true", help="print the endpoint with its secret as JSON")
    ls = sub.add_parser("list", help="list an org's endpoints (never the secrets)")
    ls.add_argument("--org", required=True)
    ls.add_argument("--json", action="store_true", help="JSON output")
    rm = sub.add_parser("remove", help="remove an endpoint by its id")
    rm.add_argument("webhook_id")
    dl = sub.add_parser("deliveries", help="an endpoint's scheduled deliveries and logged attempts")
    dl.add_argument("webhook_id")
    dl.add_argument("--limit", type=int, default=50)


def run(args) -> int:
    import orjson
    import redis

    from api import webhook_store as store
    from callpulse.settings import CliSettings

    settings = CliSettings.from_env()
    client = settings.connect()
    try:
        cmd = args.webhooks_command
        if cmd == "add":
            try:
                kinds = store.parse_kinds(args.kinds)
                e = store.create_endpoint(client, org=args.org, url=args.url, secret=args.secret, kinds=kinds,
                                          allow=settings.webhook_allow)
            except ValueError as exc:
                print(f"callpulse webhooks: {exc}", file=sys.stderr)
                return 2
            if args.json:
                print(orjson.dumps(e).decode())
            else:
                print(e["secret"])
                print(f"webhook {e['id']} for org {e['org_id']} -> {e['url']} "
                      f"(kinds {','.join(e['kinds']) or 'all'}) — store the signing secret now: "
                      f"it is not shown again", file=sys.stderr)
            return 0
        if cmd == "list":
            hooks = store.list_endpoints(client, args.org)
            if args.json:
                print(orjson.dumps(hooks).decode())
            else:
                for e in hooks:
                    print(f"{e['id']}  {e['url']}  kinds {','.join(e['kinds']) or 'all'}")
            return 0
        if cmd == "remove":
            if store.remove_endpoint(client, args.webhook_id):
                print(f"removed {args.webhook_id}")
                return 0
            print(f"callpulse webhooks: no webhook {args.webhook_id}", file=sys.stderr)
            return 1
        if cmd == "deliveries":
            e = store.get_endpoint(client, args.webhook_id)
            if e is None:
                print(f"callpulse webhooks: no webhook {args.webhook_id}", file=sys.stderr)
                return 1
            for x in store.pending_deliveries(client, e["org_id"], args.webhook_id):
                print(f"pending    {x['alert_id']}  attempts {x['attempts']}  next {x['due_at']}")
            for x in store.delivery_log(client, e["org_id"], args.webhook_id, limit=args.limit):
                outcome = x["status_code"] if x["status_code"] is not None else x["error"]
                nxt = f"  next {x['next_retry_at']}" if x["next_retry_at"] else ""
                print(f"{x['at']}  {x['alert_id']}  #{x['attempt']}  {outcome}  {x['latency_ms']} ms  "
                      f"{x['state']}{nxt}")
            return 0
    except redis.RedisError as exc:
        print(f"callpulse webhooks: Redis at {settings.redis_url}: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    return 2
