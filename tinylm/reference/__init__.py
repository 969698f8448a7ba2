"""Single-file references (chapter 07): a whole model in one file, NumPy only."""
