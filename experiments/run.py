"""``python -m experiments run CONFIG ...``: run or resume one session (the engine's command line).

People answer on the PsychoPy display; ``template``, ``model:VARIANT`` (bubbles) and
``simulated`` (similarity) observers run headless into ``results/simulated/``. The session
itself is :func:`experiments.engine.run_session`. Exit status: 0 complete, 2 bad input (one
line), 3 ended early by the quit key (one line with the command that resumes it).

Examples
--------
::

    python -m experiments run experiments/bubbles_gender.yaml --participant 01 --session 1
    python -m experiments run experiments/bubbles_gender.yaml --participant tmpl1 --session 1 \\
        --observer template:eyes --seed 3
    python -m experiments run experiments/bubbles_gender.yaml --participant 01 --session 1 --resume
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from stimuli.contracts.cli import add_results, command_parser
from stimuli.contracts.errors import cli_errors

from .engine import DEFAULT_ROOTS, run_session
from .participant import ask_participant_for, check_participant_fields
from .task import NA

__all__ = ["EXIT_STOPPED", "build_parser", "resume_command", "simulated_labels"]

EXIT_STOPPED = 3  # the session was ended early (quit key): incomplete, resumable
# participants.tsv columns the command line (or the dialog) fills in
PARTICIPANT_FIELDS = {"age": "age in years (a number from 1 to 120)", "sex": "sex", "handedness": "handedness"}
# options of the PsychoPy display (people only)
DISPLAY_OPTIONS: dict[str, dict[str, str]] = {
    "--windowed": {"action": "store_true", "help": "a window instead of full screen"},
    "--capture": {"metavar": "DIR", "help": "save the first frame of each trial's stimulus as DIR/trial-NNNN.png "
                                            "(the screen as shown, e.g. for figures; people only)"},
    "--allow-screen-mismatch": {"action": "store_true",
                                "help": "run even when the window size or the measured refresh rate differs "
                                        "from the YAML's screen (the mismatch is recorded in the sidecar)"},
}


def build_parser() -> argparse.ArgumentParser:
    """The ``run`` command's options.

    Returns
    -------
    argparse.ArgumentParser
        The parser of ``python -m experiments run``.
    """
    run = command_parser("experiments", "run",
        "Run one session of an experiment YAML. People answer on screen; 'template' and "
        "'model:VARIANT' observers run headless into results/simulated/. An existing "
        "session is never overwritten: add --resume to continue it. Exit status: 0 complete, "
        "2 bad input (one line), 3 ended early by the quit key (one line with the command that "
        "resumes it).")
    run.add_argument("config", help="experiment YAML, e.g. experiments/bubbles_gender.yaml")
    run.add_argument("--participant", help="participant label (letters and digits); asked in a dialog "
                                           "when missing and a screen is present; simulated observers: "
                                           "the observer's name (e.g. template)")
    run.add_argument("--session", help="session label (letters and digits), e.g. 1; simulated observers: "
                                       "the participant's next session number")
    run.add_argument("--observer", default="human",
                     help="human (default); bubbles: template, template:REGION (e.g. template:eyes) or "
                          "model:VARIANT; similarity: simulated or model:VARIANT")
    run.add_argument("--data-root", help="where trial files go (default: participants/ for people, "
                                         "results/simulated/ for simulated observers)")
    add_results(run)
    run.add_argument("--resume", action="store_true",
                     help="continue an unfinished session at its first unanswered trial")
    run.add_argument("--seed", type=int, help="session seed (default: the config's, else a fresh one; "
                                              "always recorded in the sidecar)")
    for field, text in PARTICIPANT_FIELDS.items():
        run.add_argument(f"--{field}", help=f"participants.tsv: {text}")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    for flag, options in DISPLAY_OPTIONS.items():
        run.add_argument(flag, **options)
    return run


def simulated_labels(observer: str, participant: str | None, session: str | None,
                     data_root: str | os.PathLike) -> tuple[str, str]:
    """Participant and session of a simulated observer's run when the command line leaves them out.

    The participant defaults to the observer's name in letters and digits (``template:eyes`` ->
    ``templateeyes``), the session to the next number that participant has no folder for, so
    ``python -m experiments run CONFIG --observer template`` starts a new session every time.

    Parameters
    ----------
    observer : str
        The ``--observer`` spec.
    participant, session : str or None
        The labels given on the command line (None: left out).
    data_root : str or os.PathLike
        Where the observer's sessions go.

    Returns
    -------
    tuple of str
        The participant and session labels.

    Examples
    --------
    >>> simulated_labels("template:eyes", None, None, "/nonexistent")
    ('templateeyes', '1')
    """
    if participant is None:
        participant = "".join(c for c in observer if c.isascii() and c.isalnum())[:64] or "simulated"
    if session is None:
        taken = [int(p.name[4:]) for p in Path(data_root).glob(f"sub-{participant}/ses-*")
                 if p.name[4:].isdigit()]
        session = str(max(taken, default=0) + 1)
    return participant, session


def resume_command(args: argparse.Namespace) -> str:
    """The exact command that continues the session ``args`` started (for the Escape line).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``run`` options of the stopped session.

    Returns
    -------
    str
        A shell-quoted ``python -m experiments run ... --resume`` line.
    """
    parts = ["python", "-m", "experiments", "run", str(args.config), "--participant", str(args.participant),
             "--session", str(args.session)]
    if args.observer != "human":
        parts += ["--observer", args.observer]
    if args.data_root is not None:
        parts += ["--data-root", str(args.data_root)]
    if args.results != "results":
        parts += ["--results", str(args.results)]
    if args.capture is not None:
        parts += ["--capture", str(args.capture)]
    for flag in ("windowed", "allow_screen_mismatch", "no_progress"):
        if getattr(args, flag):
            parts.append("--" + flag.replace("_", "-"))
    return shlex.join([*parts, "--resume"])


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m experiments run`` with ``argv`` (default: ``sys.argv[2:]``).

    The exit status: 0 complete, 3 ended by the quit key, 2 bad input (one line).
    """
    argv = list(sys.argv[2:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    info = check_participant_fields({"age": args.age, "sex": args.sex, "handedness": args.handedness})
    if args.observer != "human" and not args.resume and (args.participant is None or args.session is None):
        args.participant, args.session = simulated_labels(
            args.observer, args.participant, args.session, args.data_root or DEFAULT_ROOTS["simulated"])
    if args.participant is None or args.session is None:
        answers = ask_participant_for(args)
        args.participant, args.session = answers.pop("participant"), answers.pop("session")
        info.update({k: v for k, v in answers.items() if v})
    result = run_session(
        args.config, args.participant, args.session, observer=args.observer, data_root=args.data_root,
        results=args.results, resume=args.resume, seed=args.seed, windowed=args.windowed,
        progress=False if args.no_progress else None,
        participant_info={k: (v if v not in (None, "") else NA) for k, v in info.items()},
        capture=args.capture, command=[sys.executable, "-m", "experiments", "run", *argv],
        allow_screen_mismatch=args.allow_screen_mismatch,
    )
    if result.status == "complete":
        print(f"session complete: {result.trials_done} trials in {result.path}")
        return 0
    print(f"session incomplete: stopped after {result.trials_done} of {result.trials_planned} trials (saved in "
          f"{result.path}); resume it with: {resume_command(args)}", file=sys.stderr)
    return EXIT_STOPPED
