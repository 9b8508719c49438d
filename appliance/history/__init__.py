"""The appliance's history: one-minute rollups of the event log (store), reports per hour, day
and week in the site's time zone (reports), and the pictures made of them (charts)."""
