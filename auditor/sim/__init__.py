"""The simulated tenant: a scenario generator, its ground truth and an HTTPS server."""
