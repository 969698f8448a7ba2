import sys

from tinylm.cli import main

sys.exit(main())
