"""``python -m mpigroup script.py``: see :mod:`mpigroup.launcher.initial_ranks`."""
import sys

from .launcher.initial_ranks import main

sys.exit(main())
