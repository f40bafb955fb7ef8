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


def test_docs_cli_md_covers_every_command_and_no_file_cites_a_missing_design_file():
    from pathlib import Path

    from workbench.cli import build_parser

    root = Path(__file__).resolve().parents[1]
    contract = (root / "docs" / "cli.md").read_text(encoding="utf-8")
    commands = build_parser()._subparsers._group_actions[0].choices  # noqa: SLF001
    assert [c for c in commands if f"`workbench {c}" not in contract] == []
    cited = [str(p.relative_to(root)) for folder in ("workbench", "workbench_ui", "docs")
             for p in (root / folder).rglob("*") if p.suffix in (".py", ".md")
             and "DESIGN.md" in p.read_text(encoding="utf-8", errors="replace")]
    assert cited == [] and not (root / "shared" / "DESIGN.md").exists()
