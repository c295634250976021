"""The sender process: claims due touches, hands them to the providers, records outcomes."""
