"""Benchmark: the API's main reads under load, served by ``poise serve`` as it runs.

    .venv/bin/python bench/api_load.py [--workers 1 2] [--seconds 20] [--warmup 3]
        [--connections 1 16] [--households 200] [--profile]

The demo firm (``--households`` households, seed 7: 200 make 505 accounts) is built
once — its files and a SQLite database under ``bench/out/api/<households>/``, loaded
with the same code as ``poise ingest`` — with one user of the operations role
(``bench-ops``, the whole firm in scope); each run gives it a new personal access
token (read only), as ``poise users token`` would.

For each worker count, ``poise serve --workers N`` is started as a subprocess on the
database (its JSON log on standard error, into ``bench/out/api/serve-<N>.log``), and
the load comes from this process, apart from the server's: an asyncio client (httpx)
holding a number of keep-alive connections (each of ``--connections``: 1, the time
one request takes; 16, many callers at once), each sending its next request as soon
as the last is answered (a closed loop), for ``--warmup`` seconds untimed and then
``--seconds`` timed, endpoint after endpoint. The callers start one after another
over the first half of the warm-up: opened in one burst, every connection lands on the
worker that accepts first. How many each worker then holds is shown beside the
number of connections (from ``ss``).

- ``account`` — ``GET /api/v1/accounts/{id}``, an account of the firm drawn at random
  for each request;
- ``households`` — ``GET /api/v1/households?limit=50``;
- ``accounts`` — ``GET /api/v1/accounts?limit=100``.

Timed: each request from its send to its whole body read. Figures for each endpoint
and worker count: requests a second (answered in the timed window, divided by it),
latency p50 / p95 / p99, errors (anything but a 200, and failed connections), the
server's memory — the resident set (``VmRSS``) of the ``poise serve`` process and its
worker processes, read from ``/proc`` every half second: before the load, and the
peak — and the processor time used by the server, by the client, and by every other
process on the machine (it is shared), in cores of its two.

Target: ≥ 500 requests a second on one worker for the account read, at p99 ≤ 100 ms.

The server's rate limit (``POISE_API_RATE``, 600 a minute a caller by default) is set
to a billion a minute: every request is still counted, so its cost is in the figures,
but the one user the load comes from is never refused.

``--profile``: afterwards, one worker is sampled with py-spy (``.venv/bin/pip install
py-spy``) while it serves the account read to the most connections; the folded stacks
are written to ``bench/out/api/profile-account.txt``, and the functions the samples of
threads at work fall in most (in themselves, and with what they call) are printed.

``--in-process``: afterwards, what one request costs the application itself, apart
from HTTP and whatever else the machine runs: the processor time of 1,000 requests of
each endpoint (and ``/api/v1/health``), one after another, calling the application
through ASGI in this process.

Prints Markdown rows for ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import sqlalchemy as sa

from poise.api import security
from poise.demo import generate_firm, write_firm
from poise.domain.users import Role
from poise.store import repo
from poise.store import tables as t
from poise.store.engine import make_engine
from poise.store.migrate import upgrade
from poise.workflow.ingest import ingest_paths

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "api"
POISE = Path(sys.executable).with_name("poise")
USERNAME = "bench-ops"
TARGET_RPS = 500  # the account read, on one worker
TARGET_P99 = 0.100  # seconds
# The API's rate limit, counted but never reached: one caller here asks far more often
# than the default 600 a minute lets anyone, and the figures include what counting costs.
RATE = str(10**9)
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# What each endpoint asks for: a path, given a random source and the firm's accounts.
ENDPOINTS: dict[str, Callable[[random.Random, list[str]], str]] = {
    "account": lambda rng, accounts: f"/api/v1/accounts/{rng.choice(accounts)}",
    "households": lambda rng, accounts: "/api/v1/households?limit=50",
    "accounts": lambda rng, accounts: "/api/v1/accounts?limit=100",
    # The pages, as a signed-in browser asks for them (a session cookie, not a token).
    "account-page": lambda rng, accounts: f"/accounts/{rng.choice(accounts)}",
    "firm-page": lambda rng, accounts: "/",
}
PAGES = frozenset({"account-page", "firm-page"})
PASSWORD = "load benchmark password"  # the benchmark's user, on a store of its own


# ── the firm, built once ──────────────────────────────────────────────────────


def firm_database(households: int) -> Path:
    """The demo firm's SQLite database at ``households`` households, built once."""
    folder = OUT / str(households)
    database = folder / "poise.db"
    done = folder / ".built"
    if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)
        start = time.perf_counter()
        paths = write_firm(generate_firm(households=households, seed=7), folder / "files")
        engine = make_engine(f"sqlite:///{database}")
        upgrade(engine)
        refused = [r for r in ingest_paths(engine, paths, today=date(2026, 1, 1)) if r.refused]
        if refused:
            raise SystemExit(f"the demo firm did not load: {refused}")
        engine.dispose()
        done.write_text("built\n")
        print(f"built the demo firm in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return database


def credentials(database: Path) -> tuple[str, list[str]]:
    """A new read-only personal access token of the operations user (made the first
    time), and every account of the firm."""
    engine = make_engine(f"sqlite:///{database}")
    upgrade(engine)  # a firm built by an earlier poise, brought to this one's schema
    with engine.execution_options(writes=True).begin() as connection:
        user = repo.user_by_username(connection, username=USERNAME)
        if user is None:
            user = repo.add_user(connection, username=USERNAME, role=Role.OPERATIONS,
                                 name="Load benchmark")  # fmt: skip
        # Its password set anew each run (the store is the benchmark's own): the pages
        # are signed in to with it.
        repo.set_password_hash(connection, user_id=user.user_id,
                               password_hash=security.hash_password(PASSWORD))  # fmt: skip
        token_id, secret, text = security.new_token()
        repo.add_token(
            connection, user_id=user.user_id, token_id=token_id,
            secret_hash=security.token_hash(secret), name="bench/api_load.py", scopes=["read"],
        )  # fmt: skip
        accounts = list(connection.execute(sa.select(t.accounts.c.account_id)).scalars())
    engine.dispose()
    return text, sorted(accounts)


# ── the server, as a real process ─────────────────────────────────────────────


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base: str
    workers: int

    def pids(self) -> list[int]:
        """The ``poise serve`` process and every process under it (uvicorn's workers)."""
        found, queue = [], [self.process.pid]
        while queue:
            pid = queue.pop()
            found.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*/children"):
                queue.extend(int(c) for c in task.read_text().split())
        return found

    def worker_pids(self) -> list[int]:
        """The processes that serve: uvicorn's spawned workers (its supervisor and the
        resource tracker beside them serve nothing), or the one process."""
        if self.workers == 1:
            return [self.process.pid]
        return sorted(
            p for p in self.pids() if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()
        )

    def rss(self) -> int:
        """Bytes resident, the processes together (VmRSS, as ``ps`` shows it)."""
        total = 0
        for pid in self.pids():
            try:
                lines = Path(f"/proc/{pid}/status").read_text().splitlines()
            except FileNotFoundError:
                continue
            total += sum(int(x.split()[1]) * 1024 for x in lines if x.startswith("VmRSS:"))
        return total

    def spread(self) -> str:
        """How many of the client's connections each worker holds (``ss``)."""
        port = self.base.rsplit(":", 1)[1]
        shown = subprocess.run(
            ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
            capture_output=True, text=True, check=False,
        ).stdout  # fmt: skip
        held = Counter(re.findall(r"pid=(\d+)", shown))
        return "+".join(str(held[str(pid)]) for pid in self.worker_pids())

    def cpu(self) -> float:
        """Processor seconds the processes have used (user and system)."""
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except FileNotFoundError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / TICKS


def machine_cpu() -> float:
    """Processor seconds the whole machine has spent busy (every process, all cores)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / TICKS  # less idle and iowait


def start_server(database: Path, workers: int) -> Server:
    port = free_port()
    log = (OUT / f"serve-{workers}.log").open("wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("POISE_")}
    process = subprocess.Popen(
        [str(POISE), "serve", "--port", str(port), "--workers", str(workers)],
        env={
            **env,
            "POISE_DATABASE_URL": f"sqlite:///{database}",
            "POISE_API_RATE": RATE,
            "POISE_COOKIE_SECURE": "false",
        },  # the pages' session over plain HTTP
        stdout=log,
        stderr=log,
        cwd=OUT,
    )
    server = Server(process, f"http://127.0.0.1:{port}", workers)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"poise serve exited with {process.returncode}: see {log.name}")
        try:
            ready = httpx.get(f"{server.base}/api/v1/ready", timeout=1).status_code == 200
        except httpx.TransportError:
            ready = False
        if ready and len(server.worker_pids()) == workers:
            return server
        time.sleep(0.2)
    stop_server(server)
    raise SystemExit("poise serve was not ready within 60 s")


def stop_server(server: Server) -> None:
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


# ── the load ──────────────────────────────────────────────────────────────────


@dataclass
class Figures:
    endpoint: str
    workers: int
    connections: int
    seconds: float
    latencies: list[float] = field(default_factory=list)  # of the timed 200s
    errors: Counter[str] = field(default_factory=Counter)
    rss_before: int = 0
    rss_peak: int = 0
    spread: str = ""  # the connections each worker holds, as the timing starts
    server_cores: float = 0.0
    client_cores: float = 0.0
    other_cores: float = 0.0  # every other process on the machine: it is shared

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")

    def met(self) -> str:
        if self.endpoint != "account" or self.workers != 1:
            return ""
        ok = self.rps >= TARGET_RPS and self.quantile(0.99) <= TARGET_P99
        return f"≥ {TARGET_RPS}/s at p99 ≤ {TARGET_P99 * 1000:.0f} ms {'✓' if ok else '✗'}"

    def row(self, day: str) -> str:
        ms = [f"{self.quantile(q) * 1000:.1f}" for q in (0.50, 0.95, 0.99)]
        errors = sum(self.errors.values())
        shown = f"{errors:,}" + (f" ({dict(self.errors)})" if errors else "")
        mib = 1024 * 1024
        return (
            f"| {day} | {self.workers} | {self.endpoint} | {self.connections} "
            f"({self.spread}) | "
            f"{self.rps:,.0f} | {' | '.join(ms)} | {shown} | "
            f"{self.rss_before / mib:.0f} → {self.rss_peak / mib:.0f} | "
            f"{self.server_cores:.2f} / {self.client_cores:.2f} / {self.other_cores:.2f} | "
            f"{self.met()} |"
        )


async def load(
    server: Server, endpoint: str, token: str, accounts: list[str], *,
    connections: int, warmup: float, seconds: float,
) -> Figures:  # fmt: skip
    figures = Figures(endpoint, server.workers, connections, seconds)
    figures.rss_before = figures.rss_peak = server.rss()
    path_of = ENDPOINTS[endpoint]
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"Authorization": f"Bearer {token}"}
    loop = asyncio.get_running_loop()
    began = loop.time()
    timed_from, until = began + warmup, began + warmup + seconds
    cpu: dict[str, tuple[float, float, float]] = {}

    async def client(number: int, http: httpx.AsyncClient) -> None:
        rng = random.Random(number)
        # Callers arrive one after another, as they would: a burst of new connections
        # all lands on whichever worker accepts first (uvicorn's workers share one
        # listening socket), leaving the other idle.
        await asyncio.sleep(number * warmup / 2 / connections)
        while (sent := loop.time()) < until:
            try:
                answer = await http.get(path_of(rng, accounts))
                await answer.aread()
                outcome = "ok" if answer.status_code == 200 else str(answer.status_code)
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
            done = loop.time()
            if sent >= timed_from and done <= until:
                if outcome == "ok":
                    figures.latencies.append(done - sent)
                else:
                    figures.errors[outcome] += 1

    async def watch() -> None:
        await asyncio.sleep(max(0.0, timed_from - loop.time()))
        cpu["from"] = (server.cpu(), time.process_time(), machine_cpu())
        figures.spread = server.spread()
        while loop.time() < until:
            figures.rss_peak = max(figures.rss_peak, server.rss())
            await asyncio.sleep(min(0.5, max(0.0, until - loop.time())))
        cpu["to"] = (server.cpu(), time.process_time(), machine_cpu())

    async with httpx.AsyncClient(base_url=server.base, headers=headers, limits=limits,
                                 timeout=30) as http:  # fmt: skip
        if endpoint in PAGES:
            await sign_in(http)
        await asyncio.gather(watch(), *(client(n, http) for n in range(connections)))
    figures.server_cores = (cpu["to"][0] - cpu["from"][0]) / seconds
    figures.client_cores = (cpu["to"][1] - cpu["from"][1]) / seconds
    machine = (cpu["to"][2] - cpu["from"][2]) / seconds
    figures.other_cores = max(0.0, machine - figures.server_cores - figures.client_cores)
    return figures


async def sign_in(http: httpx.AsyncClient) -> None:
    """Sign the client in to the pages as a browser does: the form, its security token,
    the session cookie it answers with (kept by the client for every page after)."""
    form = await http.get("/sign-in")
    found = re.search(r'name="csrf" value="([^"]+)"', form.text)
    if found is None:
        raise SystemExit("the sign-in page has no security token")
    done = await http.post("/sign-in", data={"username": USERNAME, "password": PASSWORD,
                                             "csrf": found.group(1), "next": "/"})  # fmt: skip
    if done.status_code != 303:
        raise SystemExit(f"could not sign in to the pages: {done.status_code} {done.text[:200]}")


# ── where the time goes ───────────────────────────────────────────────────────


def in_process(database: Path, token: str, accounts: list[str], requests: int = 1000) -> None:
    """What one request costs the application itself, whatever else the machine runs:
    processor time a request, the application called in this process through ASGI (no
    HTTP, no sockets, no uvicorn), one request after another, as ``poise serve``
    makes it (its JSON log on standard error, here thrown away)."""
    os.environ["POISE_DATABASE_URL"] = f"sqlite:///{database}"
    os.environ["POISE_API_RATE"] = RATE
    from poise.api.app import create_app  # noqa: PLC0415 - its store comes from the variable
    from poise.api.logs import configure  # noqa: PLC0415

    configure("info")
    for handler in logging.getLogger("poise").handlers:
        handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - for the process's life
    app = create_app()
    headers = [(b"host", b"bench"), (b"authorization", f"Bearer {token}".encode())]

    async def call(target: str) -> None:
        path, _, query = target.partition("?")
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
                 "query_string": query.encode(), "root_path": "", "headers": headers,
                 "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "state": {}}  # fmt: skip
        statuses: list[int] = []

        async def receive() -> dict[str, object]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(int(str(message["status"])))

        await app(scope, receive, send)
        assert statuses == [200], (target, statuses)

    async def run() -> None:
        async with app.router.lifespan_context(app):
            for endpoint, path_of in {"health": lambda r, a: "/api/v1/health",
                                      **ENDPOINTS}.items():  # fmt: skip
                rng = random.Random(0)
                for _ in range(50):
                    await call(path_of(rng, accounts))
                cpu, wall = time.process_time(), time.perf_counter()
                for _ in range(requests):
                    await call(path_of(rng, accounts))
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                print(f"  {endpoint:<10} {cpu / requests * 1000:5.2f} ms of processor a request"
                      f" ({wall / requests * 1000:5.2f} ms wall)")  # fmt: skip

    print(f"\nin process, {requests:,} requests each, one after another:")
    asyncio.run(run())


def profile(database: Path, token: str, accounts: list[str], args: argparse.Namespace) -> None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    server = start_server(database, 1)
    folded = OUT / "profile-account.txt"
    try:
        spying = subprocess.Popen(
            [spy, "record", "--pid", str(server.process.pid), "--format", "raw", "--rate", "100",
             "--nonblocking", "--duration", str(int(args.seconds + args.warmup)),
             "--output", str(folded)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        figures = asyncio.run(load(server, "account", token, accounts,
                                   connections=max(args.connections), warmup=args.warmup,
                                   seconds=args.seconds))  # fmt: skip
        spying.wait(timeout=60)
    finally:
        stop_server(server)
    print(f"\nprofiled (py-spy, 100 Hz; the load {figures.rps:,.0f}/s under it): {folded}")
    summarise(folded)


WAITING = ("Condition.wait", "EpollSelector.select", "Event.wait", "_wait_for_tstate_lock")
WATCHED = (  # beside poise's own functions: where a request's time goes in the frameworks
    "DefaultDialect.do_execute", "DefaultDialect.connect", "run_sync_in_worker_thread",
    "Queue.put", "solve_dependencies", "H11Protocol.data_received", "RequestResponseCycle.send",
    "Logger._log", "SessionMiddleware.__call__", "BaseModel.model_dump_json",
)  # fmt: skip


def summarise(folded: Path, top: int = 20) -> None:
    """The samples of threads at work (not waiting for work): the functions they were
    in, and — for poise's own functions and a few of the frameworks' — the share of
    the samples under each."""
    own: Counter[str] = Counter()
    within: Counter[str] = Counter()
    working = waiting = 0
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [_frame(f) for f in stack.split(";")]
        if frames[-1].startswith(WAITING):
            waiting += int(count)
            continue
        working += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            within[frame] += int(count)
    print(f"{working + waiting:,} samples; {working:,} of threads at work. In the function itself:")
    for frame, n in own.most_common(top):
        print(f"  {100 * n / working:5.1f}%  {frame}")
    print("With what it calls:")
    for frame, n in within.most_common():
        if "poise/" in frame or frame.startswith(WATCHED):
            print(f"  {100 * n / working:5.1f}%  {frame}")


def _frame(text: str) -> str:
    """``name (path/file.py:line)`` as ``name (path/file.py)``."""
    name, _, where = text.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0].removesuffix(')')})"


# ── the run ───────────────────────────────────────────────────────────────────


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2])  # none: no server
    parser.add_argument(
        "--endpoints", nargs="+", choices=sorted(ENDPOINTS), default=list(ENDPOINTS)
    )
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--households", type=int, default=200)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--in-process", action="store_true")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    database = firm_database(args.households)
    token, accounts = credentials(database)
    # The client's own garbage collection is not the server's latency: a full pass over
    # everything this process imported held every answer in flight up by 35–45 ms, twice
    # in twenty seconds. Out of its passes, as the server's are (poise.api.app.serve_app).
    gc.collect()
    gc.freeze()
    day = datetime.now(UTC).date().isoformat()
    rows = []
    for workers in args.workers:
        server = start_server(database, workers)
        try:
            for endpoint in args.endpoints:
                for connections in args.connections:
                    figures = asyncio.run(load(server, endpoint, token, accounts,
                                               connections=connections, warmup=args.warmup,
                                               seconds=args.seconds))  # fmt: skip
                    rows.append(figures.row(day))
                    print(rows[-1], flush=True)
        finally:
            stop_server(server)
    print(f"\n{len(accounts):,} accounts; {args.seconds:g} s timed after {args.warmup:g} s\n")
    print("| date | workers | endpoint | connections (a worker) | req/s | p50 ms | p95 ms "
          "| p99 ms | errors | server RSS MiB (idle → peak) | cores: server / client / others "
          "| target |")  # fmt: skip
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    print("\n".join(rows))
    if args.in_process:
        in_process(database, token, accounts)
    if args.profile:
        profile(database, token, accounts, args)


if __name__ == "__main__":
    main()
