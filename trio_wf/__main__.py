"""``python -m trio_wf``: the ``trio-wf`` command."""

import sys

from trio_wf.workflow._cli import main

sys.exit(main())
