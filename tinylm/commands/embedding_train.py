"""``tinylm train word2vec|glove [--preset NAME] [--model KEY=VALUE ...] [--epochs N]
[--seed S] [--dataset NAME] [--out-dir DIR] [--progress BOOL] [--overwrite]``

The word-embedding branch of ``tinylm train`` (chapter 05). A preset (ptb-cbow, ptb-skipgram,
ptb-glove) fills the family's configuration; ``--model`` overrides any field of it
(``--model window=10``), ``--epochs`` and ``--seed`` are shortcuts for two of them. The
language-model flags (``--lr``, ``--batch-size``, ...) do not apply and are refused rather
than ignored; so is ``--resume`` (a run takes minutes: retrain with ``--overwrite``).
"""

from __future__ import annotations

from pathlib import Path

from tinylm.commands.arguments import model_overrides, refuse_to_replace
from tinylm.data import dataset_info
from tinylm.train.embedding_run import VECTORS_FILE, embedding_config, train_embeddings
from tinylm.train.loop import CHECKPOINT_NAME
from tinylm.train.presets import get_preset
from tinylm.train.setup import dataset_files

RUN_FLAGS = ("dataset", "out_dir", "progress")       # where and how, not what
CONFIG_FLAGS = ("epochs", "seed")                    # shortcuts for configuration fields
DEFAULT_DATASET = "ptb"


def _check_flags(family: str, flags: dict) -> None:
    foreign = sorted(set(flags) - set(RUN_FLAGS) - set(CONFIG_FLAGS))
    if foreign:
        names = ", ".join("--" + f.replace("_", "-") for f in foreign)
        raise ValueError(f"{names} {'does' if len(foreign) == 1 else 'do'} not apply to "
                         f"{family} (a language-model setting); set the embedding's own "
                         f"fields with --model KEY=VALUE (e.g. --model alpha=0.05).")


def _preset_values(args) -> tuple[dict, dict]:
    if not args.preset:
        return {}, {}
    preset = get_preset(args.preset)
    if preset["model"] != args.model:
        raise ValueError(f"preset {args.preset!r} is for model {preset['model']!r}, not "
                         f"{args.model!r}.")
    return dict(preset["model_config"]), dict(preset["train"])


def run_embedding_training(args, flags: dict) -> int:
    """Check everything, then train and save; nothing is written before the checks pass."""
    if args.resume:
        raise ValueError(f"--resume is not supported for {args.model} (a run takes minutes); "
                         "retrain with --overwrite.")
    _check_flags(args.model, flags)
    values, run = _preset_values(args)
    values.update(model_overrides(args.model_overrides))
    values.update({k: flags[k] for k in CONFIG_FLAGS if k in flags})
    config = embedding_config(args.model, values)
    run.update({k: flags[k] for k in RUN_FLAGS if k in flags})
    dataset = run.get("dataset", DEFAULT_DATASET)
    for name in dataset_files(dataset):
        dataset_info(name)                                   # an unknown name fails here
    out_dir = Path(run.get("out_dir", f"runs/{args.model}"))
    refuse_to_replace(args, out_dir / CHECKPOINT_NAME)
    train_embeddings(args.model, config, dataset, out_dir, progress=run.get("progress", True))
    print(f"checkpoint: {out_dir / CHECKPOINT_NAME}.json  vectors: {out_dir / VECTORS_FILE}")
    return 0
