"""Captioning through any OpenAI-compatible chat endpoint (e.g. vLLM's api_server), with bounded concurrency."""

from __future__ import annotations

import base64
import io
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import requests

from voxemoset.models.captioners.answer import CAPTIONS_SCHEMA, CaptionBackendError

if TYPE_CHECKING:
    from PIL import Image

    from voxemoset.config import CaptionsConfig

# Worth retrying: overload, gateway trouble, server errors. Other 4xx are our request's fault: fail at once.
RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


def image_data_url(img: Image.Image) -> str:
    """An image as a base64 data URL; PNG, so the server sees exactly the pixels we have."""
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


class OpenAICaptioner:
    """POSTs `/chat/completions` per image (JSON-schema response format), a thread pool bounding concurrency."""

    def __init__(
        self,
        base_url: str,
        model: str,
        prompt: str,
        *,
        name: str,
        api_key: str = "EMPTY",
        concurrency: int = 8,
        max_retries: int = 5,
        backoff_s: float = 1.0,
        timeout_s: float = 300.0,
        max_tokens: int = 160,
        temperature: float = 0.7,
        top_p: float = 0.9,
    ):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.prompt, self.name, self.api_key = model, prompt, name, api_key
        self.concurrency, self.max_retries = concurrency, max_retries
        self.backoff_s, self.timeout_s = backoff_s, timeout_s
        self.sampling = {"max_tokens": max_tokens, "temperature": temperature, "top_p": top_p}

    @classmethod
    def from_config(cls, cfg: CaptionsConfig, prompt: str, name: str) -> OpenAICaptioner:
        """From the `captions` config; the key comes from the named environment variable."""
        o = cfg.openai
        return cls(
            o.base_url,
            o.model or cfg.model,
            prompt,
            name=name,
            api_key=os.environ.get(o.api_key_env, "EMPTY"),
            concurrency=o.concurrency,
            max_retries=o.max_retries,
            backoff_s=o.backoff_s,
            timeout_s=o.timeout_s,
            max_tokens=cfg.max_new_tokens,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
        )

    def payload(self, img: Image.Image, seed: int) -> dict:
        """The request body for one image; the server applies the checkpoint's chat template."""
        content = [
            {"type": "image_url", "image_url": {"url": image_data_url(img)}},
            {"type": "text", "text": self.prompt},
        ]
        return {
            "model": self.model,
            "messages": [{"role": "user", "content": content}],
            "seed": int(seed),
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "captions", "schema": CAPTIONS_SCHEMA, "strict": True},
            },
            **self.sampling,
        }

    def post(self, body: dict) -> str:
        """One request, retried with exponential backoff on transient failures; the answer's text."""
        headers = {"Authorization": f"Bearer {self.api_key}"}
        problem = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                resp = requests.post(self.url, json=body, headers=headers, timeout=self.timeout_s)
            except (requests.ConnectionError, requests.Timeout) as e:
                problem = f"{type(e).__name__}: {e}"
                continue
            if resp.status_code in RETRY_STATUS:
                problem = f"HTTP {resp.status_code}: {resp.text[:200]}"
                continue
            if resp.status_code >= 400:
                raise CaptionBackendError(f"{self.url}: HTTP {resp.status_code}: {resp.text[:300]}")
            try:
                return resp.json()["choices"][0]["message"]["content"] or ""
            except (ValueError, KeyError, IndexError, TypeError):
                raise CaptionBackendError(f"{self.url}: not a chat completion: {resp.text[:300]}") from None
        raise CaptionBackendError(f"{self.url}: gave up after {self.max_retries + 1} tries ({problem})")

    def caption(self, images: list[Image.Image], seeds: list[int], ids: list[str] | None = None) -> list[str]:
        """One raw answer per image, at most `concurrency` requests in flight, in input order."""
        bodies = [self.payload(img, seed) for img, seed in zip(images, seeds, strict=True)]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(self.post, bodies))
