"""services/desk: the reference agent desk and supervisor wallboard in the browser."""
