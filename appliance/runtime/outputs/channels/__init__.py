"""Channels: where an outgoing message goes (email, Slack, a webhook, an S3 bucket), each kind
one module behind the Transport interface, and the sender that delivers a channel's spool."""
