"""smartthinker-verl: SmartThinker length calibration (arXiv 2603.08000) as plugins for stock verl 0.9.1.

Importing this package is cheap: it imports neither torch nor verl. The verl integration lives in
``smartthinker_verl.plugin``, which verl loads through the ``verl.plugins`` entry point.
"""

from smartthinker_verl.version import __version__

__all__ = ["__version__"]
