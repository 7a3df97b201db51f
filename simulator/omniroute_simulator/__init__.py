"""What-if simulation on the router's own routing core: staffing, routing rules, replays."""
