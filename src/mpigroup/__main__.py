"""``python -m mpigroup script.py``: see :mod:`mpigroup.launcher.runscript`."""
import sys

from .launcher.runscript import main

sys.exit(main())
