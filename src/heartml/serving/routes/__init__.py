"""The API by resource: prediction, health, model, monitoring, admin."""
