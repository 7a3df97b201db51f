"""ingest: channel adapters that turn every contact into one canonical `Inquiry`.

- `inquiry`: the HTTP shape of an inquiry (the protobuf JSON mapping) and its
  validation, converted to the protobuf `Inquiry`.
- `publisher`: writes inquiries to Kafka and waits for the acknowledgement.
- `app`: the FastAPI app (`create_app`), `metrics`, `settings`, `__main__`.
"""
