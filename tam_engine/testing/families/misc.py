"""Mistral 3 and PaliGemma in the family matrix: tiny random models with their real processors.

Mistral 3 (Mistral-Small-3.x layout): a Pixtral vision tower with patch 8 and a 2 x 2 spatial
merge (16 processed pixels per token; the real checkpoints use patch 14), images shrunk to a
128-px longest edge. PaliGemma: a SigLIP tower on 64 x 64 inputs with patch 8 (8 x 8 tokens; the
real checkpoints use 224/14). Both take a video as frames.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tam_engine.testing.families import FamilySpec
from tam_engine.testing.geometry import block_means, unnormalize
from tam_engine.testing.tiny_models import (
    DEFAULT_WORDS,
    _set_generation_ids,
    _text_dims,
    build_tokenizer,
)

# ---------------------------------------------------------------------------------- Mistral 3
MISTRAL3_PATCH, MISTRAL3_MERGE, MISTRAL3_LONGEST_EDGE = 8, 2, 128
MISTRAL3_MEAN, MISTRAL3_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258,
                                                                   0.27577711)
MISTRAL3_SPECIAL_TOKENS = ("<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[IMG]", "[IMG_BREAK]",
                           "[IMG_END]", "<pad>")
# The shape of Mistral-Small-3.1's template: "<s>[INST][IMG]...prompt[/INST]" (the tokenizer
# adds <s>).
MISTRAL3_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}[INST]"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}[IMG]"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}[/INST]"
    "{% elif message['role'] == 'assistant' %}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{{ message['content'][0]['text'] }}{% endif %}</s>{% endif %}{% endfor %}"
)


def _bos_tokenizer(special_tokens: tuple[str, ...], bos: str, eos: str, pad: str, unk: str):
    """A tiny tokenizer that prepends ``bos`` to every text, as Llama-style tokenizers do."""
    from tokenizers import processors

    tokenizer = build_tokenizer(DEFAULT_WORDS, special_tokens, bos_token=bos, eos_token=eos,
                                pad_token=pad, unk_token=unk)
    bos_id = tokenizer.convert_tokens_to_ids(bos)
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bos_id)])
    return tokenizer


def mistral3_processor():
    """A real ``PixtralProcessor`` (what Mistral 3 checkpoints load) with tiny sizes."""
    import transformers as tf

    tokenizer = _bos_tokenizer(MISTRAL3_SPECIAL_TOKENS, "<s>", "</s>", "<pad>", "<unk>")
    image_processor = tf.PixtralImageProcessor(
        patch_size=MISTRAL3_PATCH, size={"longest_edge": MISTRAL3_LONGEST_EDGE},
        image_mean=list(MISTRAL3_MEAN), image_std=list(MISTRAL3_STD))
    return tf.PixtralProcessor(image_processor=image_processor, tokenizer=tokenizer,
                               patch_size=MISTRAL3_PATCH, spatial_merge_size=MISTRAL3_MERGE,
                               chat_template=MISTRAL3_CHAT_TEMPLATE)


def build_mistral3(out_dir: Path, seed: int = 0) -> None:
    import torch
    import transformers as tf

    processor = mistral3_processor()
    tokenizer = processor.tokenizer
    torch.manual_seed(seed)
    vision = {"model_type": "pixtral", "hidden_size": 32, "intermediate_size": 64,
              "num_hidden_layers": 2, "num_attention_heads": 2, "head_dim": 16,
              "image_size": 2 * MISTRAL3_LONGEST_EDGE, "patch_size": MISTRAL3_PATCH}
    text: dict[str, Any] = {"model_type": "mistral", **_text_dims(len(tokenizer)), "head_dim": 16,
                            "bos_token_id": tokenizer.convert_tokens_to_ids("<s>"),
                            "eos_token_id": tokenizer.convert_tokens_to_ids("</s>"),
                            "pad_token_id": tokenizer.convert_tokens_to_ids("<pad>")}
    config = tf.Mistral3Config(vision_config=vision, text_config=text,
                               spatial_merge_size=MISTRAL3_MERGE, vision_feature_layer=-1,
                               image_token_index=tokenizer.convert_tokens_to_ids("[IMG]"))
    model = tf.Mistral3ForConditionalGeneration(config).eval()
    _set_generation_ids(model, text)
    model.save_pretrained(out_dir, safe_serialization=True)
    processor.save_pretrained(out_dir)


def mistral3_brightness(prepared: Any) -> np.ndarray:
    """Each token's brightness: the mean of its ``(patch x merge)``-pixel block of the image's
    processed pixels (the top-left ``image_sizes`` part of ``pixel_values``), blocks row by
    row, image after image."""
    q = MISTRAL3_PATCH * MISTRAL3_MERGE
    inputs = prepared.model_inputs
    planes = unnormalize(inputs["pixel_values"], MISTRAL3_MEAN, MISTRAL3_STD)
    out = []
    for plane, (h, w) in zip(planes, inputs["image_sizes"].tolist()):
        gh, gw = h // q, w // q
        out.append(block_means(plane[:gh * q, :gw * q], gh, gw).reshape(-1))
    return np.concatenate(out)


# ---------------------------------------------------------------------------------- PaliGemma
PALIGEMMA_SIZE, PALIGEMMA_PATCH = 64, 8
PALIGEMMA_MEAN = PALIGEMMA_STD = (0.5, 0.5, 0.5)
PALIGEMMA_SPECIAL_TOKENS = ("<pad>", "<eos>", "<bos>", "<unk>", "<image>")


def paligemma_processor():
    """A real ``PaliGemmaProcessor`` (SigLIP image processor, no chat template), tiny sizes.

    The processor adds PaliGemma's 1024 ``<locXXXX>`` and 128 ``<segXXX>`` tokens to the
    tokenizer: size the model's vocabulary after building it.
    """
    import transformers as tf

    tokenizer = build_tokenizer(DEFAULT_WORDS, PALIGEMMA_SPECIAL_TOKENS, bos_token="<bos>",
                                eos_token="<eos>", pad_token="<pad>", unk_token="<unk>",
                                extra={"extra_special_tokens": {"image_token": "<image>"}})
    image_processor = tf.SiglipImageProcessor(
        size={"height": PALIGEMMA_SIZE, "width": PALIGEMMA_SIZE},
        image_mean=list(PALIGEMMA_MEAN), image_std=list(PALIGEMMA_STD))
    # PaliGemmaProcessor requires it (it is saved in preprocessor_config.json).
    image_processor.image_seq_length = (PALIGEMMA_SIZE // PALIGEMMA_PATCH) ** 2
    return tf.PaliGemmaProcessor(image_processor=image_processor, tokenizer=tokenizer)


def build_paligemma(out_dir: Path, seed: int = 0) -> None:
    import torch
    import transformers as tf

    processor = paligemma_processor()
    tokenizer = processor.tokenizer
    torch.manual_seed(seed)
    vision = {"model_type": "siglip_vision_model", "hidden_size": 32, "intermediate_size": 64,
              "num_hidden_layers": 2, "num_attention_heads": 2, "image_size": PALIGEMMA_SIZE,
              "patch_size": PALIGEMMA_PATCH, "projection_dim": 64}
    text: dict[str, Any] = {"model_type": "gemma", **_text_dims(len(tokenizer)), "head_dim": 16,
                            "bos_token_id": tokenizer.convert_tokens_to_ids("<bos>"),
                            "eos_token_id": tokenizer.convert_tokens_to_ids("<eos>"),
                            "pad_token_id": tokenizer.convert_tokens_to_ids("<pad>")}
    config = tf.PaliGemmaConfig(vision_config=vision, text_config=text, projection_dim=64,
                                hidden_size=64, vocab_size=len(tokenizer),
                                image_token_index=tokenizer.convert_tokens_to_ids("<image>"))
    model = tf.PaliGemmaForConditionalGeneration(config).eval()
    _set_generation_ids(model, text)
    model.save_pretrained(out_dir, safe_serialization=True)
    processor.save_pretrained(out_dir)


def paligemma_brightness(prepared: Any) -> np.ndarray:
    """Each token's brightness: the mean of its patch of the squashed square input, patches
    row by row, image after image."""
    g = PALIGEMMA_SIZE // PALIGEMMA_PATCH
    planes = unnormalize(prepared.model_inputs["pixel_values"], PALIGEMMA_MEAN, PALIGEMMA_STD)
    return block_means(planes, g, g).reshape(-1)


SPECS: list[FamilySpec] = [
    FamilySpec("mistral3", build_mistral3, ("square", "wide", "tall", "two", "large", "video"),
               mistral3_brightness),
    FamilySpec("paligemma", build_paligemma,
               ("square", "wide", "tall", "two", "large", "video"), paligemma_brightness),
]

#: Extra cases, (height, width) of each image: a side the merge cannot divide (Pixtral rounds
#: 36 px up to 48, three rows of tokens).
EXTRA_CASES: dict[str, dict[str, list[tuple[int, int]]]] = {"mistral3": {"odd": [(36, 128)]}}
