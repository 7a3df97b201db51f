"""ingest: channel adapters that turn every customer contact into one canonical `Inquiry`.

- `channels`: one module per channel (REST, email/SMTP, SMS, voice, chat,
  social, documents and the drop folder, walk-in); each parses the channel's
  native payload into an `Inquiry`.
- `understanding`: classification rules, language detection and sentiment,
  plain functions with no I/O.
- `publisher`: writes inquiries and abandon events and answers only after the
  broker acknowledged; de-duplicates retries (`idempotency`).
- `app`: the FastAPI factory; `service`: HTTP, SMTP and the drop folder run
  together; `settings`, `metrics`, `__main__`.
"""
