"""``treadle campaign`` and ``treadle triage``: their arguments and reports."""

from __future__ import annotations

import argparse
import json
from typing import Any

from treadle.budgets import arg_positive_int, arg_positive_seconds
from treadle.seeds import DEFAULT_DB
from treadle.workdir import DEFAULT_TRACES

EXIT = {"ok": 0, "violation": 1, "unknown": 3, "interrupted": 130}


def add_parsers(sub: Any, add_worker_args: Any) -> None:
    s = sub.add_parser(
        "campaign",
        help="run swarm configurations for a while; record every failure in the seed database",
    )
    s.add_argument("system")
    s.add_argument("--bug", help="switch on a seeded bug (see treadle list)")
    s.add_argument(
        "--time", type=arg_positive_seconds, help="wall-time budget in seconds (default 60)"
    )
    s.add_argument("--runs", type=arg_positive_int, help="number of runs instead of a time")
    s.add_argument(
        "--seed",
        type=int,
        help="first seed (default: where the last campaign of this system and bug stopped)",
    )
    s.add_argument("--steps", type=arg_positive_int, help="steps per run (default: the system's)")
    s.add_argument(
        "--config", action="append", metavar="KEY=VALUE", help="override a config key (repeatable)"
    )
    s.add_argument("--db", default=DEFAULT_DB, help=f"the seed database (default {DEFAULT_DB})")
    s.add_argument(
        "--out", default=DEFAULT_TRACES, help=f"where traces are saved (default {DEFAULT_TRACES}/)"
    )
    add_worker_args(s)
    s.add_argument("--json", action="store_true")

    s = sub.add_parser(
        "triage",
        help="re-run the seed database's failing seeds: still failing, fixed, regressed, new",
    )
    s.add_argument("--system", help="only this system's failures")
    s.add_argument("--db", default=DEFAULT_DB, help=f"the seed database (default {DEFAULT_DB})")
    s.add_argument("--json", action="store_true")


def cmd_campaign(args: argparse.Namespace) -> int:
    from treadle.campaign import campaign
    from treadle.cli import _console, esc
    from treadle.parallel import choose_workers, cli_executor
    from treadle.system import get_system, parse_config_args

    system = get_system(args.system)
    system.check_bug(args.bug)
    config = parse_config_args(args.config)
    err = _console(stderr=True)

    def progress(runs: int, events: int, failing: int, elapsed: float) -> None:
        if not args.json and err.is_terminal and runs % 50 == 0:
            err.print(
                f"[dim]{runs} runs, {events} events, {failing} failing, {elapsed:.0f} s[/dim]"
            )

    asked = choose_workers(args.workers, system, args.runs) if args.executor == "process" else None
    with cli_executor(asked, args.executor, args.dask_address) as (workers, executor):
        r = campaign(
            system,
            bug=args.bug,
            time=args.time,
            runs=args.runs,
            seed=args.seed,
            steps=args.steps,
            config=config,
            workers=workers,
            executor=executor,
            db=args.db,
            out=args.out,
            progress=progress,
        )
    if args.json:
        print(json.dumps(r.to_json(), indent=1))
        return EXIT[r.verdict]
    con = _console()
    seeds = f"seeds {r.seeds[0]}..{r.seeds[1]}" if r.seeds else "no seeds"
    con.print(
        f"[bold]campaign[/bold] {esc(r.system)}{f' --bug {esc(r.bug)}' if r.bug else ''}: "
        f"{r.runs} runs ({seeds}), {r.events} events, {r.elapsed_s:.1f} s"
        + (" [yellow](interrupted)[/yellow]" if r.interrupted else "")
    )
    faults = ", ".join(f"{k} {v}" for k, v in r.faults.items()) or "none"
    con.print(f"  faults injected: {esc(faults)}")
    cov = ", ".join(f"{k} ({v} runs)" for k, v in r.coverage.items()) or "none"
    con.print(f"  protocol events seen: {esc(cov)}")
    some = r.sometimes or {}
    if some.get("reached") or some.get("never_reached"):
        never = some.get("never_reached") or []
        con.print(
            f"  sometimes-assertions: {len(some.get('reached') or {})} reached, "
            + (
                f"[yellow]{len(never)} never reached[/yellow]: {esc(', '.join(never))}"
                if never
                else "none never reached"
            )
        )
    if not r.failures:
        style = "green" if r.verdict == "ok" else "yellow"
        con.print(
            f"[{style}]{r.verdict}: no failure[/{style}]" + (f" ({esc(r.note)})" if r.note else "")
        )
    else:
        con.print(f"[bold red]{r.failing_runs} failing runs[/bold red], by signature:")
        for g in r.failures:
            tag = {"new": "[red]new[/red]", "regressed": "[red]regressed[/red]"}.get(
                g.status, g.status
            )
            shown = ", ".join(map(str, g.seeds)) + (", ..." if g.runs > len(g.seeds) else "")
            con.print(f"  {tag} {esc(g.summary)}: {g.runs} runs (seeds {shown})")
            if g.trace:
                con.print(f"      trace: {esc(g.trace)}   replay: treadle replay {esc(g.trace)}")
    con.print(f"  seed database: {esc(r.db)} (treadle triage re-runs its seeds)")
    return EXIT[r.verdict]


def cmd_triage(args: argparse.Namespace) -> int:
    from treadle.campaign import triage
    from treadle.cli import _console, esc

    r = triage(args.db, system=args.system)
    if args.json:
        print(json.dumps(r.to_json(), indent=1))
        return EXIT[r.verdict]
    con = _console()
    style = {"still failing": "red", "regressed": "bold red", "new": "bold red", "fixed": "green"}
    for it in r.items:
        st = style.get(it.status, "yellow")
        seeds = ", ".join(map(str, it.failing_seeds or it.seeds))
        con.print(
            f"[{st}]{it.status}[/{st}] {esc(it.system)}: {esc(it.summary)} (seeds {esc(seeds)})"
            + (f" - {esc(it.note)}" if it.note else "")
        )
    counts = ", ".join(f"{v} {k}" for k, v in r.counts().items()) or "nothing to triage"
    con.print(
        f"{counts}; {r.runs} runs in {r.elapsed_s:.1f} s" + (f" ({esc(r.note)})" if r.note else "")
    )
    return EXIT[r.verdict]
