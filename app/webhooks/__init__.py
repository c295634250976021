"""The REST webhook shim: provider adapters (pure translation) and the routes around them."""
