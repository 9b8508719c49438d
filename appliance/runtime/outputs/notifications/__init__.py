"""Notifications: alerts and reports to people (email, Slack) and systems (webhooks): the output
(output.py) and `appliance notify` (cli.py, which imports the channels only when it runs)."""
