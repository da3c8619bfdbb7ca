"""Benchmark of the classify stage against a bare model forward pass, measured in the same run.

Prints sentences/s of: the bare forward pass (tokenise + model + pooling, no cache), the classify
stage on the same sentences (embedding + motive head + roll-up), the whole article path (split,
language, gate, embed, head), the same articles again (syndicated copies: cache hits), the ratio of
the classify stage to the bare pass (target >= 0.85), the process RSS with the model loaded
(target < 600 MB), and torch dynamic int8: its speed and whether its labels agree with fp32 on
the evaluation corpus (int8 is only worth enabling when they agree).

Run: .venv/bin/python benchmarks/bench_classify.py [--shared ../shared] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def best_of(repeat: int, fn) -> float:  # noqa: ANN001 - tiny local helper
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--no-int8", action="store_true")
    args = parser.parse_args()

    import sklearn.linear_model  # noqa: F401 - imported before the RSS baseline on purpose
    import torch
    import transformers  # noqa: F401

    from pipeline.classify.model import ArticleInput, Classifier
    from pipeline.classify.sentences import split_sentences

    rows = [json.loads(line) for line in
            (args.shared / "corpus" / "articles.jsonl").read_text(encoding="utf-8").splitlines()]
    english = [r for r in rows if r["language"] == "en"]
    sentences = list(dict.fromkeys(s for r in english for s in split_sentences(r["text"])))
    for seed in sorted((args.shared / "seeds").glob("*.txt")):
        sentences.extend(s for s in split_sentences(seed.read_text(encoding="utf-8"))
                         if s not in sentences)
    words = sum(len(s.split()) for s in sentences) / len(sentences)

    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    rss_before = rss_mb()
    t0 = time.perf_counter()
    classifier = Classifier()
    load_s = time.perf_counter() - t0
    embedder = classifier.embedder
    rss_loaded = rss_mb()

    print(f"sentences: {len(sentences)} unique (mean {words:.1f} words), torch threads "
          f"{torch.get_num_threads()}, batch {embedder.batch_size}")
    print(f"model + head load: {load_s:.1f} s; RSS {rss_before:.0f} MB (torch, transformers, sklearn "
          f"imported) -> {rss_loaded:.0f} MB: model + head {rss_loaded - rss_before:.0f} MB")

    embedder.forward(sentences[:32])  # warm-up

    def bare() -> None:
        embedder.forward(sentences)

    def stage() -> None:
        embedder._cache.clear()
        classifier.classify_sentences(sentences)

    items = [ArticleInput(r["title"], r["text"], r["language"]) for r in english]
    n_article_sentences = sum(len(split_sentences(r["text"])) for r in english)

    def articles_cold() -> None:
        embedder._cache.clear()
        classifier.classify_articles(items)

    # Interleaved, best of N: the machine may be shared, so each kind gets the same conditions.
    timings: dict[str, list[float]] = {"bare": [], "stage": [], "articles": []}
    for _ in range(args.repeat):
        for name, fn in (("bare", bare), ("stage", stage), ("articles", articles_cold)):
            timings[name].append(best_of(1, fn))
    t_bare, t_stage, t_articles = (min(timings[k]) for k in ("bare", "stage", "articles"))
    classifier.classify_articles(items)
    t_cached = best_of(args.repeat, lambda: classifier.classify_articles(items))
    rss_peak = rss_mb()

    bare_rate = len(sentences) / t_bare
    stage_rate = len(sentences) / t_stage
    print(f"bare forward pass      : {bare_rate:8.1f} sentences/s")
    print(f"classify stage         : {stage_rate:8.1f} sentences/s   ratio to bare "
          f"{stage_rate / bare_rate:.3f} (target >= 0.85)")
    print(f"articles, cold cache   : {n_article_sentences / t_articles:8.1f} sentences/s   ratio to bare "
          f"{n_article_sentences / t_articles / bare_rate:.3f}")
    print(f"articles, cached copies: {n_article_sentences / t_cached:8.1f} sentences/s   ratio to bare "
          f"{n_article_sentences / t_cached / bare_rate:.1f}")
    print(f"RSS with model loaded  : {rss_peak:.0f} MB (target < 600 MB)")

    if not args.no_int8:
        fp32 = {i: r.motives for i, r in enumerate(classifier.classify_articles(
            [ArticleInput(r["title"], r["text"], r["language"]) for r in rows]))}
        fp32_sent = [s.motives for r in classifier.classify_articles(items) for s in r.sentences]
        quantized = torch.ao.quantization.quantize_dynamic(embedder.model, {torch.nn.Linear},
                                                           dtype=torch.qint8)
        original = embedder.model
        embedder.model = quantized
        try:
            embedder.forward(sentences[:32])
            t_int8 = best_of(args.repeat, bare)
            embedder._cache.clear()
            int8 = {i: r.motives for i, r in enumerate(classifier.classify_articles(
                [ArticleInput(r["title"], r["text"], r["language"]) for r in rows]))}
            int8_sent = [s.motives for r in classifier.classify_articles(items) for s in r.sentences]
        finally:
            embedder.model = original
            embedder._cache.clear()
        same_articles = sum(fp32[i] == int8[i] for i in fp32)
        same_sentences = sum(a == b for a, b in zip(fp32_sent, int8_sent, strict=True))
        print(f"int8 dynamic forward   : {len(sentences) / t_int8:8.1f} sentences/s   "
              f"speed-up {t_bare / t_int8:.2f}x")
        agrees = same_articles == len(fp32) and same_sentences == len(fp32_sent)
        print(f"int8 label agreement   : articles {same_articles}/{len(fp32)}, sentences "
              f"{same_sentences}/{len(fp32_sent)} -> "
              f"{'agrees: may be enabled' if agrees else 'DISAGREES: keep fp32'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
