"""The screen check made before the first trial: is this the screen the YAML describes?

Degrees of visual angle come from the YAML's ``screen`` (resolution, width in cm, distance)
and durations are counted in frames at ``screen.refresh_hz``. A window of another size draws
the face at another size in degrees, and another refresh rate changes every duration, without
any error from PsychoPy. So the display compares, once the window is open:

- the window's size in pixels with ``screen.resolution`` (any difference is a mismatch; in full
  screen the window is the whole screen; a ``--windowed`` try-out opens a window of that size,
  and its degrees are right only if the YAML's width_cm and resolution describe the screen);
- the refresh rate PsychoPy measures (``Window.getActualFrameRate``) with ``screen.refresh_hz``:
  a difference beyond ``screen.refresh_tolerance`` (a fraction, 2% by default) is a mismatch,
  and so is a rate that cannot be measured (flip intervals never steady: no vertical sync),
  unless ``refresh_tolerance`` is null (a virtual display such as Xvfb has no refresh rate).

A mismatch refuses the session in one line (:func:`mismatch_line`) unless
``--allow-screen-mismatch`` is given; the :func:`screen_record` block
records what was asked, what was measured and whether a mismatch was let through
(the session sidecar's ``ScreenCheck``).

This module does not import psychopy: the display measures, this module compares.

Examples
--------
>>> screen_problems([1920, 1080], 60.0, [1280, 1024], 59.95, tolerance=0.02)
['the window is 1280x1024 px but screen.resolution is [1920, 1080]']
>>> screen_problems([1920, 1080], 60.0, [1920, 1080], 144.0, tolerance=0.02)
['the measured refresh rate is 144.00 Hz but screen.refresh_hz is 60 (tolerance 2%)']
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

__all__ = ["screen_problems", "mismatch_line", "screen_record", "monitor_record", "suggested_refresh"]


def _number(value: float) -> str:
    return f"{value:g}" if float(value).is_integer() else f"{value:.2f}"


def suggested_refresh(measured_hz: float) -> float:
    """The ``refresh_hz`` to write for a measured rate: the nearest whole rate when within 0.5%.

    Parameters
    ----------
    measured_hz : float
        The measured frame rate, in Hz.

    Returns
    -------
    float
        The ``refresh_hz`` to write in the YAML, in Hz.

    Examples
    --------
    >>> suggested_refresh(59.94), suggested_refresh(72.5)
    (60, 72.5)
    """
    whole = round(measured_hz)
    return whole if whole and abs(measured_hz - whole) <= 0.005 * whole else round(measured_hz, 2)


def screen_problems(requested_size: Sequence[int], requested_hz: float, measured_size: Sequence[int],
                    measured_hz: float | None, *, tolerance: float | None) -> list[str]:
    """What differs between the YAML's screen and the opened window (an empty list: nothing).

    Parameters
    ----------
    requested_size : sequence of int
        The YAML's ``screen.resolution``.
    requested_hz : float
        The YAML's ``screen.refresh_hz``.
    measured_size : sequence of int
        The window's size in pixels.
    measured_hz : float or None
        The measured frame rate (None: not measured).
    tolerance : float or None
        Allowed relative difference of the rates (None: rates not compared).

    Returns
    -------
    list of str
        One text per difference.
    """
    problems = []
    want, got = [int(v) for v in requested_size], [int(v) for v in measured_size]
    if want != got:
        problems.append(f"the window is {got[0]}x{got[1]} px but screen.resolution is {want}")
    if tolerance is not None:
        allowed = f"tolerance {tolerance:.0%}"
        if measured_hz is None:
            problems.append("the refresh rate could not be measured (the flip intervals were never steady: "
                            f"is vertical sync off?) and screen.refresh_hz is {_number(requested_hz)} ({allowed})")
        elif abs(measured_hz - requested_hz) > tolerance * requested_hz:
            problems.append(f"the measured refresh rate is {measured_hz:.2f} Hz but screen.refresh_hz is "
                            f"{_number(requested_hz)} ({allowed})")
    return problems


def mismatch_line(problems: Sequence[str], config_path: str, measured_size: Sequence[int],
                  measured_hz: float | None) -> str:
    """The one line that refuses a session on another screen: both values and the fix.

    Parameters
    ----------
    problems : sequence of str
        What differs (:func:`screen_problems`).
    config_path : str
        The experiment YAML.
    measured_size : sequence of int
        The window's size in pixels.
    measured_hz : float or None
        The measured frame rate.

    Returns
    -------
    str
        The refusal, with the YAML values that would fit this screen.
    """
    fixes = []
    if any("screen.resolution" in p for p in problems):
        fixes.append(f"screen.resolution: [{int(measured_size[0])}, {int(measured_size[1])}] with this screen's "
                     "width_cm (or run on the screen the YAML describes)")
    if any("refresh" in p for p in problems):
        if measured_hz is None:
            fixes.append("vertical sync on in the graphics driver (screen.refresh_tolerance: null only for a "
                         "display with no refresh, e.g. Xvfb)")
        else:
            fixes.append(f"screen.refresh_hz: {_number(suggested_refresh(measured_hz))} with the *_frames of "
                         "timing recomputed (durations are counted in frames)")
    return (f"screen mismatch: {'; '.join(problems)}; set {' and '.join(fixes)} in {config_path}, "
            "or add --allow-screen-mismatch to run anyway (recorded in the sidecar)")


def monitor_record(name: str, *, calibrated: bool, calibration_date: Any, gamma_applied: bool) -> dict[str, Any]:
    """The calibration a session used: PsychoPy Monitor Center's record of ``name``, if any.

    ``calibration_date`` is what ``psychopy.monitors.Monitor.getCalibDate`` gives (seconds since
    the epoch, or a ``time.struct_time``); without a saved calibration it is null.

    Parameters
    ----------
    name : str
        The YAML's ``screen.monitor``.
    calibrated : bool
        Whether Monitor Center holds a calibration of that name.
    calibration_date : float, time.struct_time or None
        When it was calibrated.
    gamma_applied : bool
        Whether the window applies the calibration's gamma.

    Returns
    -------
    dict
        The sidecar's record of the monitor.

    Examples
    --------
    >>> monitor_record("lab", calibrated=False, calibration_date=None, gamma_applied=False)["calibration_date"] is None
    True
    """
    date = None
    if calibrated and calibration_date is not None:
        try:
            seconds = float(calibration_date) if isinstance(calibration_date, (int, float)) else (
                dt.datetime(*calibration_date[:6]).timestamp())
            date = dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="seconds")
        except (TypeError, ValueError, OverflowError, OSError):
            date = str(calibration_date)
    record: dict[str, Any] = {"name": name, "calibration_date": date, "gamma_applied": bool(gamma_applied)}
    if not calibrated:
        record["note"] = ("no calibration of this monitor in PsychoPy's Monitor Center: sizes come from the "
                          "YAML's width_cm and distance_cm, and no gamma table was applied (contrast is pixel "
                          "contrast, not luminance contrast)")
    elif not gamma_applied:
        record["note"] = "calibration found, but it holds no gamma (linearisation) table"
    return record


def screen_record(*, requested_size: Sequence[int], requested_hz: float, tolerance: float | None,
                  measured_size: Sequence[int], measured_hz: float | None, mismatch: bool, allowed: bool,
                  pixels_per_degree: float, monitor: dict[str, Any]) -> dict[str, Any]:
    """The sidecar's ``ScreenCheck`` block: requested, measured, calibration, px per degree.

    Parameters
    ----------
    requested_size, requested_hz, tolerance
        The YAML's screen (resolution, refresh rate, allowed difference).
    measured_size, measured_hz
        The opened window's size and frame rate.
    mismatch, allowed : bool
        Whether they differ, and whether that was allowed (``--allow-screen-mismatch``).
    pixels_per_degree : float
        Screen pixels per degree of visual angle.
    monitor : dict
        :func:`monitor_record`.

    Returns
    -------
    dict
        The sidecar's ``ScreenCheck``.
    """
    return {
        "requested": {"size_px": [int(v) for v in requested_size], "refresh_hz": float(requested_hz),
                      "refresh_tolerance": tolerance},
        "measured": {"size_px": [int(v) for v in measured_size],
                     "refresh_hz": None if measured_hz is None else round(float(measured_hz), 3)},
        "mismatch": bool(mismatch),
        "mismatch_allowed": bool(mismatch and allowed),
        "pixels_per_degree": round(float(pixels_per_degree), 4),
        "monitor": monitor,
    }
