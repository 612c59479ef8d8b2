import sys

from privaudit.audit.cli import main

sys.exit(main())
