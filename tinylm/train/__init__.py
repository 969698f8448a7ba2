"""Training and use (layer 5): configuration, presets, the loop, and the command-line
entry points for ``tinylm train``, ``tinylm generate`` and ``tinylm eval``."""
