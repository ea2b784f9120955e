"""Connectors: sources receive bytes on a wire, destinations send them. One module per transport."""
