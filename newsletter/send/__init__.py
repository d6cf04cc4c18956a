"""Delivery: transports behind one interface, the pool, rate limits, the outcome record, campaigns, test sends."""
