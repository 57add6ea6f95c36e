"""Personal data: crypto-shredding at landing, erasure, the keys table (docs/privacy.md)."""
