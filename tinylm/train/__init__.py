"""Training and use (layer 5): configuration, presets, the loop, checkpoint restore and the
loss plot. The commands that drive them live in tinylm/commands/."""
