"""Convert a VGG-Face file to a torchvision-layout VGG-16 state_dict:
``python -m model convert-weights --format vgg_face_dag|keras_vggface IN OUT.pt``.

The result is what ``pretrain: vggface:IN`` loads (see :mod:`model.vggface`): the 13 convs with
the file's preprocessing folded into conv1, the face FC6/FC7 as ``classifier.0``/``classifier.3``
and, with ``--keep-fc8``, the 2622-identity FC8 as ``classifier.6``. ``pretrain: file:OUT.pt``
then gives the same weights, and a lab can inspect them. ``OUT.pt`` is written atomically, with
its provenance beside it (``OUT.provenance.json``: command, input hash, output hash). An
existing ``OUT.pt`` is replaced only with ``--force`` and only when its provenance says this
command made it; the old file is moved aside (``OUT.pt.old-<time>``), never deleted.

Examples
--------
::

    python -m model convert-weights --format vgg_face_dag ~/weights/vgg_face_dag.pth ~/weights/vgg_face.pt
    python -m model convert-weights --format keras_vggface rcmalli_vggface_tf_vgg16.h5 vgg_face.pt --keep-fc8
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from stimuli.contracts.cli import add_force, command_parser
from stimuli.contracts.errors import InputError, cli_errors
from stimuli.contracts.outputs import check_outside_data_root, move_aside
from stimuli.contracts.provenance import Provenance, atomic_write_bytes, record_run

from .vggface import FORMATS, vggface_state_dict

__all__ = ["COMMAND", "provenance_path", "convert_weights"]


COMMAND = "model convert-weights"  # recorded in the provenance: only this command replaces OUT


DESCRIPTION = (  # the command's --help text
    "Convert VGG-Face weights (vgg_face_dag.pth or the keras-vggface VGG16 .h5) to a "
    "torchvision-layout VGG-16 state_dict with the file's preprocessing folded into "
    "conv1 (use it with pretrain: file:OUT.pt). Nothing is downloaded.")


def provenance_path(out: str | Path) -> Path:
    """Where the provenance of a converted file lives: ``OUT.provenance.json`` beside it.

    Parameters
    ----------
    out : str or Path
        The converted file.

    Returns
    -------
    Path
        Its provenance file.
    """
    return Path(out).with_suffix(".provenance.json")


def _check_replaceable(out: Path, force: bool) -> None:
    """Refuse to replace ``out`` unless ``--force`` and this command made it."""
    if not out.exists() and not out.is_symlink():
        return
    if out.is_dir():
        raise InputError(f"{out} is a folder; give the file to write (e.g. {out / 'vgg_face.pt'})")
    if not force:
        raise InputError(f"{out} exists already; add --force to replace it")
    if not out.is_file():
        raise InputError(f"{out}: refusing to replace it: it is not a file; nothing was changed")
    try:
        made_by = json.loads(provenance_path(out).read_text()).get("tool")
    except (OSError, ValueError, AttributeError):
        made_by = None
    if made_by != COMMAND:
        raise InputError(f"{out}: refusing to replace it: no {provenance_path(out).name} says "
                         f"`{COMMAND}` made it; nothing was changed (choose another OUT)")


def convert_weights(source: str | Path, out: str | Path, fmt: str = "auto", *, keep_fc8: bool = False,
                    force: bool = False, command: list[str] | None = None) -> Path:
    """Convert ``source`` and write ``out`` (a state_dict) and its provenance.

    Every check (the input, the output place) comes before anything is written.

    Parameters
    ----------
    source : str or Path
        The VGG-Face file.
    out : str or Path
        The state_dict to write.
    fmt : str
        ``auto`` or a format of :data:`model.vggface.FORMATS`.
    keep_fc8 : bool
        Keep the 2622-identity head as ``classifier.6``.
    force : bool
        Replace ``out`` when an earlier convert-weights made it (moved aside).
    command : list of str, optional
        The command line recorded.

    Returns
    -------
    Path
        ``out``.
    """
    source, out = Path(source), Path(out)
    if out.exists() and source.exists() and out.resolve() == source.resolve():
        raise InputError(f"{out}: the output would replace the input; choose another OUT")
    check_outside_data_root(out)
    _check_replaceable(out, force)
    prov = Provenance(command=command, tool=COMMAND,
                      config={"format": fmt, "keep_fc8": keep_fc8, "input": str(source), "output": str(out)})
    state, info = vggface_state_dict(source, fmt, keep_fc8=keep_fc8)
    prov.add_input(source, info["sha256"])
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    if out.exists():
        aside = move_aside(out)
        print(f"note: the earlier {out} was moved aside to {aside}", file=sys.stderr)
        if provenance_path(out).exists():
            move_aside(provenance_path(out))
    atomic_write_bytes(out, data)
    prov.extra.update(weights=info, output_sha256=hashlib.sha256(data).hexdigest(),
                      keys=len(state))
    record_run(provenance_path(out).parent, prov, name=provenance_path(out).name)
    return out


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m model convert-weights`` (its ``--help``)."""
    parser = command_parser("model", "convert-weights", DESCRIPTION)
    parser.add_argument("source", metavar="IN", help="the VGG-Face file")
    parser.add_argument("out", metavar="OUT.pt", help="the state_dict to write")
    parser.add_argument("--format", dest="fmt", choices=("auto", *FORMATS), default="auto",
                        help="the file's layout (default: auto, an HDF5 file is keras_vggface)")
    parser.add_argument("--keep-fc8", action="store_true",
                        help="keep FC8, the 2622-identity head, as classifier.6 (dropped by default)")
    add_force(parser)  # replaces OUT.pt only when an earlier convert-weights made it
    return parser


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m model convert-weights`` with ``argv`` (default: the command line); the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    out = convert_weights(args.source, args.out, args.fmt, keep_fc8=args.keep_fc8, force=args.force,
                          command=["python", "-m", "model", "convert-weights", *argv])
    print(f"wrote {out} (torchvision VGG-16 layout, FC8 {'kept' if args.keep_fc8 else 'dropped'}); "
          f"use it with 'pretrain: file:{out}' (provenance: {provenance_path(out)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
