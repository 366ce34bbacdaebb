"""Shim so that `python run_recon.py ARGS` does exactly what `recon ARGS` does."""

from recon.cli import main

if __name__ == "__main__":
    main()
