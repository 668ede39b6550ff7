"""Experiment YAMLs: the settings every task shares, and the loader that picks the task.

An experiment YAML names its ``paradigm`` (``bubbles``; a task plugin registers more), a BIDS
``task`` label and the prepared stimulus set, and then the shared sections below (screen,
timing, keys, text) plus the paradigm's own (for bubbles: see :mod:`experiments.bubbles`).
:func:`load_experiment` validates the whole file on load: unknown keys (with "did you mean"),
wrong types and impossible values fail with one line naming the file and the key, before
anything else happens.

Limits (refused on load, never clamped): seeds 0..2**63-1; condition names and class labels
letters, digits, ``_`` and ``-`` (they name files and fill trial-file cells); at most 10,000
trials a block, 1,000 blocks (blocks x repeats), 1,000 practice trials, 100,000 trials a
session and 10,000 bubbles in any bubble count (``MAX_*`` below).

Examples
--------
>>> config = load_experiment("experiments/bubbles_gender.yaml")   # doctest: +SKIP
>>> config.paradigm, config.task, config.responses                 # doctest: +SKIP
('bubbles', 'gender', {'female': 'f', 'male': 'j'})
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from typing import Any

from stimuli.contracts.config import from_dict, load_yaml, require
from stimuli.contracts.errors import InputError

from .paradigms import PARADIGMS

__all__ = [
    "KEY_NAMES",
    "KEY_BACKENDS",
    "MAX_SEED",
    "MAX_TRIALS_PER_BLOCK",
    "MAX_BLOCKS",
    "MAX_PRACTICE_TRIALS",
    "MAX_SESSION_TRIALS",
    "MAX_BUBBLES",
    "check_seed",
    "Screen",
    "Timing",
    "Keys",
    "Texts",
    "ExperimentConfig",
    "load_experiment",
    "check_key_name",
    "check_response_keys",
]

# Key names as psychopy.event reports them (pyglet's, lower case): single letters and digits,
# plus these. A typo such as 'esc' fails on load instead of never matching a key press.
KEY_NAMES = frozenset(
    "space return escape tab backspace left right up down comma period slash semicolon "
    "apostrophe bracketleft bracketright backslash minus equal grave lshift rshift lctrl rctrl "
    "num_0 num_1 num_2 num_3 num_4 num_5 num_6 num_7 num_8 num_9 num_enter "
    "f1 f2 f3 f4 f5 f6 f7 f8 f9 f10 f11 f12".split()
)


# Documented upper bounds: a value past one is refused on load (never clamped), so a typo such
# as 'trials_per_block: 1000000000' fails in one line instead of filling the memory.
MAX_SEED = 2**63 - 1  # seeds are 63-bit non-negative integers (exact in JSON and numpy)
MAX_TRIALS_PER_BLOCK = 10_000
MAX_BLOCKS = 1_000  # blocks of a session: len(design.blocks) x design.repeats
MAX_PRACTICE_TRIALS = 1_000
MAX_SESSION_TRIALS = 100_000  # all trials of a session, practice included
MAX_BUBBLES = 10_000  # any number of bubbles a config names (start, practice, min, max)


def check_seed(seed: object, what: str = "seed") -> None:
    """Refuse a seed that is not an integer in ``0..MAX_SEED`` (``None`` passes: a fresh seed).

    Parameters
    ----------
    seed : object
        The seed given (an int, or None).
    what : str
        How the message names it (``--seed``, ``seed``).

    Raises
    ------
    InputError
        One line when the seed is out of range or not an integer.

    Examples
    --------
    >>> check_seed(-1, "--seed")
    Traceback (most recent call last):
    stimuli.contracts.errors.InputError: --seed -1: must be an integer from 0 to 9223372036854775807
    """
    if seed is None:
        return
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise InputError(f"{what} {seed!r}: must be an integer from 0 to {MAX_SEED}")


def check_key_name(key: str) -> bool:
    """Whether ``key`` is a key name PsychoPy can report.

    Parameters
    ----------
    key : str
        A key name from the YAML.

    Returns
    -------
    bool
        True for a letter, a digit or one of :data:`KEY_NAMES`.

    Examples
    --------
    >>> check_key_name("space"), check_key_name("esc")
    (True, False)
    """
    return bool(re.fullmatch(r"[a-z0-9]", key)) or key in KEY_NAMES


@dataclass(kw_only=True)
class Screen:
    """The monitor: its physical size and distance give degrees of visual angle (psychopy.monitors).

    Parameters
    ----------
    monitor : str
        PsychoPy Monitor Center name (a saved calibration is used and recorded).
    width_cm, distance_cm : float
        Screen width and viewing distance.
    resolution : list of int
        [width, height] in pixels.
    fullscreen : bool
        Full screen (``--windowed`` overrides).
    refresh_hz : float
        The frame rate durations are counted in.
    refresh_tolerance : float, optional
        Allowed relative difference of the measured rate (null: not compared).
    background : float, optional
        Window grey in [0, 1] (null: the stimulus set's background).
    """

    monitor: str = "bubbles-lab"
    width_cm: float = 53.0
    distance_cm: float = 57.0
    resolution: list[int] = field(default_factory=lambda: [1920, 1080])
    fullscreen: bool = True
    refresh_hz: float = 60.0
    # the measured refresh may differ from refresh_hz by this fraction; null: not compared (a
    # virtual display such as Xvfb has no refresh rate); checked before the first trial
    refresh_tolerance: float | None = 0.02
    background: float | None = None  # grey 0..1 of the window; None: the stimulus set's background

    def __post_init__(self) -> None:
        require(self.width_cm > 0, "width_cm", "must be a positive width of the screen in cm")
        require(self.distance_cm > 0, "distance_cm", "must be a positive viewing distance in cm")
        require(len(self.resolution) == 2 and all(v > 0 for v in self.resolution), "resolution",
                "must be [width, height] in pixels")
        require(self.refresh_hz > 0, "refresh_hz", "must be a positive frame rate in Hz")
        require(self.refresh_tolerance is None or 0 <= self.refresh_tolerance < 1, "refresh_tolerance",
                "must be a fraction of refresh_hz from 0 to 1 (e.g. 0.02), or null to skip the check")
        require(self.background is None or 0 <= self.background <= 1, "background",
                "must be a grey level in [0, 1] or null")


@dataclass(kw_only=True)
class Timing:
    """Durations in frames (counted flips), so they are exact at any refresh rate.

    Parameters
    ----------
    fixation_frames, stimulus_frames, iti_frames, feedback_frames : int
        Durations in frames.
    response_timeout_s : float, optional
        Seconds to wait for an answer (null: wait).
    """

    fixation_frames: int = 30
    stimulus_frames: int = 30
    iti_frames: int = 30  # blank between trials; the next trial is composed during it
    feedback_frames: int = 30
    response_timeout_s: float | None = None  # None: wait for an answer

    def __post_init__(self) -> None:
        for name in ("fixation_frames", "iti_frames", "feedback_frames"):
            require(getattr(self, name) >= 0, name, "must be a non-negative number of frames")
        require(self.stimulus_frames >= 1, "stimulus_frames", "must be at least 1 frame")
        require(self.response_timeout_s is None or self.response_timeout_s > 0, "response_timeout_s",
                "must be a positive number of seconds or null (wait for an answer)")
        require(self.iti_frames >= 1, "iti_frames", "must be at least 1 frame (the next trial is composed then)")


KEY_BACKENDS = ("event", "ptb")


@dataclass(kw_only=True)
class Keys:
    """Keys, and how they are read: ``event`` (pyglet events, one frame of RT resolution; what the
    virtual-display tests drive) or ``ptb`` (``psychopy.hardware.keyboard`` on PsychToolbox's HID
    backend, timestamped by the HID device; needs ``psychtoolbox``).

    Parameters
    ----------
    quit, proceed : list of str
        Keys that stop the session, and that leave instruction screens.
    backend : {"event", "ptb"}
        How keys are read.
    """

    quit: list[str] = field(default_factory=lambda: ["escape"])
    proceed: list[str] = field(default_factory=lambda: ["space"])  # leaves instruction screens
    backend: str = "event"

    def __post_init__(self) -> None:
        if self.backend not in KEY_BACKENDS:
            close = difflib.get_close_matches(self.backend, KEY_BACKENDS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            require(False, "backend", f"must be one of {', '.join(KEY_BACKENDS)}, got {self.backend!r}{hint}")
        for name in ("quit", "proceed"):
            keys = getattr(self, name)
            require(len(keys) > 0, name, "needs at least one key")
            bad = [k for k in keys if not check_key_name(k)]
            require(not bad, name, f"has unknown key name '{bad[0] if bad else ''}' "
                                   "(use psychopy names: a-z, 0-9, space, escape, left, ...)")
        clash = set(self.quit) & set(self.proceed)
        require(not clash, "proceed", f"uses key '{min(clash) if clash else ''}', which is also a quit key")


@dataclass(kw_only=True)
class Texts:
    """Screens shown to people. ``{keys}`` is replaced by the response keys, e.g. 'F = female'.

    Parameters
    ----------
    instructions, practice_end, block_break, end, quit : str
        The screens' texts (``{keys}``, ``{done}``, ``{blocks}`` are filled in).
    """

    instructions: str = ("Each face is seen through small windows.\n\nAnswer as accurately as you can: "
                         "{keys}\n\nPress space to start.")
    practice_end: str = "Practice is over. The experiment starts now.\n\nPress space to go on."
    block_break: str = "Take a short break.\n\nBlock {done} of {blocks} done.\n\nPress space to go on."
    end: str = "Thank you! The session is over."
    quit: str = "Session stopped; your answers are saved."


@dataclass(kw_only=True)
class ExperimentConfig:
    """What every experiment YAML has; a paradigm's config class extends it.

    Parameters
    ----------
    paradigm : str
        The registered paradigm (:data:`experiments.paradigms.PARADIGMS`).
    task : str
        BIDS task label of the trial file (letters and digits).
    stimuli : str
        Prepared stimulus set name (or folder).
    seed : int, optional
        Session seed (null: a fresh one per session, recorded in the sidecar).
    description : str, optional
        The sidecar's ``TaskDescription`` (null: one built for the paradigm).
    stimulus_deg : float
        Stimulus width in degrees of visual angle.
    feedback : bool
        Show correct/wrong after each answer.
    screen, timing, keys, text
        The sections above.
    """

    paradigm: str
    task: str  # BIDS task label of the trial file: letters and digits
    stimuli: str  # prepared stimulus set name (or folder)
    seed: int | None = None  # None: a fresh seed per session, recorded in the sidecar
    description: str | None = None  # the sidecar's TaskDescription (BIDS); None: one built for the paradigm
    stimulus_deg: float = 6.0  # stimulus width in degrees of visual angle
    feedback: bool = True
    screen: Screen = field(default_factory=Screen)
    timing: Timing = field(default_factory=Timing)
    keys: Keys = field(default_factory=Keys)
    text: Texts = field(default_factory=Texts)

    def __post_init__(self) -> None:
        require(bool(re.fullmatch(r"[A-Za-z0-9]{1,64}", self.task)), "task",
                "must be 1 to 64 letters and digits (it names the trial file, BIDS task label)")
        require(self.stimulus_deg > 0, "stimulus_deg", "must be a positive size in degrees")
        require(self.seed is None or 0 <= self.seed <= MAX_SEED, "seed",
                f"must be an integer from 0 to {MAX_SEED} or null")


def check_response_keys(responses: dict[str, str], keys: Keys, key_path: str = "responses") -> None:
    """Response keys: known names, one per answer, none of them a quit key (raises ConfigValueError).

    Parameters
    ----------
    responses : dict
        answer -> key.
    keys : Keys
        The YAML's ``keys`` section (its quit keys may not answer).
    key_path : str
        The key named in a refusal (``responses``, ``responses.triplet``).
    """
    require(len(responses) >= 2, key_path, "needs at least two answers (answer: key)")
    values = list(responses.values())
    bad = [k for k in values if not check_key_name(k)]
    require(not bad, key_path, f"has unknown key name '{bad[0] if bad else ''}' "
                               "(use psychopy names: a-z, 0-9, space, left, ...)")
    dupes = sorted({k for k in values if values.count(k) > 1})
    require(not dupes, key_path, f"gives key '{dupes[0] if dupes else ''}' to more than one answer")
    clash = sorted(set(values) & set(keys.quit))
    require(not clash, key_path, f"uses key '{clash[0] if clash else ''}', which is also a quit key (keys.quit)")


def load_experiment(path: str | os.PathLike) -> Any:
    """Load and validate an experiment YAML into its paradigm's config dataclass.

    Parameters
    ----------
    path : str or os.PathLike
        The experiment YAML; its ``paradigm`` names a registered paradigm
        (:data:`experiments.paradigms.PARADIGMS`).

    Returns
    -------
    ExperimentConfig
        An instance of the paradigm's ``config_class`` (e.g. ``BubblesConfig``).

    Raises
    ------
    InputError
        One line naming the file and the key: a missing or unknown paradigm, an unknown key,
        a wrong type or an impossible value.
    """
    data = load_yaml(path)
    known = PARADIGMS
    name = data.get("paradigm")
    if name is None:
        raise InputError(f"{path}: missing required key 'paradigm' (one of {', '.join(sorted(known))})")
    if name not in known:
        raise InputError(f"{path}: key 'paradigm' must be one of {', '.join(sorted(known))}, got {name!r}")
    return from_dict(known[name].config_class, data, str(path))
