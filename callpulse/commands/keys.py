"""`callpulse keys create|list|revoke` — API keys (stored hashed in Redis; see api/auth.py).

    callpulse keys create --org ORG [--scopes S,...]                org key (ak_…)
    callpulse keys create --user NAME --orgs ORG,... [--scopes ...]  user token (pat_…, sends X-Org)
    callpulse keys list
    callpulse keys revoke KEY_ID

The new key is printed once (stdout, the key alone on its line); only its SHA-256 is kept.
"""

from __future__ import annotations

import sys

HELP = "Create, list and revoke API keys (org keys ak_…, user tokens pat_…)."


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    c = sub.add_parser("create", help="create a key and print it once")
    who = c.add_mutually_exclusive_group(required=True)
    who.add_argument("--org", help="org key for this org")
    who.add_argument("--user", help="user token for this user name (needs --orgs)")
    c.add_argument("--orgs", help="comma-separated orgs the user belongs to")
    c.add_argument("--scopes", default=None,
                   help="comma-separated: campaigns:read, campaigns:manage, events:write "
                        "(default campaigns:read,events:write)")
    c.add_argument("--json", action="store_true", help="print {key_id, key, ...} as JSON")
    ls = sub.add_parser("list", help="list keys (never the secrets)")
    ls.add_argument("--json", action="store_true", help="JSON output")
    rv = sub.add_parser("revoke", help="revoke a key by its id")
    rv.add_argument("key_id")


def run(args) -> int:
    import orjson
    import redis

    from api.auth import create_key, list_keys, parse_scopes, revoke_key
    from callpulse.commands import redis_url

    client = redis.Redis.from_url(redis_url())
    try:
        if args.keys_command == "create":
            try:
                scopes = parse_scopes(args.scopes)
                if args.user is not None:
                    orgs = [o.strip() for o in (args.orgs or "").split(",") if o.strip()]
                    key_id, key = create_key(client, user=args.user, orgs=orgs, scopes=scopes)
                else:
                    if args.orgs:
                        print("callpulse keys: --orgs goes with --user", file=sys.stderr)
                        return 2
                    key_id, key = create_key(client, org=args.org, scopes=scopes)
            except ValueError as exc:
                print(f"callpulse keys: {exc}", file=sys.stderr)
                return 2
            if args.json:
                print(orjson.dumps({"key_id": key_id, "key": key, "scopes": scopes}).decode())
            else:
                print(key)
                print(f"key id {key_id}, scopes {','.join(scopes)} — store the key now: it is not shown again",
                      file=sys.stderr)
            return 0
        if args.keys_command == "list":
            keys = list_keys(client)
            if args.json:
                print(orjson.dumps(keys).decode())
            else:
                for k in keys:
                    who = f"org {k['org']}" if k["kind"] == "org" else f"user {k['user']} orgs {','.join(k['orgs'] or [])}"
                    state = "REVOKED" if k["revoked"] else "active"
                    print(f"{k['key_id']}  {k['kind']:4}  {who}  scopes {','.join(k['scopes'])}  {state}")
            return 0
        if args.keys_command == "revoke":
            if revoke_key(client, args.key_id):
                print(f"revoked {args.key_id}")
                return 0
            print(f"callpulse keys: no key {args.key_id}", file=sys.stderr)
            return 1
    except redis.RedisError as exc:
        print(f"callpulse keys: Redis at {redis_url()}: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    return 2
