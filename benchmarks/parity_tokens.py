"""Token parity with LLaMA-Factory: the share of identical token ids per template and per dataset.

For every template name both registries know, and every dataset, each conversation is encoded by
tunequeue (`templates` + `data.processor.encode_supervised`) and by LLaMA-Factory's own template and
supervised processor, on the same tokenizer (a copy of ``--tokenizer`` fixed by LLaMA-Factory's
`fix_special_tokens`, so both sides see the same stop words and EOS). Prints, per template and dataset,
the share of rows whose input ids and labels are identical and the share of identical token ids.

    python benchmarks/parity_tokens.py                          # bundled tokenizer, demo datasets
    python benchmarks/parity_tokens.py --templates qwen3,llama3 --datasets demo_alpaca --cutoff-len 64

LLaMA-Factory is not a dependency: run this with a Python whose environment has `llamafactory`
installed and tunequeue on PYTHONPATH. Without LLaMA-Factory the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import copy
import inspect
import sys
from typing import Any


def _load_llamafactory() -> tuple[Any, Any, Any] | None:
    try:
        from llamafactory.data.processor.supervised import SupervisedDatasetProcessor
        from llamafactory.data.template import TEMPLATES as LF_TEMPLATES
        from llamafactory.hparams import DataArguments
    except Exception as err:  # noqa: BLE001 - any import failure means there is nothing to compare with
        print(f"LLaMA-Factory is not installed here (import llamafactory failed: {err}); nothing to compare.")
        return None
    return LF_TEMPLATES, SupervisedDatasetProcessor, DataArguments


def _lf_encode(processor: Any, example: dict) -> tuple[list[int], list[int]]:
    """LLaMA-Factory's input ids and labels of one conversation (its processor's own encoding)."""
    messages = example["messages"]
    kwargs = {
        "prompt": messages[:-1],
        "response": messages[-1:],
        "system": example.get("system"),
        "tools": example.get("tools"),
        "images": [],
        "videos": [],
        "audios": [],
    }
    accepted = inspect.signature(processor._encode_data_example).parameters
    return processor._encode_data_example(**{k: v for k, v in kwargs.items() if k in accepted})


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
        "--dataset-dir", default=None, help="folder with dataset_info.json (default: bundled)"
    )
    parser.add_argument("--templates", default="", help="comma-separated names (default: every shared one)")
    parser.add_argument("--cutoff-len", type=int, default=1024)
    args = parser.parse_args(argv)

    loaded = _load_llamafactory()
    if loaded is None:
        return 0
    lf_templates, processor_cls, data_arguments = loaded

    from transformers import AutoTokenizer

    from tunequeue.train.assets import bundled_model_dir
    from tunequeue.train.data import load_examples
    from tunequeue.train.data.processor import encode_supervised
    from tunequeue.train.templates import TEMPLATES

    base = AutoTokenizer.from_pretrained(args.tokenizer or str(bundled_model_dir()))
    wanted = [n.strip() for n in args.templates.split(",") if n.strip()] or sorted(
        set(TEMPLATES) & set(lf_templates)
    )
    datasets = [n.strip() for n in args.datasets.split(",") if n.strip()]
    spec = {"dataset_dir": args.dataset_dir}
    examples = {name: load_examples({**spec, "dataset": name}, name, "sft") for name in datasets}

    print(f"{'template':<16} {'dataset':<16} {'rows':>5} {'identical rows':>15} {'identical ids':>14}")
    totals = [0, 0, 0, 0]
    for name in wanted:
        tokenizer = copy.deepcopy(base)
        lf_template = copy.deepcopy(lf_templates[name])
        lf_template.fix_special_tokens(tokenizer)
        data_args = data_arguments(template=name, cutoff_len=args.cutoff_len)
        processor = processor_cls(
            template=lf_template, tokenizer=tokenizer, processor=None, data_args=data_args
        )
        ours_template = TEMPLATES[name]
        for dataset, rows in examples.items():
            same_rows = same_ids = width = 0
            for example in rows:
                row = encode_supervised(
                    example,
                    tokenizer,
                    ours_template,
                    cutoff_len=args.cutoff_len,
                    train_on_prompt=False,
                    mask_history=False,
                )
                ours = (row["input_ids"], row["labels"]) if row else None
                equal, same, seen = _compare(ours, _lf_encode(processor, example))
                same_rows, same_ids, width = same_rows + equal, same_ids + same, width + seen
            totals = [totals[0] + same_rows, totals[1] + len(rows), totals[2] + same_ids, totals[3] + width]
            print(
                f"{name:<16} {dataset:<16} {len(rows):>5} {100 * same_rows / max(len(rows), 1):>14.1f}% "
                f"{100 * same_ids / max(width, 1):>13.2f}%"
            )
    print(
        f"{'all':<16} {'':<16} {totals[1]:>5} {100 * totals[0] / max(totals[1], 1):>14.1f}% "
        f"{100 * totals[2] / max(totals[3], 1):>13.2f}%"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
