"""The checks of each exercise, one module per lesson (lessonNN.py, each with a CHECKS list): the learner's
functions against gptscratch's own implementation on seeded inputs, with stated tolerances."""
