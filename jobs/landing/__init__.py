"""Landing: event files (and later an event-store table) into bronze, every line accounted for."""
