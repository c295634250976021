"""campaign-api: the back end of a sales-outreach product."""
