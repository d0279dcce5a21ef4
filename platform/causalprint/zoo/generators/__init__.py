"""One module per generator family."""
