"""`make run`: the whole system on one machine with the embedded broker, and a demo."""
