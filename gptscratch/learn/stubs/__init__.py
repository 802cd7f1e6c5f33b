"""The exercises' starting files, one per lesson: `gptscratch learn start ID` copies one into the learner's work
folder. Each function's docstring gives the formula, the shapes and gptscratch's reference; its body raises
NotImplementedError until the learner writes it."""
