"""The enterprise master patient index: persons, the local records linked to them, and their history."""
