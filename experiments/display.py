"""The PsychoPy display: the human observer. The one module of the platform that imports psychopy.

One trial, frame by frame (every duration is a count of flips):

1. inter-trial interval (blank): it began when the previous trial ended; the engine composed
   this trial's stimulus meanwhile (mask + face + background), and the texture is uploaded
   here, still in the blank, before the remaining blank frames;
2. fixation cross, ``timing.fixation_frames``;
3. stimulus, ``timing.stimulus_frames``: the keyboard buffer is cleared and the response
   clock reset by ``win.callOnFlip`` on the first stimulus flip (the onset); dropped frames
   are counted over these flips (``win.recordFrameIntervals``);
4. blank until an answer (or ``timing.response_timeout_s``); an answer during the stimulus
   counts, and the stimulus still stays its full duration (same exposure on every trial).
   A trial that asks to ``hold`` its images (similarity judgements) keeps them on screen
   until the answer instead of blanking;
5. feedback (optional), then the next blank starts.

A trial with ``clicks`` (one answer per image) also takes a left mouse click on an image as
its answer: the pointer is shown from the onset, ``psychopy.event.Mouse`` click times are
reset on the onset flip (a click's time is taken by pyglet when the press is dispatched), and
a click outside every image is ignored. The row's ``response_key`` is then ``mouse``.

Keys come from ``keys.backend`` (:mod:`experiments.keys`): ``event`` (the default:
``psychopy.event.getKeys``, pyglet events timestamped at dispatch, polled every frame; what the
Xvfb + xdotool tests drive) or ``ptb`` (``psychopy.hardware.keyboard`` on PsychToolbox's HID
backend; refused in one line when ``psychtoolbox`` cannot be imported, since without it
PsychoPy silently falls back to the event queue).

Before the first trial the window is checked against the YAML's screen (:mod:`experiments.screen`):
its size in pixels and the measured refresh rate; a mismatch refuses the session in one line
(the window is closed first) unless ``allow_screen_mismatch``. Every flip of a trial is timed
(:class:`experiments.frames.FrameTimes`, returned with the answer) for the events file. Images are drawn with row 0 at
the top (ImageStim puts array row 0 at the bottom, so arrays are flipped). A quit key
(``keys.quit``) on any screen stops the session cleanly: every answered trial is saved.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from psychopy import core, event, monitors, visual
from psychopy.tools import monitorunittools

from stimuli.contracts.errors import InputError

from .dialog import gui_problem, require_screen
from .frames import FrameTimes
from .keys import EventKeys, PtbKeys, ptb_problem
from .observers.base import Observer
from .screen import mismatch_line, monitor_record, screen_problems, screen_record
from .task import QuitRequested, Response, Trial

__all__ = ["Display", "ask_participant", "to_texture"]


def to_texture(image: np.ndarray) -> np.ndarray:
    """A [0, 1] grey image (row 0 at the top) as an ImageStim array: [-1, 1], row 0 at the bottom.

    Parameters
    ----------
    image : (H, W) array
        Grey levels in [0, 1], row 0 at the top.

    Returns
    -------
    (H, W) float32 array
        Values in [-1, 1], row 0 at the bottom.
    """
    return np.flipud(np.asarray(image, dtype=np.float32)) * 2.0 - 1.0


class Display(Observer):
    """A PsychoPy window that shows a task's trials to a person and collects key presses.

    Parameters
    ----------
    task : Task
        The loaded task (its config's screen, timing and keys).
    windowed : bool
        A window instead of full screen.
    capture : str or os.PathLike, optional
        Save each trial's first stimulus frame as ``trial-NNNN.png`` here.
    origin_unix : float, optional
        The session's first start (onsets count from it, also after a resume).
    allow_screen_mismatch : bool
        Run (and record the mismatch) when the window differs from the YAML's screen.
    """

    kind = "human"
    batch = 1

    def __init__(self, task: Any, *, windowed: bool = False, capture: str | os.PathLike | None = None,
                 origin_unix: float | None = None, allow_screen_mismatch: bool = False) -> None:
        config = task.config
        self.task = task
        self.config = config
        screen = config.screen
        self.key_source = open_keys(config.keys.backend)  # a missing psychtoolbox stops us before the window
        calibrated = screen.monitor in monitors.getAllMonitors()  # saved in PsychoPy's Monitor Center
        self.monitor = monitors.Monitor(screen.monitor, width=screen.width_cm, distance=screen.distance_cm,
                                        autoLog=False)
        self.monitor.setSizePix(list(screen.resolution))
        grey = screen.background if screen.background is not None else task.background
        self.window_grey = float(grey)
        try:
            self.win = visual.Window(
                size=list(screen.resolution), fullscr=screen.fullscreen and not windowed, monitor=self.monitor,
                units="deg", color=[grey * 2 - 1] * 3, colorSpace="rgb", winType="pyglet",
                allowGUI=windowed, checkTiming=False, autoLog=False)
        except Exception as error:  # no display, no GL: one clear line
            raise InputError(f"cannot open the PsychoPy window ({type(error).__name__}: {error}); "
                             "is a screen attached (DISPLAY set)?") from None
        self.win.mouseVisible = False
        self.measured_hz = self.win.getActualFrameRate(nIdentical=10, nMaxFrames=120, nWarmUpFrames=10)
        self.screen_check = self._check_screen(getattr(task, "config_path", "the experiment YAML"),
                                               calibrated=calibrated, allow=allow_screen_mismatch)
        self.win.recordFrameIntervals = True
        self.win.refreshThreshold = 1.0 / screen.refresh_hz + 0.004
        self.keys = config.keys
        self.timing = config.timing
        self.text = visual.TextStim(self.win, text="", height=0.7, wrapWidth=min(30.0, self._width_deg() * 0.8),
                                    color=-1, colorSpace="rgb", autoLog=False)
        self.caption = visual.TextStim(self.win, text="", height=0.7, pos=(0, -config.stimulus_deg * 0.65),
                                       color=-1, colorSpace="rgb", autoLog=False)
        self.fixation = visual.TextStim(self.win, text="+", height=1.0, color=-1, colorSpace="rgb", autoLog=False)
        self.feedback = visual.TextStim(self.win, text="", height=1.0, colorSpace="rgb", autoLog=False)
        self.images: list[visual.ImageStim] = []
        self.mouse: event.Mouse | None = None  # made on the first trial that takes clicks
        self._click_offset = 0.0
        self.session_clock = core.Clock()
        # onsets count from the session's first start, also after a resume (wall-clock origin)
        self.origin = 0.0 if origin_unix is None else time.time() - float(origin_unix)
        self.rt_clock = core.Clock()
        self.blank_clock = core.Clock()  # time since the current blank (inter-trial interval) began
        self.capture = Path(capture) if capture else None
        self._flips: list[float] | None = None  # the current trial's flip times (None between trials)
        if self.capture:
            self.capture.mkdir(parents=True, exist_ok=True)
        self.win.flip()
        self.blank_clock.reset()

    # --- helpers ----------------------------------------------------------------------------
    def _check_screen(self, config_path: str, *, calibrated: bool, allow: bool) -> dict[str, Any]:
        """Compare the open window with the YAML's screen; refuse (closing the window) or record."""
        screen = self.config.screen
        size = [int(v) for v in self.win.size]
        problems = screen_problems(screen.resolution, screen.refresh_hz, size, self.measured_hz,
                                   tolerance=screen.refresh_tolerance)
        if problems and not allow:
            self.close()
            raise InputError(mismatch_line(problems, str(config_path), size, self.measured_hz))
        if problems:
            print(f"warning: screen mismatch allowed: {'; '.join(problems)} (recorded in the sidecar)",
                  file=sys.stderr)
        monitor = monitor_record(screen.monitor, calibrated=calibrated,
                                 calibration_date=self.monitor.getCalibDate() if calibrated else None,
                                 gamma_applied=not getattr(self.win, "useNativeGamma", True))
        return screen_record(requested_size=screen.resolution, requested_hz=screen.refresh_hz,
                             tolerance=screen.refresh_tolerance, measured_size=size, measured_hz=self.measured_hz,
                             mismatch=bool(problems), allowed=allow,
                             pixels_per_degree=monitorunittools.deg2pix(1.0, self.monitor), monitor=monitor)

    def _width_deg(self) -> float:
        return float(monitorunittools.pix2deg(self.win.size[0], self.monitor))

    def _quit_pressed(self) -> bool:
        return bool(self.key_source.get(list(self.keys.quit)))

    def _show(self) -> None:
        """Flip, timing the flip when a trial is on (its frame intervals go to the events file)."""
        self.win.flip()
        if self._flips is not None:
            self._flips.append(self.origin + self.session_clock.getTime())

    def _flip(self) -> None:
        self._show()
        if self._quit_pressed():
            raise QuitRequested

    def _keys(self, allowed: list[str]) -> list[Any]:
        """Key presses since the stimulus onset; one pressed before it (dispatched with the onset
        flip, negative time) anticipated the stimulus and is not an answer."""
        keys = self.key_source.get(allowed, self.rt_clock)
        return [k for k in keys if k[1] >= 0 or k[0] in self.keys.quit]

    def _stim(self, index: int, image: np.ndarray, position: tuple[float, float]) -> visual.ImageStim:
        width = self.config.stimulus_deg
        size = (width, width * image.shape[0] / image.shape[1])
        while len(self.images) <= index:
            self.images.append(visual.ImageStim(self.win, image=np.zeros((2, 2)), units="deg",
                                                colorSpace="rgb", interpolate=True, autoLog=False))
        stim = self.images[index]
        stim.image = to_texture(image)
        stim.size = size
        stim.pos = (position[0] * width, position[1] * size[1])
        return stim

    def stimulus_size_px(self) -> float:
        return float(monitorunittools.deg2pix(self.config.stimulus_deg, self.monitor))

    # --- Observer ---------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        screen = self.config.screen
        return {
            "kind": self.kind,
            "screen": {
                "monitor": screen.monitor, "width_cm": screen.width_cm, "distance_cm": screen.distance_cm,
                "resolution": list(screen.resolution), "window_size": [int(v) for v in self.win.size],
                "fullscreen": bool(self.win._isFullScr) if hasattr(self.win, "_isFullScr") else None,
                "refresh_hz_nominal": screen.refresh_hz,
                "refresh_hz_measured": None if self.measured_hz is None else float(self.measured_hz),
                "stimulus_deg": self.config.stimulus_deg, "stimulus_px": self.stimulus_size_px(),
                "window_grey": self.window_grey, "window_backend": "pyglet",
                "keyboard": self.key_source.description,
                "mouse": "psychopy.event.Mouse left clicks on an image, click times reset on the onset flip "
                         "(trials that take clicks)",
                "dropped_frame_threshold_s": self.win.refreshThreshold,
                "check": self.screen_check,
            },
            "keys_backend": self.key_source.name,
        }

    def message(self, text: str, *, wait: bool = True) -> None:
        self.text.text = text
        self.key_source.clear()
        if not wait:
            for _ in range(60):
                self.text.draw()
                self.win.flip()
            return
        self._until_proceed(self.text)
        self._blank()

    def familiarise(self, items: Sequence[tuple[np.ndarray, str]]) -> None:
        for image, caption in items:
            stim = self._stim(0, image, (0.0, 0.0))
            self.caption.text = caption
            self.key_source.clear()
            self._until_proceed(stim, self.caption)
        self._blank()

    def _until_proceed(self, *shown: Any) -> None:
        """Show ``shown`` until a proceed key (a quit key stops the session)."""
        while True:
            for stim in shown:
                stim.draw()
            self._flip()
            if self.key_source.get(list(self.keys.proceed)):
                break

    def _blank(self) -> None:
        """Clear the screen; the inter-trial blank starts now."""
        self.win.flip()
        self.blank_clock.reset()

    def respond(self, trials: Sequence[Trial]) -> list[Response]:
        try:
            return [self._run(trial) for trial in trials]
        finally:
            self._flips = None  # flips between trials (instructions, breaks) are not timed

    def _clicked(self, trial: Trial, stims: Sequence[visual.ImageStim]) -> list[tuple[str, float, str]]:
        """A left click on an image since the onset: [("mouse", rt, answer)], else []."""
        _, times = self.mouse.getPressed(getTime=True)
        if times[0] <= 0:
            return []
        x, y = self.mouse.getPos()
        rt = self._click_offset + float(times[0])
        for stim, answer in zip(stims, trial.clicks):
            (cx, cy), (w, h) = stim.pos, stim.size
            if answer is not None and abs(x - cx) <= w / 2 and abs(y - cy) <= h / 2:
                return [("mouse", rt, answer)]
        # outside every image: not an answer; keep measuring from the onset
        self._click_offset = self.rt_clock.getTime()
        self.mouse.clickReset()
        return []

    def _answers(self, trial: Trial, allowed: list[str], stims: Sequence[visual.ImageStim]) -> list[Any]:
        """Answers since the onset, as (key, rt, answer): key presses, then a click on an image."""
        keys = [(k, t, trial.choices.get(k)) for k, t in self._keys(allowed)]
        if keys or not trial.clicks:
            return keys
        return self._clicked(trial, stims)

    def _run(self, trial: Trial) -> Response:
        timing = self.timing
        stims = [self._stim(i, image, pos) for i, (image, pos) in enumerate(zip(trial.images, trial.positions))]
        flips = self._flips = []
        # the rest of the inter-trial interval (the stimulus was composed during its first part)
        elapsed = int(self.blank_clock.getTime() * self.config.screen.refresh_hz)
        for _ in range(max(0, timing.iti_frames - elapsed)):
            self._flip()
        for _ in range(timing.fixation_frames):
            self.fixation.draw()
            self._flip()
        allowed = list(trial.choices) + list(self.keys.quit)
        pressed: list[Any] = []
        onset: dict[str, float] = {}
        self.key_source.clear()
        self.win.callOnFlip(self.rt_clock.reset)
        self.win.callOnFlip(lambda: onset.setdefault("t", self.origin + self.session_clock.getTime()))
        if trial.clicks:
            if self.mouse is None:
                self.mouse = event.Mouse(visible=False, win=self.win)
            self._click_offset = 0.0
            self.win.callOnFlip(self.mouse.clickReset)
            self.win.mouseVisible = True
        dropped = self.win.nDroppedFrames
        for frame in range(timing.stimulus_frames):
            for stim in stims:
                stim.draw()
            if frame == 0 and self.capture is not None:
                self.win.getMovieFrame(buffer="back")
            self._show()
            if not pressed:
                pressed = self._answers(trial, allowed, stims)
        dropped = self.win.nDroppedFrames - dropped
        while not pressed:
            if timing.response_timeout_s is not None and self.rt_clock.getTime() > timing.response_timeout_s:
                break
            if trial.hold:
                for stim in stims:
                    stim.draw()
            self._show()
            pressed = self._answers(trial, allowed, stims)
        self.win.mouseVisible = False
        if pressed and pressed[0][0] in self.keys.quit:
            raise QuitRequested
        key, rt, answer = (pressed[0][0], float(pressed[0][1]), pressed[0][2]) if pressed else (None, None, None)
        if self.config.feedback and trial.truth is not None:
            right = answer == trial.truth
            self.feedback.text = "correct" if right else "wrong"
            self.feedback.color = [-1, 0.4, -1] if right else [0.6, -1, -1]
            for _ in range(timing.feedback_frames):
                self.feedback.draw()
                self._flip()
        self._show()  # the next inter-trial interval begins (its first flip ends the trial's timing)
        self._flips = None
        self.blank_clock.reset()
        if self.capture is not None and self.win.movieFrames:
            self.win.movieFrames.pop().save(self.capture / f"trial-{trial.number:04d}.png")
        frames = FrameTimes(tuple(flips), float(self.win.refreshThreshold))
        return Response(answer, rt_s=rt, onset_s=onset.get("t"), dropped_frames=int(dropped),
                        extra={"key": key, "frames": frames})

    def close(self) -> None:
        try:
            self.win.close()
        except Exception:  # closing twice or after a failed start: nothing left to release
            pass


def open_keys(backend: str) -> EventKeys | PtbKeys:
    """The key source of ``keys.backend``; ``ptb`` without an importable psychtoolbox is one line.

    Parameters
    ----------
    backend : str
        ``event`` or ``ptb`` (``keys.backend`` of the YAML).

    Returns
    -------
    EventKeys or PtbKeys
        The key source the display polls.
    """
    if backend != "ptb":
        return EventKeys(event)
    problem = ptb_problem()
    keyboard = None
    if problem is None:
        from psychopy.hardware import keyboard  # lazy: loads psychtoolbox's HID backend (ptb only)

        if not keyboard.havePTB:
            problem = "psychopy.hardware.keyboard found no PsychToolbox backend"
    if problem:
        raise InputError(f"keys.backend ptb: psychtoolbox cannot be used here ({problem}); install it with its "
                         "system libraries (pip install psychtoolbox; on Linux also libjack, libportaudio and "
                         "libusb) or set keys.backend: event")
    source = keyboard.Keyboard(backend="ptb")
    if source.getBackend() != "ptb":  # another part of the process opened the keyboard on another backend
        raise InputError(f"keys.backend ptb: psychopy's keyboard runs on '{source.getBackend()}', not ptb; "
                         "set keys.backend: event")
    return PtbKeys(source, core.getTime)


def ask_participant(defaults: dict[str, str]) -> dict[str, str]:
    """Ask participant, session and demographics in a dialog (``gui.DlgFromDict``).

    Without a screen or a GUI toolkit this is one clear error asking for the command-line
    flags instead.

    Parameters
    ----------
    defaults : dict
        Field -> the value the dialog starts with (participant, session, age, sex, handedness).

    Returns
    -------
    dict
        Field -> the answer, stripped.
    """
    require_screen()
    problem = gui_problem()
    if problem:
        raise InputError(f"no participant dialog available ({problem}); give --participant and --session")
    try:
        from psychopy import gui  # lazy: starts a GUI toolkit (probed safely above)

        values = dict(defaults)
        dialog = gui.DlgFromDict(values, title="Participant", order=list(defaults))
    except Exception as error:  # no wx/Qt, or it cannot start
        raise InputError(f"no participant dialog available ({type(error).__name__}); "
                         "give --participant and --session") from None
    if not dialog.OK:
        raise InputError("participant dialog cancelled; nothing was run")
    return {k: str(v).strip() for k, v in values.items()}
