"""Alert latency through the real scheduler, and the memory of the whole local stack.

Starts Airflow (``airflow standalone``, LocalExecutor, a 1-minute ingest cron), the sample feed
server and an SMTP server in this process, and uses the Elasticsearch node of the test harness
with a private index prefix. Items are released on the feed one at a time; for every item that
leads to an alert, the latency is the time from its release to the arrival of its first email
(the .eml file name carries the arrival time in ns). Meanwhile the resident memory of every
process of the stack (Airflow's tree, found by its AIRFLOW_HOME; the Elasticsearch node; this
process, which hosts the feed and SMTP servers) is sampled and summed.

Baseline, measured in the same run after Airflow is stopped: the same path with the pipeline
functions called directly in this process (ingest, classify, claims, alerts) for one item, cold
(model load included) and warm. The ratio scheduler/direct shows what scheduling costs.

Targets: p50 <= 90 s, max <= 180 s, stack RSS < 4 GB.

Run (the harness's Elasticsearch must be up, e.g. `make bench` or `newswatch stack up`):
    NEWSWATCH_ES_URL=http://127.0.0.1:9250 .venv/bin/python benchmarks/bench_latency.py [--items 12]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.demo import load_sample  # noqa: E402
from pipeline.es.client import build_client  # noqa: E402
from pipeline.es.schema import drop_prefix
from pipeline.settings import load_settings  # noqa: E402
from pipeline.stack import airflow as airflow_stack  # noqa: E402
from pipeline.stack.processes import read_pid  # noqa: E402
from tests.e2e.support import LocalStack, local_stack  # noqa: E402

TARGET_P50, TARGET_MAX, TARGET_RSS_GB = 90.0, 180.0, 4.0


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = {root}, [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


class MemorySampler(threading.Thread):
    """Sum of RSS over the stack's processes every few seconds; keeps the peak and the mean."""

    def __init__(self, stack: LocalStack, es_pid_file: Path, every: float = 5.0) -> None:
        super().__init__(daemon=True)
        self.stack, self.es_pid_file, self.every = stack, es_pid_file, every
        self.samples: list[tuple[float, int, int]] = []  # (total MiB, airflow procs, airflow MiB)
        self._stop_event = threading.Event()

    def sample(self) -> None:
        airflow = set(airflow_stack.processes(self.stack.settings))
        es_pid = read_pid(self.es_pid_file)
        pids = airflow | {os.getpid()} | (descendants(es_pid) if es_pid else set())
        total = sum(rss_kb(p) for p in pids) / 1024
        self.samples.append((total, len(airflow), sum(rss_kb(p) for p in airflow) / 1024))

    def run(self) -> None:
        while not self._stop_event.wait(self.every):
            self.sample()

    def stop(self) -> None:
        self._stop_event.set()


def item_of_article(stack: LocalStack) -> dict[str, str]:
    """article id -> sample item id, through the article URL (it ends with the item's slug)."""
    slugs = {item.slug: item.id for item in stack.feeds.sample.items}
    out = {}
    for art in stack.docs("articles"):
        for url in (art.get("url"), art.get("canonical_url")):
            slug = (url or "").rstrip("/").rsplit("/", 1)[-1].removesuffix(".html")
            if slug in slugs:
                out[art["_id"]] = slugs[slug]
                break
    return out


def first_email_per_item(stack: LocalStack) -> dict[str, datetime]:
    """item id -> arrival time of the first alert email about one of its claims."""
    arrivals = {}
    for path in stack.mail_files():
        arrived = datetime.fromtimestamp(int(path.name.split("-")[0]) / 1e9, tz=UTC)
        for line in path.read_text(errors="replace").splitlines():
            if line.lower().startswith("message-id:"):
                arrivals[line.split(":", 1)[1].strip()] = arrived
                break
    items = item_of_article(stack)
    out: dict[str, datetime] = {}
    sent_in = {b["_id"]: b.get("message_id") for b in stack.docs("alerts", {"term": {"kind": "bundle"}})}
    for event in stack.docs("alerts", {"term": {"kind": "event"}}):
        item = items.get(event.get("article_id"))
        when = arrivals.get(sent_in.get(event.get("bundle_id") or ""))
        if item and when and (item not in out or when < out[item]):
            out[item] = when
    return out


def expected_alert_items(stack: LocalStack, released: list[str]) -> list[str]:
    return [i for i in released if (it := stack.feeds.sample.by_id(i)).expect.on_topic and not it.copy_of]


def scheduled_run(args: argparse.Namespace, base, es, tmp: Path) -> dict:
    sample = load_sample()
    es_pid_file = base.state_dir / "elasticsearch" / "es.pid"
    with local_stack(base, es, tmp / "stack", sample, schedule="* * * * *") as stack:
        sampler = MemorySampler(stack, es_pid_file)
        sampler.sample()
        sampler.start()
        released: list[str] = []
        for n in range(min(args.items, len(sample.items))):
            released += stack.release(1)
            print(f"  released {released[-1]} at {datetime.now(UTC):%H:%M:%S}", flush=True)
            if n + 1 < args.items:
                time.sleep(args.gap)
        deadline = time.monotonic() + args.drain
        expected = set(expected_alert_items(stack, released))
        while time.monotonic() < deadline and not expected <= set(first_email_per_item(stack)):
            time.sleep(5)
        firsts = first_email_per_item(stack)
        sampler.stop()
        sampler.sample()
        latencies = {i: (firsts[i] - stack.released_at[i]).total_seconds() for i in firsts}
        return {"latencies": latencies, "expected": sorted(expected), "released": released,
                "samples": sampler.samples, "emails": len(stack.alert_messages()),
                "operator_emails": len(stack.operator_messages())}


