"""One module per IHE transaction (wire parsing and building). Filled by later issues."""
