"""`python -m rop.cli`: the same as the `rop` console script."""

from rop.cli import main

main()
