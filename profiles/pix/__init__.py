"""IHE PIX Manager (ITI-8 feed, ITI-9 query) over the EMPI."""
