"""Token parity with LLaMA-Factory: the share of identical token ids per template and per dataset.

For every template name both registries know, and every dataset, each conversation is encoded by
tunequeue (`templates` + `data.processor.encode_supervised`) and by LLaMA-Factory's own template and
supervised processor, on the same tokenizer (a copy of ``--tokenizer`` fixed by LLaMA-Factory's
`fix_special_tokens`, so both sides see the same stop words and EOS). Prints, per template and dataset,
the share of rows whose input ids and labels are identical and the share of identical token ids; ranking
datasets are encoded as for dpo (prompt + chosen, prompt + rejected, cut to cutoff_len) on both sides.

Measured 2026-12-03 against LLaMA-Factory 0.9.5 (its own venv: transformers 5.6, trl 0.24) on the bundled
tokenizer: the 63 template names both registries know × demo_alpaca, demo_sharegpt, demo_messages (sft)
and demo_pairwise (dpo), 19,200 rows per run: 100.0 % identical rows and token ids at cutoff 1024, at
cutoff 64 (every long row cut) and with --mask-history. The probe conversations (thoughts in the
answers, a tool call with its result, under every thinking option and mode): 2304 of 2304 identical.

    python benchmarks/parity_tokens.py                          # bundled tokenizer, demo datasets
    python benchmarks/parity_tokens.py --templates qwen3,llama3 --datasets demo_alpaca --cutoff-len 64

LLaMA-Factory is not a dependency: run this with a Python whose environment has `llamafactory`
installed and tunequeue on PYTHONPATH. Without LLaMA-Factory the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import copy
import inspect
import json
import sys
from functools import partial
from typing import Any


def _load_llamafactory() -> dict[str, Any] | None:
    try:
        from llamafactory.data.mm_plugin import get_mm_plugin
        from llamafactory.data.processor.pairwise import PairwiseDatasetProcessor
        from llamafactory.data.processor.supervised import SupervisedDatasetProcessor
        from llamafactory.data.template import TEMPLATES as LF_TEMPLATES
        from llamafactory.hparams import DataArguments
    except Exception as err:  # noqa: BLE001 - any import failure means there is nothing to compare with
        print(f"LLaMA-Factory is not installed here (import llamafactory failed: {err}); nothing to compare.")
        return None
    return {
        "templates": LF_TEMPLATES,
        "sft": SupervisedDatasetProcessor,
        "pairwise": PairwiseDatasetProcessor,
        "data_args": DataArguments,
        "text_plugin": get_mm_plugin(name="base"),
    }


def _lf_call(method: Any, example: dict, prompt: list[dict], response: list[dict]) -> Any:
    """Call an LLaMA-Factory processor's `_encode_data_example` with the arguments its version takes."""
    kwargs = {
        "prompt": prompt,
        "response": response,
        "system": example.get("system"),
        "tools": example.get("tools"),
        "images": [],
        "videos": [],
        "audios": [],
    }
    accepted = inspect.signature(method).parameters
    return method(**{k: v for k, v in kwargs.items() if k in accepted})


def _lf_encode(processor: Any, example: dict) -> tuple[list[int], list[int]]:
    """LLaMA-Factory's input ids and labels of one conversation (its processor's own encoding)."""
    messages = example["messages"]
    return _lf_call(processor._encode_data_example, example, messages[:-1], messages[-1:])


def _lf_encode_pair(processor: Any, example: dict) -> tuple[list[int], list[int]]:
    """LLaMA-Factory's chosen and rejected input ids of one ranking example, concatenated."""
    answers = [{"role": "assistant", "content": example[key]} for key in ("chosen", "rejected")]
    chosen, _, rejected, _ = _lf_call(processor._encode_data_example, example, example["messages"], answers)
    return chosen + rejected, chosen + rejected


