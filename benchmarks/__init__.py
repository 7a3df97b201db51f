"""`make bench`: end-to-end figures through the embedded broker."""
