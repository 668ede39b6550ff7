"""Command line of the model part: ``python -m model <command> ...``.

Each command lives in its own module with a ``main(argv)`` (its own argparse, ``--help``);
adding a command is one entry in :data:`COMMANDS` (the pattern of every package:
:func:`stimuli.contracts.cli.dispatch`).

Examples
--------
::

    python -m model train model/configs/demo.yaml
    python -m model train --help
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from stimuli.contracts.cli import dispatch

# command -> (module with main(argv), one line for the overview)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("model.train", "train the VGG-16 variants of a grid YAML (resumable, skips finished ones)"),
    "rdm": ("model.rdm", "representational dissimilarity matrices of variants over a prepared set"),
    "explain": ("model.explain", "LRP relevance maps (zennit composites, gradient baselines) of a variant on a set"),
    "evaluate": ("model.evaluate", "relevance-based masking transfer, ground-truth and sanity checks (YAML)"),
    "groundtruth": ("model.groundtruth", "relevance mass/rank accuracy of a variant against its evidence region"),
    "convert-weights": ("model.convert_weights", "VGG-Face weights (vgg_face_dag.pth, keras-vggface .h5) to a torchvision state_dict"),
    "pipeline": ("model.pipeline", "train -> explain -> evaluate a grid as chained jobs (--launcher none|local|slurm)"),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch ``python -m model <verb> [options]`` (``argv``: the words after ``model``).

    Returns what the verb's ``main`` returns, or 2 when the verb is missing or unknown.
    """
    return dispatch("model", COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
