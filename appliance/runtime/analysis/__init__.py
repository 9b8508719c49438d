"""From tracked people to distances, violations, episodes, occupancy and anonymized images."""
