"""``digitlab adapt`` and ``digitlab profiles`` (registered by the CLI like the other optional commands)."""

from __future__ import annotations

import json

from ..errors import DigitlabError


def cmd_adapt(args) -> int:
    from .core import adapt, check_name, load_examples

    check_name(args.profile)
    X = y = None
    skipped = 0
    if args.examples and args.from_corrections:
        raise DigitlabError("give EXAMPLES with --labels, or --from-corrections, not both")
    if args.examples:
        if not args.labels:
            raise DigitlabError("EXAMPLES needs --labels labels.csv (lines 'file,label')")
        X, y = load_examples(args.examples, args.labels)
    elif args.labels:
        raise DigitlabError("--labels needs the EXAMPLES folder the files are in")
    elif args.from_corrections:
        from ..storage import open_db
        from .store import correction_examples

        X, y, skipped = correction_examples(open_db(args.db), args.profile)
        if len(y) == 0:
            raise DigitlabError(f"no usable corrections stored for profile {args.profile!r}"
                                + (f" ({skipped} skipped)" if skipped else ""))
    settings = {}
    if args.no_head:
        settings["head_steps"] = 0
    out = adapt(args.profile, X, y, replace=args.replace or bool(args.from_corrections), base=args.base,
                settings=settings, data_dir=args.data_dir)
    out["skipped"] = skipped
    if args.json:
        print(json.dumps(out))
    else:
        counts = " ".join(f"{d}:{n}" for d, n in out["counts"].items())
        extra = f", {skipped} correction(s) skipped" if skipped else ""
        print(f"profile {out['profile']}: {out['examples']} examples ({counts}), {out['added']} new{extra}; "
              f"built in {out['seconds']:.1f} s -> {out['path']}")
    return 0


def cmd_profiles(args) -> int:
    from .core import list_profiles, profiles_dir

    rows = list_profiles()
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    if not rows:
        print(f"no profiles yet in {profiles_dir()} (build one with `digitlab adapt`)")
        return 0
    for r in rows:
        if "error" in r:
            print(f"{r['name']:20} error: {r['error']}")
            continue
        counts = " ".join(f"{d}:{r['counts'].get(d, 0)}" for d in range(10))
        print(f"{r['name']:20} {r['examples']:5d} examples  [{counts}]  {r.get('updated') or ''}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("adapt", help="build or update a handwriting profile from labelled examples or corrections",
                       description="Build or update a handwriting profile (see docs/profiles.md). Examples are added "
                                   "to the profile's earlier ones; --from-corrections rebuilds it from the database.")
    p.add_argument("examples", nargs="?", help="folder of digit images (one digit per image)")
    p.add_argument("--labels", help="CSV with lines 'file,label' (file relative to EXAMPLES)")
    p.add_argument("--profile", required=True, help="profile name (a class or a pupil), e.g. 3b or anna")
    p.add_argument("--from-corrections", action="store_true",
                   help="use the corrections stored in the database for this profile")
    p.add_argument("--replace", action="store_true", help="forget the profile's earlier examples")
    p.add_argument("--base", help="base CNN (name or .dlm file; default: the shipped CNN)")
    p.add_argument("--no-head", action="store_true", help="prototypes only: do not fine-tune the final layer")
    p.add_argument("--db", help="database file (default: $DIGITLAB_DB or the user data folder)")
    p.add_argument("--data-dir", help="MNIST folder for replay (default: $DIGITLAB_DATA, then the cache)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_adapt)

    p = sub.add_parser("profiles", help="list the handwriting profiles with their example counts")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_profiles)
