"""A small character-level language model built locally (no weight download).

``TinyChatModel`` is a GRU over bytes with seeded random weights: it answers
every prompt with text of the requested length, at the cost of a real
autoregressive forward pass per token, which is what the pipeline needs to
show (load balance, latency). ``HFChatModel`` wraps a Hugging Face causal LM
for real answers on a cluster (``--hf-model NAME``; needs ``transformers``
and the weights, which this example never downloads by itself).
"""
from __future__ import annotations

import torch
import torch.nn as nn

VOCAB = 256  # bytes


class TinyChatModel(nn.Module):
    def __init__(self, hidden: int = 128, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.embed = nn.Embedding(VOCAB, 64)
        self.rnn = nn.GRU(64, hidden, batch_first=True)
        self.head = nn.Linear(hidden, VOCAB)
        printable = torch.full((VOCAB,), -1e9)
        printable[32:127] = 0.0  # answer in printable ASCII only
        self.register_buffer("mask", printable)
        self.eval()

    @torch.no_grad()
    def generate(self, prompt: str, max_new_tokens: int = 48, seed: int = 0) -> str:
        ids = torch.tensor([list(prompt.encode("utf-8", "replace")[-512:]) or [32]])
        out, state = self.rnn(self.embed(ids))
        logits = self.head(out[:, -1])
        gen = torch.Generator().manual_seed(seed)
        reply = []
        for _ in range(max_new_tokens):
            probs = torch.softmax(logits + self.mask, dim=-1)
            token = torch.multinomial(probs, 1, generator=gen)
            reply.append(int(token))
            out, state = self.rnn(self.embed(token), state)
            logits = self.head(out[:, -1])
        return bytes(reply).decode("ascii", "replace")


class HFChatModel:
    """A Hugging Face causal LM on this worker's device (its policy left it one GPU, if any)."""

    def __init__(self, name: str) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer  # only on clusters that have it

        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.tokenizer = AutoTokenizer.from_pretrained(name)
        self.model = AutoModelForCausalLM.from_pretrained(name).to(self.device).eval()

    @torch.no_grad()
    def generate(self, prompt: str, max_new_tokens: int = 48, seed: int = 0) -> str:
        torch.manual_seed(seed)
        inputs = self.tokenizer(prompt, return_tensors="pt").to(self.device)
        output = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        return self.tokenizer.decode(output[0][inputs["input_ids"].shape[1]:], skip_special_tokens=True)


def load_model(hf_model: str = "", seed: int = 0):
    return HFChatModel(hf_model) if hf_model else TinyChatModel(seed=seed)
