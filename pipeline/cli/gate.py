"""``newswatch gate eval|train``: the learned on-topic gate, measured and refitted on real data.

``eval`` reports outlet-grouped cross-validation and a time split, with bootstrap 95% intervals,
for the learned gate beside the hand-set score and a keyword rule (``pipeline.classify.gate_eval``);
``--pin`` writes the floors into ``eval/baseline.json``. ``train`` refits the gate on every
labelled item and writes ``pipeline/classify/data/gate.json``; run ``newswatch model build``
afterwards, since the int8 agreement check covers the gate's decisions too.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("gate", help="evaluate or retrain the learned on-topic gate on the labelled data")
    actions = parser.add_subparsers(dest="gate_action", metavar="ACTION", required=True)
    evaluate = actions.add_parser(
        "eval", help="outlet-grouped CV and a time split, with 95%% intervals, against two baselines")
    evaluate.add_argument("--shared", type=Path, default=None,
                          help="the shared folder with the labelled corpus (default: ../shared)")
    evaluate.add_argument("--json", action="store_true", help="print the report as JSON")
    evaluate.add_argument("--pin", action="store_true",
                          help="write the measured floors (minus a margin) into eval/baseline.json")
    evaluate.set_defaults(func=cmd_eval)
    train = actions.add_parser("train", help="refit the gate on all labelled data and write its model file")
    train.add_argument("--shared", type=Path, default=None,
                       help="the shared folder with the labelled corpus (default: ../shared)")
    train.add_argument("--out", type=Path, default=None,
                       help="where to write the model (default: pipeline/classify/data/gate.json)")
    train.set_defaults(func=cmd_train)


def cmd_eval(args: argparse.Namespace) -> int:
    from pipeline.classify import gate_eval

    report = gate_eval.run_gate_eval(args.shared)
    print(json.dumps(report, indent=2) if args.json else gate_eval.format_gate_report(report))
    if args.pin:
        gate_eval.write_gate_baseline(report)
        print(f"floors written to {gate_eval.BASELINE_FILE}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from pipeline.classify import gate_eval

    data = gate_eval.train_gate(args.shared, args.out)
    counts = data["how_made"]["data"]
    print(f"gate trained on {sum(v for k, v in counts.items() if k != 'on_topic')} items "
          f"({counts['on_topic']} on topic); written to {args.out or gate_eval.GATE_FILE}")
    print("run `newswatch model build` next: the int8 agreement check covers the gate's decisions")
    return 0
