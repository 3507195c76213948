"""``digitlab serve``: the web app."""

from __future__ import annotations


def cmd_serve(args) -> int:
    import os
    import sys

    from ..server import serve

    if args.teacher_token_file:
        os.environ["DIGITLAB_TEACHER_TOKEN_FILE"] = args.teacher_token_file
    if args.teacher_token:  # kept for old scripts; anyone on the machine can read it in `ps`
        print("digitlab: warning: --teacher-token is visible to other users (ps); prefer --teacher-token-file "
              "or $DIGITLAB_TEACHER_TOKEN", file=sys.stderr)
        os.environ["DIGITLAB_TEACHER_TOKEN"] = args.teacher_token
    serve(args.host, args.port, args.open)
    return 0


def add_serve(sub) -> None:
    p = sub.add_parser("serve", help="run the web app (draw digits, read numbers, check sums, API)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--open", action="store_true", help="open the page in a browser")
    p.add_argument("--teacher-token-file", metavar="FILE",
                   help="file holding the token the pupils' endpoints require (header X-Teacher-Token, at least "
                        "16 characters); default $DIGITLAB_TEACHER_TOKEN_FILE, or the token in $DIGITLAB_TEACHER_TOKEN")
    p.add_argument("--teacher-token", help="the token itself (visible in `ps`: prefer --teacher-token-file)")
    p.set_defaults(func=cmd_serve)
