"""Gates: signal checks, emotion, DNSMOS and intelligibility decide whether a clip is kept or redone."""
