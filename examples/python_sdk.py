"""Talk to Switchyard with the official OpenAI Python SDK.

    pip install openai
    cargo run --release            # in another terminal: Switchyard on :8000
    python examples/python_sdk.py  # uses the built-in `demo` model

Any OpenAI-SDK app works the same way: set OPENAI_BASE_URL to Switchyard.
"""

import os

from openai import OpenAI

client = OpenAI(
    base_url=os.environ.get("OPENAI_BASE_URL", "http://localhost:8000/v1"),
    # Switchyard's own key if server.auth.keys is set; any string otherwise.
    # Upstream keys (OpenAI, Azure) live in Switchyard's config, not here.
    api_key=os.environ.get("SWITCHYARD_API_KEY", "sk-anything"),
)
model = os.environ.get("MODEL", "demo")

print("models:", [m.id for m in client.models.list()])

reply = client.chat.completions.create(
    model=model,
    messages=[{"role": "user", "content": "Say hello in five words."}],
)
print("non-stream:", reply.choices[0].message.content)
print("usage:", reply.usage)

print("stream: ", end="", flush=True)
stream = client.chat.completions.create(
    model=model,
    messages=[{"role": "user", "content": "Count to five."}],
    stream=True,
    stream_options={"include_usage": True},
)
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        print(chunk.choices[0].delta.content, end="", flush=True)
    if chunk.usage:
        print("\nusage:", chunk.usage)
