"""The stimuli command line: --help, success, and one-line errors with exit status 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from stimuli.__main__ import main


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "stimuli", *args], capture_output=True, text=True, cwd=cwd)


def _one_line_error(capsys, argv, needle):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and needle in err, err
    return err


def test_help_of_every_command(capsys):
    result = _run("--help")  # once as a user types it
    assert result.returncode == 0 and "usage: python -m stimuli" in result.stdout
    for command in ("prepare", "render", "synth"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        assert f"usage: python -m stimuli {command}" in capsys.readouterr().out


def test_prepare_command_writes_a_set_then_refuses_to_overwrite(tmp_path, face_folder, capsys):
    argv = ["prepare", "--faces", str(face_folder), "--size", "16", "--name", "tiny", "--out", str(tmp_path),
            "--aperture", "--equalise", "histogram"]
    assert main(argv) == 0
    assert (tmp_path / "stimuli" / "tiny" / "aperture.png").is_file()
    capsys.readouterr()
    _one_line_error(capsys, argv, "exists already; add --force")
    assert main([*argv, "--force"]) == 0


def test_prepare_command_errors_are_one_line(tmp_path, capsys):
    _one_line_error(capsys, ["prepare", "--faces", str(tmp_path / "none"), "--size", "16", "--name", "x",
                             "--out", str(tmp_path)], "face folder not found")
    _one_line_error(capsys, ["prepare", "--faces", "orl", "--size", "16", "--name", "bad/name",
                             "--out", str(tmp_path)], "--name 'bad/name'")
    assert not (tmp_path / "stimuli").exists()
