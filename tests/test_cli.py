"""The CLI dispatcher: exit codes and messages that do not belong to one sub-command."""


def test_gui_without_a_display_is_one_readable_line(monkeypatch, capsys):
    from workbench.cli import main

    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    assert main([]) == 2
    assert "no display" in capsys.readouterr().err
