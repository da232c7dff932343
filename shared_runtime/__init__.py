"""What every service process runs on: settings, logging, database, errors, health, metrics, auth."""
