"""The commands of the ``tinylm`` command line (layer 6), one module each. Every module defines

    add_arguments(parser)   -- its flags, on the parser tinylm/cli.py gives it
    run(args) -> int        -- the command itself; returns the exit status

and tinylm/cli.py holds the one registry of names."""
