"""The Textual dashboard (SPEC §9): an adapter over the engine, fed by one bridge."""
