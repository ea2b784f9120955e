"""Pipeline steps: filter, map, route. Each is composed once at start-up from its YAML options."""
