#!/usr/bin/env python3
"""Fuzzes Draftr's GraphQL API with schemathesis, through the router and on each subgraph's own port.

Starts `draftr run` (the debug binary) on a fresh data directory and free ports, signs a fuzz
user up and in through the router (and the demo admin in), books one stay so real reservation
and payment ids exist, then runs `st run` in GraphQL mode against:

  - the router, anonymously, as the fuzz user, and as the demo admin;
  - each subgraph's own endpoint (auth, catalog, reservations, payments, notifications),
    anonymously and as the fuzz user, including the federation fields `_entities` and
    `_service` that only the router should call but anyone who reaches the port can.

Every run is bounded by `--examples` test cases per operation. The run fails (exit 1) on any
HTTP 5xx, any GraphQL error whose `extensions.code` is INTERNAL_SERVER_ERROR (or a router
SUBREQUEST_* code), any `panicked at` in the server's log, a fuzzer error, or a server that
died. It prints one line per `st run` and a summary: operations covered, examples run,
failures (with the request, the response and the server's log lines for it).

  tests/fuzz/run.sh                      # what scripts/test runs (a few examples per operation)
  tests/fuzz/run.sh --examples 200       # a longer run by hand
  tests/fuzz/run.sh --targets router --auth admin --examples 50 --seed 1

Run it through tests/fuzz/run.sh, which installs the pinned schemathesis first, or with the
Python of that virtualenv.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from datetime import date, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUBGRAPHS = ["auth", "catalog", "reservations", "payments", "notifications"]
TARGETS = ["router", *SUBGRAPHS]
AUTHS = ["anonymous", "user", "admin"]
# The demo admin (src/demo.rs); `draftr run` creates it on a fresh data directory.
DEMO_ADMIN = ("admin@draftr.test", "correct-horse-ada")
# `logout` with the run's token would sign the rest of the run out: fuzzed anonymously in the
# main runs, and once with a token at the very end.
SESSION_ENDING = ["Mutation.logout"]


def free_ports(names) -> dict:
    """Distinct free ports: all held open while they are chosen, so none comes out twice."""
    sockets = []
    try:
        for _ in names:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return {name: s.getsockname()[1] for name, s in zip(names, sockets)}
    finally:
        for s in sockets:
            s.close()


def post(url: str, query: str, variables: dict | None = None, token: str | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            return json.loads(res.read())
    except urllib.error.HTTPError as err:
        return json.loads(err.read() or b"{}")


def data_of(reply: dict, what: str) -> dict:
    if reply.get("errors") or not reply.get("data"):
        raise RuntimeError(f"{what} failed: {json.dumps(reply)[:800]}")
    return reply["data"]


class Draftr:
    """`draftr run` on free ports, its stdout and stderr in one log file."""

    def __init__(self, binary: Path, workdir: Path, log: Path, access_ttl: int):
        self.ports = free_ports(TARGETS)
        self.log = log
        data_dir = workdir / "data"
        args = [str(binary), "run", "--data-dir", str(data_dir), "--listen", f"127.0.0.1:{self.ports['router']}"]
        for name in SUBGRAPHS:
            args += [f"--{name}-listen", f"127.0.0.1:{self.ports[name]}"]
        env = {
            **os.environ,
            "NO_COLOR": "1",
            # One token for the whole run, however long it is.
            "DRAFTR_AUTH__TOKENS__ACCESS_TTL_SECS": str(access_ttl),
        }
        self._log_file = open(log, "wb")
        self.proc = subprocess.Popen(
            args, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=subprocess.STDOUT
        )

    def url(self, target: str) -> str:
        return f"http://127.0.0.1:{self.ports[target]}/"

    def wait_ready(self, timeout: float = 120) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"draftr exited with {self.proc.returncode}; see {self.log}")
            if b"Draftr is ready" in self.log.read_bytes():
                try:
                    with urllib.request.urlopen(f"{self.url('router')}health", timeout=2) as res:
                        if res.status == 200:
                            return
                except OSError:
                    pass
            time.sleep(0.2)
        raise RuntimeError(f"draftr was not ready after {timeout:.0f} s; see {self.log}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_file.close()


def sign_in(router: str) -> dict:
    """Registers a fuzz user and signs them in through the router; signs the demo admin in."""
    email = f"fuzz-{uuid.uuid4().hex[:12]}@example.com"
    password = "fuzzing is a horse battery"
    register = "mutation($i: RegisterInput!) { register(input: $i) { accessToken user { id } } }"
    user_id = data_of(
        post(router, register, {"i": {"email": email, "password": password, "displayName": "Fuzz"}}), "register"
    )["register"]["user"]["id"]
    login = "mutation($i: LoginInput!) { login(input: $i) { accessToken } }"
    token = data_of(post(router, login, {"i": {"email": email, "password": password}}), "login")["login"]["accessToken"]
    me = data_of(post(router, "{ me { id email } }", token=token), "me")["me"]
    if not me or me["id"] != user_id:
        raise RuntimeError(f"the fuzz user's token does not sign them in: {me}")
    admin = data_of(
        post(router, login, {"i": {"email": DEMO_ADMIN[0], "password": DEMO_ADMIN[1]}}), "admin login"
    )["login"]["accessToken"]
    return {"user": token, "admin": admin, "user_id": user_id}


def seed_ids(router: str, tokens: dict) -> list[str]:
    """Ids that exist, for the fuzzer to mix into its `ID` arguments: listings, hosts,
    categories, users, and one reservation and its payment (the fuzz user books a stay)."""
    ids: set[str] = {tokens["user_id"]}
    listings: list[str] = []
    props = data_of(
        post(router, "{ properties(first: 50) { nodes { id maxGuests host { id } } } categories { id } }"), "properties"
    )
    for p in props["properties"]["nodes"]:
        ids.update([p["id"], p["host"]["id"]])
        listings.append(p["id"])
    ids.update(c["id"] for c in props["categories"])
    users = data_of(post(router, "{ users(first: 50) { nodes { id } } }", token=tokens["admin"]), "users")
    ids.update(u["id"] for u in users["users"]["nodes"])
    if props["properties"]["nodes"]:
        prop = props["properties"]["nodes"][0]
        start = date.today() + timedelta(days=60)
        book = (
            "mutation($i: CreateReservationInput!) { createReservation(input: $i) { id payment { id } } }"
        )
        variables = {
            "i": {
                "propertyId": prop["id"],
                "checkIn": str(start),
                "checkOut": str(start + timedelta(days=2)),
                "guests": 1,
                "paymentMethod": "pm_card_visa",
                "idempotencyKey": str(uuid.uuid4()),
            }
        }
        reply = post(router, book, variables, token=tokens["user"])
        booked = (reply.get("data") or {}).get("createReservation")
        if booked:
            ids.add(booked["id"])
            if booked.get("payment"):
                ids.add(booked["payment"]["id"])
        else:
            print(f"fuzz: note: the seed booking failed: {json.dumps(reply)[:400]}", file=sys.stderr)
    # Listings twice more: most operations that take an id (quote, book, update) want one.
    return sorted(ids) + listings * 2


def st_run(
    args, draftr: Draftr, target: str, auth: str, token: str | None, ids: list[str], log_dir: Path, extra: list[str]
) -> dict:
    session_ending = any(x.startswith("--include-name=") for x in extra)
    name = f"{target}-{auth}" + ("-logout" if session_ending else "")
    report = log_dir / f"st-{name}.json"
    failures = log_dir / "failures.jsonl"
    cmd = [
        str(args.st),
        "--config-file",
        str(HERE / "schemathesis.toml"),
        "run",
        draftr.url(target),
        "--checks",
        "draftr_no_server_error",
        "--max-examples",
        str(args.examples),
        "--workers",
        str(args.workers),
        "--phases",
        args.phases,
        "--generation-database",
        "none",
        "--request-timeout",
        "40",
        "--no-color",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        # Federation fields (`_entities`, `_service`) are skipped unless named explicitly.
        *([] if session_ending else ["--include-name-regex", r"^(Query|Mutation)\."]),
        *extra,
    ]
    if args.seed is not None:
        cmd += ["--seed", str(args.seed)]
    if token:
        cmd += ["--header", f"Authorization: Bearer {token}"]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": str(HERE / "hooks.py"),
        "DRAFTR_FUZZ_TARGET": f"{target} ({auth})",
        "DRAFTR_FUZZ_FAILURES": str(failures),
        "DRAFTR_FUZZ_IDS": json.dumps(ids),
        "NO_COLOR": "1",
        "PYTHONDONTWRITEBYTECODE": "1",  # no __pycache__ beside hooks.py in the clone
    }
    started = time.monotonic()
    with open(log_dir / f"st-{name}.log", "wb") as out:
        code = subprocess.call(cmd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    elapsed = time.monotonic() - started
    result = {"name": name, "exit": code, "seconds": elapsed, "tested": 0, "cases": 0, "failures": 0, "errors": 0}
    try:
        doc = json.loads(report.read_text())
    except (OSError, ValueError):
        result["errors"] = 1
        result["error_titles"] = ["no report (see the log)"]
        return result
    ops = doc.get("operations") or {}
    cases = doc.get("test_cases") or {}
    result.update(
        tested=ops.get("tested", 0),
        selected=ops.get("selected", 0),
        cases=cases.get("generated", 0),
        failures=sum(f.get("count", 0) for f in doc.get("failures") or []),
        unique_failures=cases.get("unique_failures", 0),
        errors=sum(e.get("count", 0) for e in doc.get("errors") or []),
        error_titles=[e.get("title") for e in doc.get("errors") or []],
        failure_groups=doc.get("failures") or [],
    )
    return result


def plan(args) -> list[tuple[str, str, list[str]]]:
    """(target, auth, extra st options) for every run."""
    runs = []
    keep_session = [f"--exclude-name={op}" for op in SESSION_ENDING]
    for target in args.targets:
        for auth in args.auth:
            if auth != "admin":
                runs.append((target, auth, [] if auth == "anonymous" else keep_session))
    # The admin last: it may delete the listings the other runs aim at. Through the router only:
    # a subgraph runs the same resolvers for an admin.
    if "admin" in args.auth and "router" in args.targets:
        runs.append(("router", "admin", keep_session))
    # Each session-ending operation, once with a token, after everything else, where it exists.
    if "user" in args.auth:
        for target in args.targets:
            if target in ("router", "auth"):
                runs.append((target, "user", [f"--include-name={op}" for op in SESSION_ENDING]))
    return runs


def server_log_for(log: str, request_id: str | None) -> list[str]:
    if not request_id:
        return []
    return [line for line in log.splitlines() if request_id in line and re.search(r"ERROR|WARN|panick", line)][:8]


def main() -> int:
    target_dir = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/draftr/target"))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=15, help="test cases per operation and run (default 15)")
    parser.add_argument(
        "--draftr", type=Path, default=Path(os.environ.get("DRAFTR_BIN", target_dir / "debug/draftr")), help="binary"
    )
    parser.add_argument("--targets", default=",".join(TARGETS), help=f"comma-separated, of {','.join(TARGETS)}")
    parser.add_argument("--auth", default=",".join(AUTHS), help=f"comma-separated, of {','.join(AUTHS)}")
    parser.add_argument("--workers", type=int, default=2, help="schemathesis workers per run (default 2)")
    parser.add_argument(
        "--phases", default="examples,coverage,fuzzing,stateful", help="schemathesis phases (default all)"
    )
    parser.add_argument("--seed", type=int, help="schemathesis seed, to repeat a run")
    parser.add_argument("--log-dir", type=Path, help="where logs and reports go (default: a new temp directory)")
    parser.add_argument(
        "--st", type=Path, default=Path(sys.executable).parent / "st", help="schemathesis CLI (default: beside python)"
    )
    args = parser.parse_args()
    args.targets = [t for t in args.targets.split(",") if t]
    args.auth = [a for a in args.auth.split(",") if a]
    for t in args.targets:
        if t not in TARGETS:
            parser.error(f"unknown target {t!r}")
    for a in args.auth:
        if a not in AUTHS:
            parser.error(f"unknown --auth {a!r}")
    if not args.draftr.exists():
        parser.error(f"no draftr binary at {args.draftr} (build it, or pass --draftr / set DRAFTR_BIN)")
    if not args.st.exists():
        parser.error(f"no schemathesis CLI at {args.st} (run tests/fuzz/run.sh, which installs it)")

    # Stopped from outside (CI's timeout, `kill`): still stop draftr and report.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    started = time.monotonic()
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="draftr-fuzz-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    (log_dir / "failures.jsonl").unlink(missing_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="draftr-fuzz-run-"))
    print(f"fuzz: logs and reports in {log_dir}", flush=True)

    draftr = Draftr(args.draftr, workdir, log_dir / "draftr.log", access_ttl=24 * 3600)
    results = []
    problems: list[str] = []
    try:
        draftr.wait_ready()
        router = draftr.url("router")
        tokens = sign_in(router)
        ids = seed_ids(router, tokens)
        print(
            f"fuzz: draftr ready (router {router}, subgraphs "
            + ", ".join(f"{n} :{draftr.ports[n]}" for n in SUBGRAPHS)
            + f"); fuzz user {tokens['user_id']}, {len(set(ids))} known ids; {args.examples} examples per operation",
            flush=True,
        )
        for target, auth, extra in plan(args):
            if not draftr.alive():
                problems.append(f"draftr died (exit {draftr.proc.returncode}) before the {target} ({auth}) run")
                break
            token = None if auth == "anonymous" else tokens[auth]
            r = st_run(args, draftr, target, auth, token, ids, log_dir, extra)
            results.append(r)
            print(
                f"fuzz: {r['name']:<26} {r['tested']:>3} operations {r['cases']:>6} examples "
                f"{r['failures']:>3} failures {r['errors']:>3} errors  {r['seconds']:6.1f} s"
                + ("" if r["exit"] == 0 else f"  (st exit {r['exit']}; see st-{r['name']}.log)"),
                flush=True,
            )
            if r["errors"]:
                problems.append(f"{r['name']}: schemathesis errors: {', '.join(map(str, r['error_titles']))}")
            elif r["exit"] != 0 and not r["failures"]:
                problems.append(f"{r['name']}: st exited {r['exit']} (see st-{r['name']}.log)")
        if not draftr.alive():
            problems.append(f"draftr died during the fuzzing (exit {draftr.proc.returncode})")
    except KeyboardInterrupt:
        problems.append("interrupted")
    except Exception as err:  # noqa: BLE001 - reported, and the run fails
        problems.append(f"setup failed: {err}")
    finally:
        draftr.stop()

    log = (log_dir / "draftr.log").read_text(errors="replace")
    panics = [line for line in log.splitlines() if "panicked at" in line]
    failures = []
    seen = set()
    if (log_dir / "failures.jsonl").exists():
        for line in (log_dir / "failures.jsonl").read_text().splitlines():
            f = json.loads(line)
            key = (f["target"], f["operation"], f["reason"])
            if key not in seen:
                seen.add(key)
                failures.append(f)

    ops = sum(r["tested"] for r in results if not r["name"].endswith("-logout"))
    ops_logout = sum(r["tested"] for r in results if r["name"].endswith("-logout"))
    cases = sum(r["cases"] for r in results)
    failing_cases = sum(r["failures"] for r in results)
    print()
    print(
        f"fuzz summary: {len(results)} runs over {len(args.targets)} endpoints; "
        f"{ops} operations covered (+{ops_logout} session-ending), {cases} examples run, "
        f"{failing_cases} failing examples ({len(failures)} distinct), {len(panics)} panics; "
        f"{time.monotonic() - started:.0f} s"
    )
    for f in failures:
        print(f"\nFAILURE {f['target']} {f['operation']}: {f['reason']}")
        print(f"  request:  {f['request']}")
        print(f"  response: HTTP {f['status']} {f['response'][:1500]}")
        for line in server_log_for(log, f.get("request_id")):
            print(f"  server:   {line[:600]}")
    for p in panics[:20]:
        print(f"PANIC {p}")
    for p in problems:
        print(f"PROBLEM {p}")
    for r in results:
        for g in r.get("failure_groups") or []:
            if not failures:
                print(f"FAILURE {r['name']}: {g.get('title')} x{g.get('count')} in {g.get('operations')}")
    ok = not failures and not panics and not problems and failing_cases == 0
    shutil.rmtree(workdir, ignore_errors=True)
    if ok and args.log_dir is None:
        shutil.rmtree(log_dir, ignore_errors=True)
        print("\nfuzz: passed (logs removed; --log-dir keeps them)")
    else:
        print(f"\nfuzz: {'passed' if ok else 'FAILED'} (logs in {log_dir})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
