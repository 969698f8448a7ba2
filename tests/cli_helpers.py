"""Running the command line inside a test: ``run_cli(argv, capsys)`` -> (exit status, stdout,
stderr) of ``tinylm ARGV``, argparse's usage errors (SystemExit) included."""

from __future__ import annotations

from tinylm.cli import main


def run_cli(argv, capsys):
    try:
        status = main(argv)
    except SystemExit as stop:                  # argparse's usage errors
        status = stop.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err
