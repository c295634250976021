"""What the tests and the benchmarks share: the example documents of ``examples/`` and the
set-based dataset factory. Neither imports the other; nothing in the service imports this
(it is not installed and not in the image)."""
