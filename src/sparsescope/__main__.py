import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while the command is still being imported
    print("sparsescope: interrupted", file=sys.stderr)
    sys.exit(130)

if __name__ == "__main__":  # worker processes (spawn, Dask) import this module without running the CLI
    sys.exit(main())
