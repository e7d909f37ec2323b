"""Where exchange rates come from outside: published reference-rate files (the ECB's daily XML)."""
