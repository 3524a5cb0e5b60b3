"""Task 1: acquire, parse, validate and describe the raw data."""
