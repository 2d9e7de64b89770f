"""The ``hosts`` compute adapter: your own servers, reached over SSH."""