def _ours_sft(tokenizer: Any, template: Any, cutoff_len: int, mask_history: bool, example: dict) -> Any:
    """tunequeue's input ids and labels of one conversation (None when nothing would train)."""
    from tunequeue.train.data.processor import encode_supervised

    row = encode_supervised(
        example, tokenizer, template, cutoff_len=cutoff_len, train_on_prompt=False, mask_history=mask_history
    )
    return (row["input_ids"], row["labels"]) if row else None


def _ours_pair(tokenizer: Any, template: Any, cutoff_len: int, mask_history: bool, example: dict) -> Any:
    """tunequeue's chosen and rejected input ids of one ranking example, concatenated."""
    from tunequeue.train.data.processor import encode_pairwise

    row, _ = encode_pairwise(example, tokenizer, template, cutoff_len=cutoff_len)
    ids = row["prompt_ids"] + row["chosen_ids"] + row["prompt_ids"] + row["rejected_ids"]
    return ids, ids


TOOLS = json.dumps(
    [
        {
            "name": "add",
            "description": "Add numbers",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "integer", "description": "first"}, "b": {"type": "integer"}},
                "required": ["a"],
            },
        }
    ]
)
PROBES = {
    "thoughts": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "<think>\nhmm\n</think>\n\nHello!"},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "<think>\nadd\n</think>\n\n4"},
    ],
    "some thoughts": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "<think>\nadd\n</think>\n\n4"},
    ],
    "tool call": [
        {"role": "user", "content": "1+1?"},
        {"role": "function", "content": json.dumps({"name": "add", "arguments": {"a": 1, "b": 2}})},
        {"role": "observation", "content": "2"},
        {"role": "assistant", "content": "It is 2."},
    ],
}


def _probe(name: str, lf_template: Any, tokenizer: Any) -> tuple[int, int]:
    """(identical, compared) encodings of the probe conversations under every thinking option and mode."""
    from tunequeue.train.templates import TEMPLATES

    same = total = 0
    for thinking in (True, False):
        for preserve in (False, True):
            theirs = copy.deepcopy(lf_template)
            theirs.enable_thinking, theirs.preserve_thinking = thinking, preserve
            ours = TEMPLATES[name].with_options(enable_thinking=thinking, preserve_thinking=preserve)
            for probe, messages in PROBES.items():
                tools = TOOLS if probe == "tool call" else None
                for mode in ("turns", "last turn only", "one turn"):
                    if mode == "one turn":
                        a = [theirs.encode_oneturn(tokenizer, copy.deepcopy(messages), "Sys.", tools)]
                        b = [ours.encode_oneturn(tokenizer, messages, "Sys.", tools)]
                    else:
                        discard = mode == "last turn only"
                        a = theirs.encode_multiturn(
                            tokenizer, copy.deepcopy(messages), "Sys.", tools, discard
                        )
                        b = ours.encode_conversation(
                            tokenizer, messages, "Sys.", tools, discard_history_thoughts=discard
                        )
                    same += [(list(p), list(r)) for p, r in a] == [(list(p), list(r)) for p, r in b]
                    total += 1
    return same, total


def _compare(
    ours: tuple[list[int], list[int]] | None, theirs: tuple[list[int], list[int]]
) -> tuple[int, int, int]:
    """(identical row 0/1, identical token ids, compared positions) of one conversation."""
    if ours is None:
        return 0, 0, max(len(theirs[0]), 1)
    ids, labels = ours
    width = max(len(ids), len(theirs[0]))
    same = sum(1 for a, b in zip(ids, theirs[0], strict=False) if a == b)
    return int(ids == list(theirs[0]) and labels == list(theirs[1])), same, width


