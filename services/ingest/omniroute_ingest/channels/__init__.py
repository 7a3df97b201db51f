"""Channel adapters: each turns one channel's native payload into a canonical `Inquiry`.

Every adapter hands its inquiry to `Intake.accept`, which classifies it
(`understanding`) and publishes it, so every channel gets the same guarantees.
"""
