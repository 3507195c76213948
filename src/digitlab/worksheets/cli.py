"""``digitlab worksheet create | grade | rename | list | report``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..errors import DigitlabError, without_name

EXIT_USAGE = 2


def _db(args):
    from ..storage import open_db

    return open_db(args.db)


def cmd_create(args) -> int:
    from .layout import check_title, key_of, layout, make_problems, new_sheet_id, write_sheet

    check_title(args.title)
    problems = make_problems(args.problems, ops=args.ops, max_value=args.max, remainder=args.remainder,
                             missing=args.missing, seed=args.seed, columns=args.columns)
    sheet = layout(problems, new_sheet_id(), args.title)
    paths = write_sheet(sheet, args.out)
    params = {"problems": args.problems, "ops": args.ops, "max": args.max, "remainder": args.remainder,
              "missing": args.missing, "seed": args.seed, "columns": args.columns}
    if not args.no_db:
        _db(args).add_sheet(key_of(sheet), params)
    print(f"sheet {sheet['sheet_id']}: {paths['pdf']} (print it), {paths['png']}, {paths['json']} (answer key)")
    return 0


def _annotate_path(out: str, photo: str, many: bool) -> Path:
    o = Path(out)
    if not many and o.suffix.lower() == ".png":
        return o
    return o / f"{Path(photo).stem}_marked.png"


def cmd_grade(args) -> int:
    from ..io.files import expand_paths
    from ..predictor import Predictor
    from .grade import annotate
    from .layout import load_key

    key = load_key(args.key) if args.key else None
    db = None if args.no_save and key is not None else _db(args)
    photos = [str(p) for p in expand_paths(args.photos)]
    names = args.name or []
    if len(names) > len(photos):
        raise DigitlabError(f"{len(names)} --name for {len(photos)} photo(s)")
    predictor = Predictor()  # the models loaded once for the batch
    failures = 0

    def failed(photo: str, msg: str) -> None:
        nonlocal failures
        failures += 1
        msg = without_name(msg, photo)  # the line names the photo once
        if args.json:
            print(json.dumps({"file": photo, "error": msg}), flush=True)
        else:
            print(f"{photo}: {msg}", file=sys.stderr, flush=True)

    # Every photo is tried, whatever happened to the ones before: each failure is one line, exit 2.
    for i, photo in enumerate(photos):
        try:
            g = predictor.grade(photo, name=photo, key=key, lookup=db.sheet_key if db else None)
        except (DigitlabError, OSError) as exc:
            failed(photo, str(exc))
            continue
        name = names[i] if i < len(names) else None
        r = g.result
        if db is not None and not args.no_save:
            try:
                r["grading_id"] = db.add_grading(r, g.name_png, g.crops, pupil_name=name, key=g.key)
            except DigitlabError as exc:
                failed(photo, f"graded {r['score']}/{r['total']} but not saved: {exc}")
                continue
        if name:
            r["pupil"] = name
        if args.annotate:
            from ..io.files import atomic_write

            out = _annotate_path(args.annotate, photo, len(photos) > 1)
            try:
                atomic_write(out, annotate(g))
                r["annotated"] = str(out)
            except OSError as exc:
                saved = f" (saved as #{r['grading_id']})" if "grading_id" in r else ""
                failed(photo, f"graded{saved}, but the marked photo {out} cannot be written: "
                              f"{exc.strerror or exc}")
        if args.json:
            print(json.dumps(r), flush=True)
        else:
            marks = {"correct": "ok", "wrong": "X", "unsure": "?", "blank": "-"}
            counts = {s: sum(q["status"] == s for q in r["problems"]) for s in marks}
            print(f"{photo}: sheet {r['sheet_id']}, {r['score']}/{r['total']} correct, {counts['wrong']} wrong, "
                  f"{counts['blank']} blank, {counts['unsure']} unsure"
                  + (f" (saved as #{r['grading_id']})" if "grading_id" in r else ""), flush=True)
            for q in r["problems"]:
                if q["status"] != "correct":
                    read = " R ".join(x if x is not None else "_" for x in q["read"])
                    print(f"  {q['id']:>3}. {q['question']:<22} read {read:<10} {q['status']}"
                          + (f" (answer {' R '.join(q['expected'])})" if q["status"] != "unsure" else ""))
    return EXIT_USAGE if failures else 0


def cmd_rename(args) -> int:
    _db(args).rename(args.grading_id, args.name)
    print(f"graded sheet #{args.grading_id} is now {args.name!r}")
    return 0


def cmd_list(args) -> int:
    db = _db(args)
    sheets = db.sheets()
    if args.json:
        print(json.dumps({"sheets": sheets, "gradings": db.gradings(args.sheet)}, indent=1))
        return 0
    for s in sheets:
        print(f"{s['sheet_id']}  {s['created_at']}  {s['graded']:>3} graded  {s['title']}")
    for g in db.gradings(args.sheet):
        print(f"  #{g['id']:<4} {g['sheet_id']}  {g['score']}/{g['total']}  {g['pupil_name'] or '(no name)'}  {g['file']}")
    return 0


def cmd_report(args) -> int:
    from .report import class_report, text_table, write_csv, write_html

    rep = class_report(_db(args), args.sheet)
    if args.json:
        print(json.dumps(rep, indent=1))
    else:
        print(text_table(rep))
    if args.csv:
        write_csv(rep, args.csv)
        print(f"wrote {args.csv}", file=sys.stderr)
    if args.html:
        write_html(rep, args.html)
        print(f"wrote {args.html}", file=sys.stderr)
    return 0


def register(sub) -> None:
    p = sub.add_parser("worksheet", help="printed worksheets: create, grade photos, class report",
                       description="Create printable worksheets, grade photos of them, keep the class's results.")
    ws = p.add_subparsers(dest="worksheet_command", required=True, metavar="ACTION")

    def db_arg(q):
        q.add_argument("--db", metavar="PATH", help="database file (default: $DIGITLAB_DB, else the user data folder)")

    q = ws.add_parser("create", help="write NAME.pdf, NAME.png and NAME.json (answer key); record the sheet")
    q.add_argument("--problems", type=int, default=20, help="number of exercises (1-40)")
    q.add_argument("--ops", nargs="+", default=["+", "-"], metavar="OP", help="operations among + - x / (default: + -)")
    q.add_argument("--max", type=int, default=20, help="largest operand (default 20)")
    q.add_argument("--remainder", action="store_true", help="divisions with remainder: 17 ÷ 5 = [3] R [2]")
    q.add_argument("--missing", action="store_true", help="some exercises ask for an operand: [ ] + 5 = 12")
    q.add_argument("--columns", action="store_true",
                   help="column sums (+ -, x by one digit; at most 24): the answer in a box under a printed rule")
    q.add_argument("--seed", type=int, help="random seed (the same seed makes the same exercises)")
    q.add_argument("--title", default="Worksheet")
    q.add_argument("--out", required=True, help="the PDF to write (the .png and .json go next to it)")
    q.add_argument("--no-db", action="store_true", help="do not record the sheet in the database")
    db_arg(q)
    q.set_defaults(func=cmd_create)

    q = ws.add_parser("grade", help="grade photos of filled-in sheets")
    q.add_argument("photos", nargs="+", help="photos or folders of photos")
    q.add_argument("--json", action="store_true", help="one JSON object per photo")
    q.add_argument("--annotate", metavar="OUT", help="write the marked photo: a .png file (one photo) or a folder")
    q.add_argument("--key", metavar="FILE", help="the answer key (.json) instead of the database's")
    q.add_argument("--name", action="append", metavar="NAME", help="pupil name, one per photo in order (repeatable)")
    q.add_argument("--no-save", action="store_true", help="do not store the results in the database")
    db_arg(q)
    q.set_defaults(func=cmd_grade)

    q = ws.add_parser("rename", help="type the pupil name of a graded sheet")
    q.add_argument("grading_id", type=int, help="the graded sheet's number (see `worksheet list`)")
    q.add_argument("name")
    db_arg(q)
    q.set_defaults(func=cmd_rename)

    q = ws.add_parser("list", help="the sheets and graded photos in the database")
    q.add_argument("--sheet", metavar="ID")
    q.add_argument("--json", action="store_true")
    db_arg(q)
    q.set_defaults(func=cmd_list)

    q = ws.add_parser("report", help="the class table, error rates by operation, most-missed problems")
    q.add_argument("--sheet", metavar="ID", help="only this sheet")
    q.add_argument("--csv", metavar="FILE", help="write the class table as CSV")
    q.add_argument("--html", metavar="FILE", help="write an HTML report with a plot")
    q.add_argument("--json", action="store_true")
    db_arg(q)
    q.set_defaults(func=cmd_report)
