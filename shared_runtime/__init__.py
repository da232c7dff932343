"""What every service process runs on: settings, logs, database, errors, health, metrics, auth."""
