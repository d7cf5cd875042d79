"""``python -m tools.grading`` (what the Makefile's grading targets run).

- ``generate A ...``: regenerate ``exercises/A`` from ``solutions/A`` (``make exercises``);
- ``autograde [--unsandboxed] [--jobs N] [--force] A ...``: grade the submissions of the
  assignments that have any, print progress and a table per student (``make grade``);
- ``feedback A ...``: HTML feedback for every graded submission, without hidden tests
  (``make feedback``);
- ``export``: ``grading/grades.csv`` (``make export``).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from nbgrader.api import Gradebook

from tools.grading.autograde import Grader, digest, run_nbgrader
from tools.grading.course import ROOT, generate
from tools.grading.feedback import assignment_secrets, check_pages
from tools.grading.sandbox import SandboxUnavailable, check_available


def db_url(course: Path) -> str:
    return f"sqlite:///{course / 'grading' / 'gradebook.db'}"


# Reasons that say the grading itself broke, not the submission: such runs are retried.
RETRY = ("crash:", "grading failed")


def changed(grader: Grader, course: Path, assignments: list[str], force: bool) -> list:
    """(assignment, student, release, digest) of every submission to (re)grade: new or
    changed files, a changed source, or a run whose grading broke."""
    todo = []
    for assignment in assignments:
        students = grader.submissions(assignment)
        if not students:
            print(f"{assignment}: no submissions")
            continue
        release = grader.register(assignment)
        source = course / "solutions" / assignment
        for student in students:
            key = f"{assignment}/{student}"
            stamp = digest(course / "grading" / "submitted" / student / assignment, source)
            previous = grader.state.get(key, {})
            broken = any(r.startswith(RETRY) for r in previous.get("reasons", []))
            if force or broken or previous.get("digest") != stamp:
                todo.append((assignment, student, release, stamp))
            else:
                print(f"{key}: unchanged since it was graded, kept")
    return todo


def grade_class(course: Path, assignments: list[str], jobs: int = 2, force: bool = False,
                sandboxed: bool = True) -> int:
    """Grade what changed, ``jobs`` nbgrader processes at once; print the table."""
    if sandboxed:
        check_available()
    (course / "grading").mkdir(exist_ok=True)
    grader = Grader(course, db_url(course), sandboxed=sandboxed)
    todo = changed(grader, course, assignments, force)
    jobs = max(1, min(jobs, len(todo)))
    print(f"grading {len(todo)} submission(s), {jobs} at a time", flush=True)
    lock, count = threading.Lock(), [0, 0]

    def progress(assignment, student):
        with lock:
            count[0] += 1
            print(f"[{count[0]}/{len(todo)}] {assignment}/{student} ran", flush=True)

    def done(assignment, student, reasons):
        with lock:
            count[1] += 1
            grader.state[f"{assignment}/{student}"] = {"digest": stamps[assignment, student],
                                                       "reasons": reasons}
            grader.save()
            print(f"graded {assignment}/{student}: " + ("; ".join(reasons) or "ok"),
                  flush=True)

    stamps = {(a, s): stamp for a, s, _, stamp in todo}
    batches = [(a, [t[1] for t in todo[k::jobs] if t[0] == a], rel, f"{a}-w{k}")
               for k in range(jobs) for a, rel in {(t[0], t[2]) for t in todo}]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(grader.grade_batch, a, students, rel, batch,
                               lambda s, r, a=a: done(a, s, r),
                               lambda s, a=a: progress(a, s))
                   for a, students, rel, batch in sorted(batches) if students]
        for future in futures:
            future.result()
    print_table(course, assignments, grader.state)
    return 1 if any(r.startswith("grading failed") for v in grader.state.values()
                    for r in v["reasons"]) else 0


def print_table(course: Path, assignments: list[str], state: dict) -> None:
    rows = []
    with Gradebook(db_url(course)) as gb:
        for assignment in assignments:
            try:
                subs = gb.assignment_submissions(assignment)
            except Exception:  # noqa: BLE001 - an assignment never registered
                continue
            for sub in subs:
                reasons = state.get(f"{assignment}/{sub.student_id}", {}).get("reasons", [])
                more = f" (+{len(reasons) - 2} more)" if len(reasons) > 2 else ""
                rows.append((sub.student_id, assignment, sub.score, sub.max_score,
                             "; ".join(reasons[:2]) + more or "-"))
    print(f"\n{'student':<20}{'assignment':<24}{'score':>7}{'max':>6}  reason")
    for student, assignment, score, top, why in sorted(rows):
        print(f"{student:<20}{assignment:<24}{score:>7.1f}{top:>6.1f}  {why}")
    print("(every reason of every submission: grading/autograde.json)")


def feedback(course: Path, assignments: list[str]) -> int:
    status = 0
    for assignment in assignments:
        autograded = course / "grading" / "autograded"
        if not any(autograded.glob(f"*/{assignment}")):
            print(f"{assignment}: nothing graded")
            continue
        proc = run_nbgrader(course, "generate_feedback", assignment, "--force")
        if proc.returncode:
            status = 1
            print(f"{assignment}: nbgrader generate_feedback failed:\n{proc.stderr[-2000:]}",
                  file=sys.stderr)
        pages = sorted((course / "grading" / "feedback").glob(f"*/{assignment}/*.html"))
        secrets = assignment_secrets(sorted((course / "solutions" / assignment).glob("*.ipynb")))
        leaks = check_pages(pages, secrets)
        for leak in leaks:
            status = 1
            print(f"hidden test found, page deleted: {leak}", file=sys.stderr)
        print(f"{assignment}: {len(pages) - len(leaks)} feedback page(s)")
    crashed_pages(course)
    return status


def crashed_pages(course: Path) -> None:
    """A page for each submission that could not be read: its reason."""
    state_path = course / "grading" / "autograde.json"
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    for key, entry in state.items():
        assignment, student = key.split("/")
        if (course / "grading" / "autograded" / student / assignment).is_dir():
            continue
        page = course / "grading" / "feedback" / student / assignment / f"{assignment}.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        why = "; ".join(entry["reasons"]).replace("&", "&amp;").replace("<", "&lt;")
        page.write_text(f"<html><body><h1>{assignment}</h1><p>Your submission could not be "
                        f"graded: {why}. Score: 0.</p></body></html>\n")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.grading")
    parser.add_argument("command", choices=["generate", "autograde", "feedback", "export"])
    parser.add_argument("assignments", nargs="*")
    parser.add_argument("--unsandboxed", action="store_true",
                        help="run student code without bwrap, with your rights (at your risk)")
    parser.add_argument("--jobs", type=int, default=2, help="submissions graded at once")
    parser.add_argument("--force", action="store_true", help="regrade unchanged submissions")
    parser.add_argument("--course", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_intermixed_args(argv)
    if args.command == "export":
        proc = run_nbgrader(args.course, "export")
        print(proc.stdout[-2000:], proc.stderr[-2000:], sep="\n")
        return proc.returncode
    if not args.assignments:
        print("no assignments given (solutions/ is empty?)", file=sys.stderr)
        return 2
    if args.command == "generate":
        generate(args.assignments)
        return 0
    if args.command == "feedback":
        return feedback(args.course, args.assignments)
    try:
        return grade_class(args.course, args.assignments, args.jobs, args.force,
                           not args.unsandboxed)
    except SandboxUnavailable as exc:
        print(f"refusing to grade: {exc}", file=sys.stderr)
        return 3

