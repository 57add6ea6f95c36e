"""The external event contract: catalog of event types, versions and envelope."""
