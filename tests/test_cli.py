"""The CLI dispatcher: exit codes and messages that do not belong to one sub-command."""

import io
import sys


def test_gui_without_a_display_is_one_readable_line(monkeypatch, capsys):
    from workbench.cli import main

    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    assert main([]) == 2
    assert "no display" in capsys.readouterr().err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bars_are_drawn_on_a_terminal_only(monkeypatch):
    from workbench.cli import output

    for stream, drawn in ((_Terminal(), True), (io.StringIO(), False)):
        monkeypatch.setattr(sys, "stderr", stream)
        progress = output.Progress()
        for done in range(1, 4):
            progress.show("features (train)", 3, done)
        progress.close()
        assert ("features (train)" in stream.getvalue()) is drawn
        assert ("\r" in stream.getvalue()) is drawn


def test_quiet_silences_status_lines_and_epoch_lines(monkeypatch, capsys):
    from workbench.cli import output

    try:
        output.configure(output.QUIET)
        output.say("plan: something")
        output.Progress().write("epoch 1/1")
        assert capsys.readouterr() == ("", "")
        output.configure(output.NORMAL)
        output.say("plan: something")
        output.Progress().write("epoch 1/1")
        assert capsys.readouterr() == ("epoch 1/1\n", "plan: something\n")
    finally:
        output.configure(output.NORMAL)
