"""`callpulse keys create|list|rotate|revoke` — API keys (stored hashed in Redis; see api/auth.py).

    callpulse keys create --org ORG [--scopes S,...] [--expires-in 30d]   org key (ak_…)
    callpulse keys create --user NAME --orgs ORG,... [--scopes ...]       user token (pat_…, sends X-Org)
    callpulse keys list
    callpulse keys rotate KEY_ID [--expires-in 30d] [--grace 1h]         new secret, same id and scopes
    callpulse keys revoke KEY_ID

The new key is printed once (stdout, the key alone on its line); only its SHA-256 is kept.
Durations: 3600s, 15m, 12h, 30d, 2w (a bare number is seconds).
"""

from __future__ import annotations

import sys

HELP = "Create, list, rotate and revoke API keys (org keys ak_…, user tokens pat_…)."


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
    c.add_argument("--expires-in", metavar="DURATION", default=None,
                   help="the key stops working after this long (e.g. 30d, 12h, 3600s); default: never")
    c.add_argument("--json", action="store_true", help="print {key_id, key, ...} as JSON")
    ro = sub.add_parser("rotate", help="issue a new secret for a key (same id and scopes) and print it once")
    ro.add_argument("key_id")
    ro.add_argument("--expires-in", metavar="DURATION", default=None,
                    help="the new secret's lifetime (default: the key's lifetime, or no expiry if it had none)")
    ro.add_argument("--grace", metavar="DURATION", default="0",
                    help="the old secret keeps working this long (default 0: it stops now)")
    ro.add_argument("--json", action="store_true", help="print {key_id, key, expires_ms} as JSON")
    ls = sub.add_parser("list", help="list keys (never the secrets)")
    ls.add_argument("--json", action="store_true", help="JSON output")
    rv = sub.add_parser("revoke", help="revoke a key by its id")
    rv.add_argument("key_id")


def run(args) -> int:
    import redis

    from callpulse.settings import CliSettings

    settings = CliSettings.from_env()
    client = settings.connect()
    commands = {"create": _create, "rotate": _rotate, "list": _list, "revoke": _revoke}
    try:
        command = commands.get(args.keys_command)
        return command(client, args) if command is not None else 2
    except redis.RedisError as exc:
        print(f"callpulse keys: Redis at {settings.redis_url}: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()


def _create(client, args) -> int:
    import orjson

    from api.auth import create_key, format_ms, key_info, parse_duration, parse_scopes

    try:
        scopes = parse_scopes(args.scopes)
        expires = parse_duration(args.expires_in) if args.expires_in is not None else None
        if args.user is not None:
            orgs = [o.strip() for o in (args.orgs or "").split(",") if o.strip()]
            key_id, key = create_key(client, user=args.user, orgs=orgs, scopes=scopes, expires_in_s=expires)
        else:
            if args.orgs:
                print("callpulse keys: --orgs goes with --user", file=sys.stderr)
                return 2
            key_id, key = create_key(client, org=args.org, scopes=scopes, expires_in_s=expires)
    except ValueError as exc:
        print(f"callpulse keys: {exc}", file=sys.stderr)
        return 2
    expires_ms = key_info(client, key_id)["expires_ms"]
    until = f", expires {format_ms(expires_ms)}" if expires_ms else ""
    if args.json:
        print(orjson.dumps({"key_id": key_id, "key": key, "scopes": scopes, "expires_ms": expires_ms}).decode())
    else:
        print(key)
        print(f"key id {key_id}, scopes {','.join(scopes)}{until} — store the key now: "
              f"it is not shown again", file=sys.stderr)
    return 0


def _rotate(client, args) -> int:
    import orjson

    from api.auth import format_ms, key_info, parse_duration, rotate_key

    try:
        expires = parse_duration(args.expires_in) if args.expires_in is not None else None
        key = rotate_key(client, args.key_id, expires_in_s=expires, grace_s=parse_duration(args.grace))
    except KeyError:
        print(f"callpulse keys: no key {args.key_id}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"callpulse keys: {exc}", file=sys.stderr)
        return 2
    info = key_info(client, args.key_id)
    if args.json:
        print(orjson.dumps({"key_id": args.key_id, "key": key, "expires_ms": info["expires_ms"],
                            "old_secret_until_ms": info["old_secret_until_ms"]}).decode())
    else:
        print(key)
        old = (f"the old secret works until {format_ms(info['old_secret_until_ms'])}"
               if info["old_secret_until_ms"] else "the old secret no longer works")
        exp = f", expires {format_ms(info['expires_ms'])}" if info["expires_ms"] else ""
        print(f"key id {args.key_id} rotated{exp}; {old} — store the key now: it is not shown again",
              file=sys.stderr)
    return 0


def _list(client, args) -> int:
    import orjson

    from api.auth import format_ms, list_keys

    keys = list_keys(client)
    if args.json:
        print(orjson.dumps(keys).decode())
        return 0
    for k in keys:
        who = f"org {k['org']}" if k["kind"] == "org" else f"user {k['user']} orgs {','.join(k['orgs'] or [])}"
        state = "REVOKED" if k["revoked"] else "EXPIRED" if k["expired"] else "active"
        exp = f"  expires {format_ms(k['expires_ms'])}" if k["expires_ms"] else "  expires never"
        print(f"{k['key_id']}  {k['kind']:4}  {who}  scopes {','.join(k['scopes'])}  {state}{exp}")
    return 0


def _revoke(client, args) -> int:
    from api.auth import revoke_key

    if revoke_key(client, args.key_id):
        print(f"revoked {args.key_id}")
        return 0
    print(f"callpulse keys: no key {args.key_id}", file=sys.stderr)
    return 1
