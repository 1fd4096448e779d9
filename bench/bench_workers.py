"""Sources refreshed per minute by one worker and by two (``NEWSBOT_JOBS=queue``).

``--hosts`` local sites (on loopback addresses 127.0.1.1, 127.0.1.2, ...: as many hosts to the
per-host politeness limit) serve ``--feeds`` feeds in all, of ``--stories`` made-up stories
each; each page answers after ``--delay`` seconds, as a distant site would. For each worker
count, a fresh schema on the PostgreSQL server gets the feeds as sources, the workers are
started as real ``newsbot worker`` processes, and the clock runs from the moment they are all
ready until every source has been refreshed (stored and embedded). Reports the rate, the
ratio of the two, and the workers' CPU seconds (comparable when the machine is loaded).

    NEWSBOT_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        .venv/bin/python -m bench.bench_workers [--feeds 200] [--stories 2] [--delay 0.05]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from ingest.db import open_engine, session_scope
from ingest.models import GLOBAL_GUILD, Source
from ingest.sources import add_source
from tests.bot.news_site import NewsSite, Story, news_site
from tests.bot.test_worker import queue_settings, worker_process
from tests.conftest import postgres_schema_url


def stories(feed: int, count: int) -> list[Story]:
    return [
        Story(
            f"s{i}",
            f"Feed {feed} reports item {i}",
            (
                f"The council of district {feed} approved plan number {i} on Tuesday, with"
                f" {feed * 10 + i} votes in favour and a budget of {i + 2} million crowns.",
                "Work on the plan will start in the spring and last about two years, the"
                " council's planning officer told reporters after the meeting.",
            ),
        )
        for i in range(count)
    ]


def refreshed(engine: object) -> int:
    with session_scope(engine) as session:  # type: ignore[arg-type]
        return (
            session.scalar(
                select(func.count()).select_from(Source).where(Source.last_success_at.is_not(None))
            )
            or 0
        )


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(sites: list[NewsSite], workers: int, folder: Path) -> tuple[float, float]:
    """Seconds the workers take to refresh every feed of ``sites``, and the CPU seconds they
    spend doing it (all workers together)."""
    with postgres_schema_url() as url:
        engine = open_engine(url)
        with session_scope(engine) as session:
            for site in sites:
                for name in site.feeds:
                    add_source(session, site.url(site.feed_path(name)), name, GLOBAL_GUILD)
        settings = queue_settings(url, sites[0]) | {
            "NEWSBOT_LOG_LEVEL": "WARNING",
            "NEWSBOT_FETCH_ALLOW_HOSTS": ",".join(site.host_port for site in sites),
        }
        total = sum(len(site.feeds) for site in sites)
        with contextlib.ExitStack() as stack:
            logs, pids = [], []
            for number in range(workers):
                place = folder / f"{workers}-{number}"
                process = stack.enter_context(
                    worker_process(settings | {"NEWSBOT_LOG_LEVEL": "INFO"}, place)
                )
                logs.append(place / "worker.log")
                pids.append(process.pid)
            while not all(log.is_file() and "worker ready" in log.read_text() for log in logs):
                time.sleep(0.2)
            cpu_before = sum(cpu_seconds(pid) for pid in pids)
            started = time.perf_counter()
            while refreshed(engine) < total:
                time.sleep(0.2)
            seconds = time.perf_counter() - started
            cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
        engine.dispose()
    return seconds, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--stories", type=int, default=2)
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--hosts", type=int, default=20)
    args = parser.parse_args()
    if not os.environ.get("NEWSBOT_TEST_POSTGRES_URL"):
        raise SystemExit("set NEWSBOT_TEST_POSTGRES_URL to a PostgreSQL database to bench in")
    rates = {}
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as folder:
        sites = []
        for host in range(args.hosts):
            feeds = {
                f"feed{n}": stories(n, args.stories) for n in range(host, args.feeds, args.hosts)
            }
            site = stack.enter_context(news_site(f"127.0.1.{host + 1}", **feeds))
            site.delay = args.delay
            sites.append(site)
        for workers in (1, 2):
            seconds, cpu = run(sites, workers, Path(folder))
            rates[workers] = args.feeds / seconds * 60
            print(
                f"{workers} worker(s): {args.feeds} sources in {seconds:.1f} s,"
                f" {rates[workers]:.0f} sources/min; workers' CPU {cpu:.1f} s"
                f" ({cpu / args.feeds * 1000:.0f} ms per source); load average"
                f" {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    print(f"two workers / one: {rates[2] / rates[1]:.2f}x")


if __name__ == "__main__":
    main()
