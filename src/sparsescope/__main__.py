import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while the command is still being imported
    print("sparsescope: interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
