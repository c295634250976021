"""The sender's domain: what is due, how a touch is rendered, claimed, sent and recorded."""