def direct_baseline(base, es, tmp: Path) -> tuple[float, float]:
    """Seconds from release to email with the pipeline called in-process: cold, then warm."""
    from pipeline.alerts import configured_subscriptions, process_new_claims
    from pipeline.claims import extract_pending_claims
    from pipeline.classify import classify_pending
    from pipeline.ingest import ingest_once
    from pipeline.stack.feedserver import SampleFeedServer
    from pipeline.stack.smtp import MailCatcher
    from tests.e2e.support import sources_yaml

    sample = load_sample()
    items = [i for i in sample.items if i.expect.on_topic and not i.copy_of][:2]
    subset = replace(sample, items=tuple(items))
    prefix = f"bench-direct-{os.getpid()}"
    feeds = SampleFeedServer(sample=subset).start()
    from pipeline.stack.ports import free_port

    mail = MailCatcher(tmp / "direct-mail", free_port()).start()
    (tmp / "direct-sources.yaml").write_text(sources_yaml(feeds, sorted({i.outlet for i in items})))
    (tmp / "direct-subs.yaml").write_text("subscriptions:\n  - id: desk\n    recipients: [desk@example.org]\n"
                                          "    mode: immediate\n    min_score: 0\n")
    settings = replace(base, index_prefix=prefix, state_dir=tmp / "direct-state", allow_private_hosts=True,
                       smtp=replace(base.smtp, port=mail.port), sources_path=tmp / "direct-sources.yaml",
                       subscriptions_path=tmp / "direct-subs.yaml")
    out = []
    try:
        for _ in items:
            feeds.release(1)
            before = len(mail.messages())
            start = time.monotonic()
            ingest_once(settings, es, ignore_schedule=True)
            classify_pending(settings, es)
            extract_pending_claims(settings, es)
            process_new_claims(settings, es, configured_subscriptions(settings))
            while len(mail.messages()) == before and time.monotonic() - start < 120:
                time.sleep(0.1)
            out.append(time.monotonic() - start)
    finally:
        mail.stop()
        feeds.stop()
        drop_prefix(es, prefix)
    return out[0], out[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=19, help="items to release (>= 10 alerting ones)")
    parser.add_argument("--gap", type=float, default=40.0, help="seconds between releases")
    parser.add_argument("--drain", type=float, default=300.0, help="seconds to wait after the last release")
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()
    base = load_settings()
    es = build_client(base)
    es.cluster.health(wait_for_status="yellow", timeout="30s")
    with tempfile.TemporaryDirectory(prefix="newswatch-bench-latency-") as tmp_name:
        tmp = Path(tmp_name)
        started = time.monotonic()
        result = scheduled_run(args, base, es, tmp)
        wall = time.monotonic() - started
        baseline = None if args.no_baseline else direct_baseline(base, es, tmp)

    lat = result["latencies"]
    print(f"\nnewswatch alert latency (1-minute ingest cron, {len(result['released'])} items released "
          f"every {args.gap:.0f}s, run {wall / 60:.1f} min)")
    for item in result["released"]:
        mark = f"{lat[item]:6.1f} s" if item in lat else ("  (no email: expected)" if item not in
                                                            result["expected"] else "  MISSING email")
        print(f"  {item:<38} {mark}")
    values = sorted(lat.values())
    if not values:
        print("no alert email arrived: nothing to measure")
        return 1
    p50, worst = statistics.median(values), max(values)
    missing = sorted(set(result["expected"]) - set(lat))
    totals = [s[0] for s in result["samples"]]
    peak_gb, mean_gb = max(totals) / 1024, statistics.mean(totals) / 1024
    airflow_peak = max(s[2] for s in result["samples"]) / 1024
    print(f"\nitems with an email: {len(values)} (expected {len(result['expected'])}; missing: "
          f"{', '.join(missing) or 'none'}); alert emails {result['emails']}, "
          f"operator failure emails {result['operator_emails']}")
    def verdict(ok: bool) -> str:
        return "OK" if ok else "MISSED"

    print(f"latency p50 {p50:6.1f} s   target <= {TARGET_P50:.0f} s   {verdict(p50 <= TARGET_P50)}")
    print(f"latency max {worst:6.1f} s   target <= {TARGET_MAX:.0f} s  {verdict(worst <= TARGET_MAX)}")
    procs = max(s[1] for s in result["samples"])
    print(f"stack RSS peak {peak_gb:5.2f} GB (mean {mean_gb:.2f} GB; Airflow tree peak "
          f"{airflow_peak:.2f} GB, {procs} processes)   target < {TARGET_RSS_GB:.0f} GB   "
          f"{verdict(peak_gb < TARGET_RSS_GB)}")
    if baseline:
        cold, warm = baseline
        print(f"baseline, pipeline called directly in-process: cold {cold:.1f} s (model load included), "
              f"warm {warm:.1f} s")
        print(f"ratio scheduler p50 / direct cold {p50 / cold:.1f}x, / direct warm {p50 / warm:.1f}x "
              f"(the rest is the cron wait, task start-up and the model load per task process)")
    return 0 if (p50 <= TARGET_P50 and worst <= TARGET_MAX and peak_gb < TARGET_RSS_GB and not missing) else 1


if __name__ == "__main__":
    raise SystemExit(main())
