"""`python -m gptscratch` runs the same CLI as the `gptscratch` console script."""

from gptscratch.cli import main

if __name__ == "__main__":
    main()
