"""Pure logic: no I/O, no Azure SDK imports. Everything here is unit-tested with plain data."""
