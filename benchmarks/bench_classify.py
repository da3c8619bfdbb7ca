"""Benchmark of the classify stage against a bare model forward pass, per backend, in one run.

For each backend (ONNX Runtime fp32 and int8, from ``newswatch model build``) a fresh child process
loads the classifier and prints, measured inside that process:

- the bare forward pass (tokenise + model + pooling, no cache) in sentences/s;
- the classify stage on the same sentences (embedding + motive head), and its ratio to the bare
  pass (target >= 0.85);
- the whole article path (split, language, gate, embed, head, roll-up) with a cold cache, and again
  on the same articles (syndicated copies: cache hits);
- the process's peak RSS with everything loaded (target < 600 MB) and which heavy modules it
  imported.

Then one more child loads every backend and times their bare passes interleaved, so the speed-ups
between backends are measured under the same conditions (the machine may be shared). Whether int8
is enabled comes from the build's agreement check (``newswatch model status``). ``--graph
NAME=PATH`` adds another fp32 ONNX graph of the same model to that comparison (for example an
older build, to check a new graph writer is no slower).

``--mixed`` measures instead the classify stage on a mixed feed, the real feed items of
``news_items.jsonl`` (80% English, the rest Polish, German, Vietnamese and French): English items go
through MiniLM, the others through multilingual-e5 (both int8 when enabled), in one fresh process
with the default backends, cold caches each repeat. It prints sentences/s (titles + summary
sentences) and the process's peak RSS; targets >= 250 sentences/s on 2 threads, < 700 MB.

Run: .venv/bin/python benchmarks/bench_classify.py [--shared ../shared] [--repeat 3] [--graph N=P]
     .venv/bin/python benchmarks/bench_classify.py --mixed [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

HEAVY = ("torch", "transformers", "sklearn", "onnxruntime")


def corpus(shared: Path) -> tuple[list[str], list[dict]]:
    from pipeline.classify.sentences import split_sentences

    rows = [json.loads(line) for line in
            (shared / "corpus" / "articles.jsonl").read_text(encoding="utf-8").splitlines() if line]
    english = [r for r in rows if r["language"] == "en"]
    sentences = list(dict.fromkeys(s for r in english for s in split_sentences(r["text"])))
    for seed in sorted((shared / "seeds").glob("*.txt")):
        sentences.extend(s for s in split_sentences(seed.read_text(encoding="utf-8"))
                         if s not in sentences)
    return sentences, english


def make_embedder(backend: str):  # noqa: ANN201 - returns one of the embedder classes
    from pipeline.classify import onnx_runtime

    if "=" in backend:  # NAME=PATH: another fp32 graph of the same model
        return onnx_runtime.OnnxEmbedder(Path(backend.split("=", 1)[1]), precision="fp32")
    build = onnx_runtime.load_build()
    if build is None or build.problem:
        raise SystemExit(f"{backend}: no usable ONNX build; run `newswatch model build`")
    return onnx_runtime.open_build(build, backend.split("-")[1])


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def child(backend: str, shared: Path, repeat: int) -> dict:
    import warnings

    warnings.filterwarnings("ignore")
    from pipeline.classify.classifier import ArticleInput, Classifier
    from pipeline.classify.embedder import default_threads
    from pipeline.classify.sentences import split_sentences
    from pipeline.procinfo import peak_rss_mb

    sentences, english = corpus(shared)
    t0 = time.perf_counter()
    embedder = make_embedder(backend)
    classifier = Classifier(embedder=embedder)
    load_s = time.perf_counter() - t0
    embedder.forward(sentences[:32])  # warm-up
    items = [ArticleInput(r["title"], r["text"], r["language"]) for r in english]
    n_article_sentences = sum(len(split_sentences(r["text"])) for r in english)

    def stage() -> None:
        embedder._cache.clear()
        classifier.classify_sentences(sentences)

    def articles() -> None:
        embedder._cache.clear()
        classifier.classify_articles(items)

    runs: dict[str, list[float]] = {"bare": [], "stage": [], "articles": []}
    for _ in range(repeat):  # interleaved: each kind sees the same conditions
        runs["bare"].append(timed(lambda: embedder.forward(sentences)))
        runs["stage"].append(timed(stage))
        runs["articles"].append(timed(articles))
    classifier.classify_articles(items)
    cached = min(timed(lambda: classifier.classify_articles(items)) for _ in range(repeat))
    bare = [len(sentences) / t for t in runs["bare"]]
    stage_rates = [len(sentences) / t for t in runs["stage"]]
    return {
        "backend": backend, "sentences": len(sentences), "load_s": load_s,
        "bare": max(bare), "stage": max(stage_rates),
        # per repeat, stage over the bare pass run just before it: robust to drifting load
        "ratio_median": statistics.median(s / b for s, b in zip(stage_rates, bare, strict=True)),
        "articles": n_article_sentences / min(runs["articles"]),
        "cached": n_article_sentences / cached,
        "peak_rss_mb": peak_rss_mb(),  # VmHWM of this child
        "heavy_modules": [m for m in HEAVY if m in sys.modules],
        "threads": default_threads(),
    }


def mixed_child(shared: Path, repeat: int) -> dict:
    """The classify stage on the real mixed-language feed items, in this (fresh) process."""
    import warnings

    warnings.filterwarnings("ignore")
    from pipeline.classify.classifier import ArticleInput, Classifier
    from pipeline.classify.e5_runtime import get_multilingual_embedder
    from pipeline.classify.embedder import default_threads
    from pipeline.classify.sentences import split_sentences
    from pipeline.procinfo import peak_rss_mb

    rows = [json.loads(line) for line in
            (shared / "corpus" / "news_items.jsonl").read_text(encoding="utf-8").splitlines() if line]
    items = [ArticleInput(r["title"], r.get("text") or "", r.get("language")) for r in rows]
    units = [1 + len(split_sentences(r.get("text") or "")) for r in rows]
    english = [r.get("language") == "en" for r in rows]
    t0 = time.perf_counter()
    classifier = Classifier()
    e5 = get_multilingual_embedder()
    load_s = time.perf_counter() - t0

    english_items = [i for i, e in zip(items, english, strict=True) if e]
    english_units = sum(u for u, e in zip(units, english, strict=True) if e)

    def run(batch: list = items) -> list:
        classifier.embedder._cache.clear()
        if e5 is not None:
            e5.clear_cache()
        return classifier.classify_articles(batch)

    results = run()  # warm-up; the first non-English item loads the multilingual head
    times, english_times = [], []
    for _ in range(repeat):  # interleaved with the English-only feed: the machine may be shared
        times.append(timed(run))
        english_times.append(timed(lambda: run(english_items)))
    rates = [sum(units) / t for t in times]
    english_rates = [english_units / t for t in english_times]
    return {"items": len(rows), "english_items": sum(english),
            "sentences": sum(units),
            "english_sentences": sum(u for u, e in zip(units, english, strict=True) if e),
            "load_s": load_s, "best": max(rates), "median": statistics.median(rates),
            "english_best": max(english_rates),
            "ratio_median": statistics.median(m / e for m, e in zip(rates, english_rates, strict=True)),
            "multilingual": e5.name if e5 is not None else None,
            "e5_items": sum(r.extra.get("gate") == "multilingual" for r in results),
            "peak_rss_mb": peak_rss_mb(), "threads": default_threads(),
            "heavy_modules": [m for m in HEAVY if m in sys.modules]}


def compare(backends: list[str], shared: Path, repeat: int) -> dict:
    import warnings

    warnings.filterwarnings("ignore")
    sentences, _ = corpus(shared)
    embedders = {b: make_embedder(b) for b in backends}
    for e in embedders.values():
        e.forward(sentences[:32])
    rates: dict[str, list[float]] = {b: [] for b in backends}
    for _ in range(repeat):
        for b, e in embedders.items():
            rates[b].append(len(sentences) / timed(lambda e=e: e.forward(sentences)))
    return {b: max(r) for b, r in rates.items()}


def run_child(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--graph", action="append", default=[], metavar="NAME=PATH",
                        help="another fp32 ONNX graph to compare in the interleaved bare pass")
    parser.add_argument("--mixed", action="store_true",
                        help="the classify stage on the mixed-language feed items (80%% English)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--mixed-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--compare", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.shared, args.repeat)))
        return 0
    if args.compare:
        print(json.dumps(compare(args.compare.split(","), args.shared, args.repeat)))
        return 0
    if args.mixed_child:
        print(json.dumps(mixed_child(args.shared, args.repeat)))
        return 0
    if args.mixed:
        r = run_child(["--mixed-child", "--shared", str(args.shared), "--repeat", str(args.repeat)])
        print(f"mixed feed: {r['items']} items ({r['english_items']} English), {r['sentences']} sentences "
              f"({r['english_sentences'] / r['sentences']:.0%} English); multilingual embedder "
              f"{r['multilingual']} judged {r['e5_items']} items; {r['threads']} threads")
        print(f"classify stage: best {r['best']:.1f} sentences/s, median {r['median']:.1f} "
              f"(load {r['load_s']:.1f} s); peak RSS {r['peak_rss_mb']:.0f} MB; heavy modules "
              f"{','.join(r['heavy_modules'])}")
        print(f"English items alone, same process, interleaved: best {r['english_best']:.1f} sentences/s; "
              f"mixed / English-only {r['ratio_median']:.2f} (median of repeats)")
        print("targets: >= 250 sentences/s on 2 threads; peak RSS < 700 MB")
        return 0

    from pipeline.classify import onnx_runtime

    build = onnx_runtime.load_build()
    if build is None or build.problem is not None:
        print("no usable ONNX build: run `newswatch model build` first")
        return 1
    backends = ["onnx-fp32", "onnx-int8"]
    agreement = build.manifest["agreement"]
    print(f"ONNX build: int8 {'ENABLED' if build.int8_enabled else 'not enabled'} "
          f"(articles {agreement['articles_agree']}/{agreement['articles']} and sentences "
          f"{agreement['sentences_agree']}/{agreement['sentences']} agree with fp32)")
    results = [run_child(["--child", b, "--shared", str(args.shared), "--repeat", str(args.repeat)])
               for b in backends]
    first = results[0]
    print(f"{first['sentences']} unique sentences, {first['threads']} threads, cpu count {os.cpu_count()}")
    print(f"{'backend':11} {'load s':>6} {'bare/s':>7} {'stage/s':>7} {'stage/bare':>10} "
          f"{'articles/s':>10} {'cached/s':>9} {'peak RSS':>9}  heavy modules")
    for r in results:
        print(f"{r['backend']:11} {r['load_s']:6.1f} {r['bare']:7.1f} {r['stage']:7.1f} "
              f"{r['ratio_median']:10.3f} {r['articles']:10.1f} {r['cached']:9.0f} "
              f"{r['peak_rss_mb']:7.0f}MB  {','.join(r['heavy_modules'])}")
    print("targets: stage/bare >= 0.85 (median of interleaved repeats); peak RSS < 600 MB; "
          "reference on 2 cores ~120 sentences/s fp32, ~220 int8")
    speeds = run_child(["--compare", ",".join(backends + args.graph), "--shared", str(args.shared),
                        "--repeat", str(args.repeat)])
    base = speeds["onnx-fp32"]
    print("bare forward, interleaved in one process: " + "; ".join(
        f"{b.split('=')[0]} {s:.1f}/s ({s / base:.2f}x onnx-fp32)" for b, s in speeds.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
