"""IHE PDQ Supplier (ITI-21) over the EMPI."""
