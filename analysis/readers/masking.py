"""Reading the masking tables of a ``python -m model evaluate`` output folder.

Examples
--------
>>> read_masking("results/evaluate/demo")   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from stimuli.contracts.errors import InputError

from ..masking_transfer import MaskingTables, evaluate_command, is_baseline_source

__all__ = ["read_masking"]


def _read_csv(path: Path, columns: Sequence[str]) -> pd.DataFrame:
    try:
        table = pd.read_csv(path)
    except FileNotFoundError:
        raise InputError(f"{path}: not found") from None
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: unreadable ({error})") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    return table


def read_masking(folder: str | Path, mode: str | None = None) -> MaskingTables:
    """Read the masking tables of an evaluate folder (``tables/accuracy.csv``,
    ``transfer_<mode>.csv``, ``asymmetry_<mode>.csv``, and ``aopc.csv`` when there); ``mode``
    defaults to ``remove`` when present. A missing folder or file, or a missing column, is one
    InputError naming it. Outputs of an older evaluate (no bootstrap columns) are read too:
    :attr:`MaskingTables.bootstrap` says which.

    Parameters
    ----------
    folder : path
        The evaluate output folder (``<out>/evaluate/<name>``).
    mode : str, optional
        The masking mode (``remove`` or ``keep``).

    Returns
    -------
    MaskingTables
        The tables read.
    """
    folder = Path(folder)
    tables = folder / "tables"
    if not tables.is_dir():
        raise InputError(f"{folder}: no model evaluate output here; make it with: {evaluate_command(folder)}")
    modes = sorted(p.stem.split("_", 1)[1] for p in tables.glob("transfer_*.csv"))
    if not modes:
        raise InputError(f"{tables}: no transfer_<mode>.csv (was masking left out of the evaluate config?)")
    mode = mode or ("remove" if "remove" in modes else modes[0])
    if mode not in modes:
        raise InputError(f"{tables}: no transfer_{mode}.csv (found modes: {', '.join(modes)})")
    accuracy = _read_csv(tables / "accuracy.csv", ("source", "target", "mode", "fraction", "accuracy"))
    transfer = _read_csv(tables / f"transfer_{mode}.csv", ("source", "target", "aopc", "relative"))
    asymmetry = _read_csv(tables / f"asymmetry_{mode}.csv", ("a", "b", "m_ab", "m_ba", "asymmetry"))
    aopc = _read_csv(tables / "aopc.csv", ("source", "target", "mode", "aopc")) \
        if (tables / "aopc.csv").is_file() else None
    for name, table in (("accuracy", accuracy), (f"transfer_{mode}", transfer)):
        value = "accuracy" if name == "accuracy" else "aopc"
        bad = ~np.isfinite(pd.to_numeric(table[value], errors="coerce"))
        if bad.any():
            raise InputError(f"{tables / (name + '.csv')}, line {int(np.flatnonzero(bad)[0]) + 2}: "
                             f"'{value}' is not a finite number")
    # the variants' maps only: baselines are columns of the transfer table (rows in older outputs)
    transfer = transfer[[not is_baseline_source(s) for s in transfer["source"]]].reset_index(drop=True)
    return MaskingTables(folder, mode, accuracy, transfer, asymmetry, aopc)
