"""The ``treadle`` command.

Exit codes: 0 no violation, 1 violation, 2 bad usage or input, 3 unknown (a check could not
decide, or nothing was explored), 130 interrupted.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import os
import sys
import time
from typing import Any, NoReturn

from treadle.budgets import (
    arg_non_negative_int,
    arg_non_negative_seconds,
    arg_positive_int,
    arg_positive_seconds,
)
from treadle.errors import TreadleError
from treadle.workdir import DEFAULT_TRACES

EXIT_OK, EXIT_VIOLATION, EXIT_USAGE, EXIT_UNKNOWN, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_CODES = {
    "ok": EXIT_OK,
    "violation": EXIT_VIOLATION,
    "unknown": EXIT_UNKNOWN,
    "interrupted": EXIT_INTERRUPTED,
}


def esc(text: Any) -> str:
    """Dynamic text (messages, reprs, paths) must not be read as rich markup: "[index 1, ...]"
    would vanish."""
    from rich.markup import escape

    return escape(str(text))


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="treadle",
        description="Model checking and verification harness for distributed systems.",
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser(
        "list", help="systems with their seeded bugs, and strategies; SYSTEM: its config keys"
    )
    s.add_argument("system", nargs="?", help="show this system's config keys and bugs")
    s.add_argument(
        "--config",
        action="store_true",
        help="with SYSTEM: every config key, its type, range and default (the default)",
    )
    s.add_argument("--json", action="store_true")

    s = sub.add_parser(
        "explore", help="explore a system's schedules and faults, looking for violations"
    )
    s.add_argument("system")
    s.add_argument("--bug", help="switch on a seeded bug (see treadle list)")
    s.add_argument(
        "--strategy",
        default="mixed",
        help="mixed (default: random, pct, swarm in turn), random, pct, swarm, dfs, bfs, dpor",
    )
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--runs",
        type=arg_positive_int,
        help="number of runs, > 0 (default 100, or unlimited with --time)",
    )
    s.add_argument(
        "--steps", type=arg_positive_int, help="steps per run, > 0 (default: the system's)"
    )
    s.add_argument("--time", type=arg_positive_seconds, help="wall-time budget in seconds, > 0")
    s.add_argument(
        "--config", action="append", metavar="KEY=VALUE", help="override a config key (repeatable)"
    )
    s.add_argument(
        "--out",
        default=DEFAULT_TRACES,
        help=f"where traces are saved (default: {DEFAULT_TRACES}/; the committed regression "
        "corpus is histories/)",
    )
    s.add_argument(
        "--shrink-runs",
        type=arg_non_negative_int,
        help="candidate runs the shrinker may spend (default 4000; 0: don't shrink)",
    )
    s.add_argument(
        "--shrink-time",
        type=arg_non_negative_seconds,
        default=300.0,
        help="safety bound on shrinking, in seconds (0: don't shrink); the budget is --shrink-runs",
    )
    s.add_argument(
        "--check-determinism",
        action="store_true",
        help="replay runs twice and in another process, report the first divergence",
    )
    add_worker_args(s)
    s.add_argument("--json", action="store_true")

    from treadle.campaign_cli import add_parsers as add_campaign_parsers

    add_campaign_parsers(sub, add_worker_args)

    s = sub.add_parser("replay", help="replay a trace: same history byte for byte, checks re-run")
    s.add_argument("trace")
    s.add_argument("--history", metavar="OUT", help="also write the history as JSONL")
    s.add_argument("--html", metavar="OUT", help="also write the study page (one HTML file)")
    s.add_argument("--check-determinism", action="store_true")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("shrink", help="minimize a trace that shows a violation")
    s.add_argument("trace")
    s.add_argument(
        "--out",
        help="where to write the shrunk trace (default: a new file under .treadle/traces/SYSTEM/,"
        " the input is left as it is)",
    )
    s.add_argument(
        "--in-place",
        action="store_true",
        help="overwrite the input trace (and its study page beside it, if there is one)",
    )
    s.add_argument(
        "--runs",
        type=arg_positive_int,
        default=4000,
        help="candidate runs to spend (the budget; default 4000)",
    )
    s.add_argument(
        "--time",
        type=arg_positive_seconds,
        default=300.0,
        help="safety bound in seconds (default 300)",
    )
    s.add_argument(
        "--workers",
        type=arg_positive_int,
        default=1,
        help="processes to run candidates on (default 1: in this process); the result does "
        "not depend on it",
    )
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("show", help="print a trace's timeline, or a history")
    s.add_argument("path")
    s.add_argument("--limit", type=int, default=0, help="show at most this many lines (0: all)")
    s.add_argument(
        "--html", metavar="OUT", help="write the study page: chart, step scrubber, node states"
    )
    s.add_argument(
        "--format",
        default="table",
        choices=("table", "otlp", "shiviz", "perfetto", "jsonl", "edn"),
        help="table (default); otlp (OpenTelemetry JSON, for Jaeger/Grafana), shiviz, "
        "perfetto (Chrome trace events), jsonl or edn (the client history)",
    )
    s.add_argument("-o", "--output", metavar="FILE", help="write the --format export here")
    s.add_argument(
        "--node", action="append", metavar="ID", help="only the steps of this node (repeatable)"
    )
    s.add_argument("--around", type=int, metavar="STEP", help="only steps near STEP")
    s.add_argument(
        "--window", type=int, default=10, help="steps either side of --around (default 10)"
    )
    s.add_argument("--state", action="store_true", help="add node state columns (a trace)")
    s.add_argument("--json", action="store_true", help="print the page's data as one object")

    s = sub.add_parser("check", help="check histories (recorded by treadle or any real system)")
    from treadle.check_cmd import add_arguments as add_check_arguments  # one definition

    add_check_arguments(s)

    s = sub.add_parser(
        "prove", help="z3 proofs: quorum intersection (pbft), breaker bounded model checking"
    )
    s.add_argument("target", help="pbft | breaker")
    s.add_argument("--json", action="store_true", help="print one object")
    s.add_argument("rest", nargs=argparse.REMAINDER, help="the target's options (--help)")
    return p


def add_worker_args(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--workers",
        type=arg_positive_int,
        help="processes to run seeds on (default: the machine's cores; 1: in this process; "
        "exhaustive search: 1, and bfs expands states on N workers when given); results do not "
        "depend on it",
    )
    s.add_argument(
        "--executor",
        choices=("process", "dask"),
        default="process",
        help="process (a local pool, default) or dask (an existing Dask cluster)",
    )
    s.add_argument(
        "--dask-address",
        metavar="tcp://HOST:PORT",
        help="the Dask scheduler (default: $TREADLE_DASK_ADDRESS)",
    )


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # usage errors (one line, printed) and --help
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    try:
        return int(COMMANDS[args.command](args) or 0)
    except TreadleError as e:
        text = " ".join(str(e).split())
        if len(text) > 400:
            text = f"{text[:340]} ... ({len(text)} characters) ... {text[-40:]}"
        print(f"error: {text}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0
    except Exception as e:  # last resort: one line, never a traceback (unless asked for)
        import os
        import traceback

        if os.environ.get("TREADLE_DEBUG"):
            traceback.print_exc()
        what = (
            "input too deep or too large"
            if isinstance(e, RecursionError | MemoryError)
            else "internal error"
        )
        text = " ".join(f"{type(e).__name__}: {e}".split())[:500]
        hint = "" if os.environ.get("TREADLE_DEBUG") else " (TREADLE_DEBUG=1 shows the traceback)"
        print(f"error: {what}: {text}{hint}", file=sys.stderr)
        return EXIT_USAGE


# ---------------------------------------------------------------------------------------- list
def config_table(system: Any) -> list[dict[str, Any]]:
    """Every key a run of ``system`` reads, by layer, with its type, range and defaults."""
    from treadle.exhaustive import EXPLORER_SCHEMA
    from treadle.world import STRATEGY_SCHEMA, WORLD_SCHEMA

    schema = system.schema()
    resolved = system.resolve_config()
    own = {k.name for k in system.config_keys}
    rows = []
    layers = [("world", WORLD_SCHEMA), ("strategy", STRATEGY_SCHEMA)]
    layers += [("exhaustive", EXPLORER_SCHEMA)]
    seen: set[str] = set()
    for layer, sch in layers:
        for name in sch.keys:
            key = EXPLORER_SCHEMA.keys[name] if layer == "exhaustive" else schema.keys[name]
            default = key.default if layer == "exhaustive" else resolved[name]
            rows.append({**key.to_json(), "layer": layer, "default": default})
            seen.add(name)
    for name, key in schema.keys.items():
        if name not in seen:
            layer = "system" if name in own else "system (undeclared)"
            rows.append({**key.to_json(), "layer": layer, "default": resolved[name]})
    for row in rows:
        row["exhaustive_default"] = system.exhaustive.get(row["name"])
    return rows


def cmd_list_system(args: argparse.Namespace) -> int:
    from treadle.system import get_system

    system = get_system(args.system)
    rows = config_table(system)
    rules = [r.text for r in system.schema().rules]
    if args.json:
        print(
            json.dumps(
                {
                    "system": system.name,
                    "description": system.description,
                    "bugs": [{"name": b, "description": d} for b, d in sorted(system.bugs.items())],
                    "config": rows,
                    "rules": rules,
                },
                indent=1,
            )
        )
        return EXIT_OK
    con = _console()
    con.print(f"[bold]{esc(system.name)}[/bold]: config keys (--config KEY=VALUE)")
    width = max(len(r["name"]) for r in rows)
    layer = None
    for r in rows:
        if r["layer"] != layer:
            layer = r["layer"]
            con.print(f"\n[bold]{esc(layer)}[/bold]")
        ex = r["exhaustive_default"]
        ex_text = "" if ex is None else f", exhaustive {json.dumps(ex)}"
        con.print(
            f"  {esc(r['name']).ljust(width)}  {esc(r['type'])} {esc(r['range'])}, "
            f"default {esc(json.dumps(r['default']))}{esc(ex_text)}"
            + (f"  [dim]{esc(r['doc'])}[/dim]" if r["doc"] else "")
        )
    if rules:
        con.print("\n[bold]constraints[/bold]: " + esc(", ".join(rules)))
    if system.bugs:
        con.print("[bold]seeded bugs[/bold] (--bug): " + esc(", ".join(sorted(system.bugs))))
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    from treadle.strategies import EXHAUSTIVE, STRATEGIES
    from treadle.system import all_systems, broken_systems

    if args.system:
        return cmd_list_system(args)
    if args.config:
        raise TreadleError("list --config needs a SYSTEM: treadle list SYSTEM --config")

    systems = all_systems()
    broken = broken_systems()
    strategies = list(STRATEGIES) + list(EXHAUSTIVE)
    if args.json:
        print(
            json.dumps(
                {
                    "systems": [
                        {
                            "name": s.name,
                            "description": s.description,
                            "bugs": [
                                {"name": b, "description": d} for b, d in sorted(s.bugs.items())
                            ],
                        }
                        for s in systems.values()
                    ],
                    "strategies": strategies,
                    "unavailable": [{"name": n, "error": e} for n, e in sorted(broken.items())],
                },
                indent=1,
            )
        )
        return EXIT_OK
    from rich.table import Table

    con = _console()
    table = Table(title="systems", show_lines=True)
    table.add_column("system", style="bold")
    table.add_column("description")
    table.add_column("seeded bugs (--bug)")
    for s in systems.values():
        bugs = "\n".join(f"[bold]{esc(b)}[/bold]: {esc(d)}" for b, d in sorted(s.bugs.items()))
        table.add_row(esc(s.name), esc(s.description), bugs)
    con.print(table)
    con.print("strategies: " + ", ".join(strategies))
    for n, e in sorted(broken.items()):
        _console(stderr=True).print(f"[yellow]warning:[/yellow] system {n} unavailable: {e}")
    return EXIT_OK


# ---------------------------------------------------------------------------------------- explore
def cmd_explore(args: argparse.Namespace) -> int:
    from treadle.runner import explore
    from treadle.system import get_system, parse_config_args

    system = get_system(args.system)
    system.check_bug(args.bug)
    config = parse_config_args(args.config)
    err = _console(stderr=True)
    show_progress = not args.json and err.is_terminal

    def say(msg: str) -> None:
        if not args.json:
            err.print(f"[dim]{esc(msg)}[/dim]")

    run = functools.partial(
        explore,
        system,
        bug=args.bug,
        strategy=args.strategy,
        seed=args.seed,
        runs=args.runs,
        steps=args.steps,
        time=args.time,
        config=config,
        out=args.out,
        shrink_time=args.shrink_time,
        shrink_runs=args.shrink_runs,
        check_determinism=args.check_determinism,
    )
    from treadle.parallel import choose_workers, cli_executor

    asked = choose_workers(args.workers, system, args.runs) if args.executor == "process" else None
    if args.workers is None and args.strategy in ("dfs", "bfs", "dpor") and asked is not None:
        asked = 1  # exhaustive search: workers when asked for (only bfs uses them)
    with cli_executor(asked, args.executor, args.dask_address) as (workers, executor):
        run = functools.partial(run, workers=workers, executor=executor)
        result = _explore_with_progress(run, args, system.name, err, show_progress, say)
    return _print_explore(result, args)


def _explore_with_progress(
    run: Any, args: argparse.Namespace, name: str, err: Any, show_progress: bool, say: Any
) -> Any:
    if show_progress:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        by_time = bool(args.time)
        with Progress(
            TextColumn("[bold]exploring[/bold] " + esc(name)),
            BarColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
            # no refresh thread: worker processes fork from a process without threads
            auto_refresh=False,
        ) as bar:
            task = bar.add_task(
                "explore", total=args.time if by_time else (args.runs or 100), info=""
            )

            shown = [0.0]

            def progress(runs: int, events: int, elapsed: float) -> None:
                done = elapsed if by_time else runs
                bar.update(task, completed=done, info=f"{runs} runs, {events} events")
                if time.monotonic() - shown[0] >= 0.1:  # redraw at most ten times a second
                    shown[0] = time.monotonic()
                    bar.refresh()

            def message(m: str) -> None:
                bar.update(task, info=esc(m))
                bar.refresh()

            result = run(progress=progress, on_message=message)
    else:
        result = run(on_message=say)
    return result


def _print_explore(result: Any, args: argparse.Namespace) -> int:
    if result.trace:
        # the study page beside the trace (a failure to draw it never hides the verdict)
        from treadle.study import page_beside

        page, problem = page_beside(result.trace)
        result.extra["page"] = page
        if problem:
            _console(stderr=True).print(f"[yellow]warning:[/yellow] {esc(problem)}")
    if args.json:
        print(json.dumps(result.to_json(), indent=1))
    else:
        con = _console()
        if result.violation is None:
            style = "green" if result.verdict == "ok" else "yellow"
            ex = result.extra
            if "summary" in ex:  # exhaustive: say what was covered, honestly
                con.print(
                    f"[{style}]{'no violation' if result.verdict == 'ok' else result.verdict}: "
                    f"{esc(ex['summary'])} in {result.elapsed_s:.1f} s[/{style}]"
                )
                shown = {
                    k: ex[k]
                    for k in (
                        "complete",
                        "states",
                        "executions_run",
                        "paths_counted",
                        "history_checks",
                        "depth",
                        "bounds_hit",
                        "reduction",
                        "dfs_paths_counted",
                    )
                    if ex.get(k) is not None
                }
                con.print("  " + esc(", ".join(f"{k}={v}" for k, v in shown.items())))
                for finding in ex.get("liveness") or []:
                    con.print(f"  [yellow]liveness[/yellow]: {esc(finding)}")
            else:
                if result.verdict == "interrupted":
                    style = "yellow"
                con.print(f"[{style}]{esc(result.summary())}[/{style}]")
        else:
            v = result.violation
            con.print(
                f"[bold red]violation[/bold red] of [bold]{esc(v.property)}[/bold] "
                f"(run {result.runs}, seed {result.seeds[1] if result.seeds else 0}, "
                f"{result.elapsed_s:.1f} s)"
            )
            con.print(esc(v.message))
            if result.shrunk:
                s = result.shrunk
                con.print(
                    f"shrunk: {s['from_choices']} -> {s['choices']} choices, "
                    f"{s['from_steps']} -> {s['steps']} steps"
                    + (
                        f" ({esc(str(s['message']))})"
                        if s.get("message") and not s.get("minimal")
                        else ""
                    )
                )
            con.print(f"trace: {esc(result.trace)}")
            if result.extra.get("page"):
                con.print(f"page: {esc(result.extra['page'])}")
            con.print(
                f"replay: [bold]{esc(result.replay)}[/bold]   show: treadle show {esc(result.trace)}"
            )
    return EXIT_CODES[result.verdict]


# ---------------------------------------------------------------------------------------- replay
def cmd_replay(args: argparse.Namespace) -> int:
    from treadle import history as hist
    from treadle.runner import check_determinism, replay

    t0 = time.monotonic()
    r = replay(args.trace)
    elapsed = time.monotonic() - t0
    if args.check_determinism:
        msg = check_determinism(args.trace)
        if msg:
            raise TreadleError(msg)
    if args.history:
        hist.write_jsonl(args.history, r.run.history)
    if args.html:
        from treadle.study import write_page

        write_page(args.trace, args.html)
    v = r.run.violation
    verdict = "violation" if v else ("unknown" if r.run.unknown else "ok")
    recorded = r.trace.violation
    out = {
        "verdict": verdict,
        "system": r.trace.system,
        "bug": r.trace.bug,
        "strategy": r.trace.strategy,
        "seed": r.trace.seed,
        "runs": 1,
        "events": len(r.run.history),
        "steps": r.run.steps,
        "elapsed_s": round(elapsed, 3),
        "violation": {"property": v.property, "message": v.message} if v else None,
        "trace": args.trace,
        "replay": f"treadle replay {args.trace}",
        "history_sha256": r.history_sha256,
        "reproduces_recorded_violation": bool(
            v and recorded and recorded.get("property") == v.property
        ),
        "html": args.html,
    }
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        con = _console()
        con.print(
            f"history sha256 {r.history_sha256} (matches the trace), {len(r.run.history)} events, {r.run.steps} steps"
        )
        if v:
            con.print(
                f"[bold red]violation[/bold red] of [bold]{esc(v.property)}[/bold]: {esc(v.message)}"
            )
        else:
            con.print(f"[green]{verdict}[/green]: no property violated")
        if args.html:
            con.print(f"study page: {esc(args.html)}")
    return {"ok": EXIT_OK, "violation": EXIT_VIOLATION, "unknown": EXIT_UNKNOWN}[verdict]


# ---------------------------------------------------------------------------------------- shrink
def cmd_shrink(args: argparse.Namespace) -> int:
    from treadle.runner import load_and_check, replay_command
    from treadle.shrink import shrink, shrink_report

    if args.out and args.in_place:
        raise TreadleError("shrink: --out and --in-place exclude each other")
    system, trace = load_and_check(args.trace)
    t0 = time.monotonic()
    # Ctrl-C stops the shrinker, which returns the best trace so far: saved and reported
    small = shrink(system, trace, runs=args.runs, time=args.time, workers=args.workers)
    report = shrink_report(small)
    if args.in_place:
        out = args.trace
        small.save(out)
    elif args.out:
        out = args.out
        small.save(out)
    else:  # never touch what the user did not ask to write: a new file in the working folder
        from treadle.outcome import save_new_trace

        stem = os.path.splitext(os.path.basename(args.trace))[0]
        out = save_new_trace(small, DEFAULT_TRACES, f"{stem}-shrunk.json")
    page = None
    if not args.out and (not args.in_place or os.path.exists(os.path.splitext(out)[0] + ".html")):
        from treadle.study import page_beside

        page, _ = page_beside(out)  # a stale page beside an overwritten trace is redrawn
    assert small.violation is not None
    res = {
        "verdict": "violation",
        "system": small.system,
        "bug": small.bug,
        "strategy": small.strategy,
        "seed": small.seed,
        "runs": 1,
        "events": small.events,
        "elapsed_s": round(time.monotonic() - t0, 3),
        "violation": {
            "property": small.violation["property"],
            "message": small.violation["message"],
        },
        "trace": out,
        "replay": replay_command(out),
        "history_sha256": small.history_sha256,
        "choices": [len(trace.choices), len(small.choices)],
        "steps": [trace.steps, small.steps],
        "shrink": report,
        "interrupted": report["stopped"] == "interrupted",
        "page": page,
    }
    if args.json:
        print(json.dumps(res, indent=1))
    else:
        _console().print(
            f"shrunk {len(trace.choices)} -> {len(small.choices)} choices, {trace.steps} -> {small.steps} steps; "
            f"still violates {esc(small.violation['property'])}\ntrace: {esc(out)}\nreplay: {esc(res['replay'])}"
            + (f"\npage: {esc(page)}" if page else "")
        )
        if not report["minimal"]:
            _console(stderr=True).print(f"[yellow]{esc(str(report['message']))}[/yellow]")
    return EXIT_INTERRUPTED if res["interrupted"] else EXIT_VIOLATION  # the best trace is saved


# ---------------------------------------------------------------------------------------- show
def cmd_show(args: argparse.Namespace) -> int:
    from treadle.study.command import show_command

    return show_command(args, _console())


# ---------------------------------------------------------------------------------------- check, prove
def cmd_check(args: argparse.Namespace) -> int:
    try:
        mod = importlib.import_module("treadle.check_cmd")
    except ModuleNotFoundError as e:
        raise TreadleError(f"the history checker is not installed: {e}") from None
    return int(mod.main(args))


def cmd_prove(args: argparse.Namespace) -> int:
    name = args.target.replace("-", "_")
    try:
        mod = importlib.import_module(f"treadle.checkers.{name}.proofs")
    except ModuleNotFoundError:
        raise TreadleError(f"nothing to prove for {args.target!r}; known: pbft, breaker") from None
    rest = list(args.rest) + (["--json"] if args.json and "--json" not in args.rest else [])
    return int(mod.run(rest))


def cmd_campaign(args: argparse.Namespace) -> int:
    from treadle.campaign_cli import cmd_campaign as run

    return run(args)


def cmd_triage(args: argparse.Namespace) -> int:
    from treadle.campaign_cli import cmd_triage as run

    return run(args)


COMMANDS = {
    "list": cmd_list,
    "explore": cmd_explore,
    "campaign": cmd_campaign,
    "triage": cmd_triage,
    "replay": cmd_replay,
    "shrink": cmd_shrink,
    "show": cmd_show,
    "check": cmd_check,
    "prove": cmd_prove,
}


if __name__ == "__main__":
    raise SystemExit(main())
