import sys

from inference_backend.cli import main

sys.exit(main())
