"""One way to write each exercise (`gptscratch learn solution ID` prints it; reading it spoils the exercise).
tests/test_learn.py proves every solution passes its exercise's checks."""
