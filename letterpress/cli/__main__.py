"""``python -m letterpress.cli``: the same as the ``letterpress`` command."""
from letterpress.cli import main

if __name__ == "__main__":      # not again in a worker process started fresh
    main()
