"""IHE actors with state and the platform's canonical models. Filled by later issues."""