def main(argv: list[str] | None = None) -> int:
    """Encode every dataset with every shared template on both sides and print the parity table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", default="", help="tokenizer directory (default: the bundled one)")
    parser.add_argument("--datasets", default="demo_alpaca,demo_sharegpt,demo_messages")
    parser.add_argument(
        "--pair-datasets", default="demo_pairwise", help="ranking datasets, encoded as for dpo"
    )
    parser.add_argument(
        "--dataset-dir", default=None, help="folder with dataset_info.json (default: bundled)"
    )
    parser.add_argument("--templates", default="", help="comma-separated names (default: every shared one)")
    parser.add_argument("--cutoff-len", type=int, default=1024)
    parser.add_argument("--mask-history", action="store_true", help="train on the last turn only, both sides")
    args = parser.parse_args(argv)

    loaded = _load_llamafactory()
    if loaded is None:
        return 0
    lf_templates, data_arguments = loaded["templates"], loaded["data_args"]

    from transformers import AutoTokenizer

    from tunequeue.train.assets import bundled_model_dir
    from tunequeue.train.data import load_examples
    from tunequeue.train.templates import TEMPLATES

    base = AutoTokenizer.from_pretrained(args.tokenizer or str(bundled_model_dir()))
    wanted = [n.strip() for n in args.templates.split(",") if n.strip()] or sorted(
        set(TEMPLATES) & set(lf_templates)
    )
    datasets = [n.strip() for n in args.datasets.split(",") if n.strip()]
    spec = {"dataset_dir": args.dataset_dir}
    examples = {name: load_examples({**spec, "dataset": name}, name, "sft") for name in datasets}
    pairs = [n.strip() for n in args.pair_datasets.split(",") if n.strip()]
    pair_examples = {name: load_examples({**spec, "dataset": name}, name, "dpo") for name in pairs}

    print(f"{'template':<16} {'dataset':<16} {'rows':>5} {'identical rows':>15} {'identical ids':>14}")
    totals = [0, 0, 0, 0]
    probes = [0, 0]
    for name in wanted:
        tokenizer = copy.deepcopy(base)
        lf_template = copy.deepcopy(lf_templates[name])
        lf_template.mm_plugin = loaded["text_plugin"]  # text only: no image or audio processor is needed
        lf_template.fix_special_tokens(tokenizer)
        data_args = data_arguments(template=name, cutoff_len=args.cutoff_len, mask_history=args.mask_history)
        sft = loaded["sft"](template=lf_template, tokenizer=tokenizer, processor=None, data_args=data_args)
        pairwise = loaded["pairwise"](
            template=lf_template, tokenizer=tokenizer, processor=None, data_args=data_args
        )
        ours = (tokenizer, TEMPLATES[name], args.cutoff_len, args.mask_history)
        jobs = [
            (d, rows, partial(_ours_sft, *ours), partial(_lf_encode, sft)) for d, rows in examples.items()
        ]
        jobs += [
            (d, rows, partial(_ours_pair, *ours), partial(_lf_encode_pair, pairwise))
            for d, rows in pair_examples.items()
        ]
        for dataset, rows, ours_encode, lf_encode in jobs:
            same_rows = same_ids = width = 0
            for example in rows:
                equal, same, seen = _compare(ours_encode(example), lf_encode(example))
                same_rows, same_ids, width = same_rows + equal, same_ids + same, width + seen
            totals = [totals[0] + same_rows, totals[1] + len(rows), totals[2] + same_ids, totals[3] + width]
            print(
                f"{name:<16} {dataset:<16} {len(rows):>5} {100 * same_rows / max(len(rows), 1):>14.1f}% "
                f"{100 * same_ids / max(width, 1):>13.2f}%"
            )
        probe_same, probe_total = _probe(name, lf_template, tokenizer)
        probes = [probes[0] + probe_same, probes[1] + probe_total]
        if probe_same != probe_total:
            print(f"{name:<16} {'probes':<16} {probe_total:>5} {100 * probe_same / probe_total:>14.1f}%")
    print(
        f"{'all':<16} {'':<16} {totals[1]:>5} {100 * totals[0] / max(totals[1], 1):>14.1f}% "
        f"{100 * totals[2] / max(totals[3], 1):>13.2f}%"
    )
    print(
        f"probe conversations (thoughts, tool calls; every enable_thinking / preserve_thinking; all turns, "
        f"last turn only, one turn): {probes[0]} of {probes[1]} encodings identical"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
