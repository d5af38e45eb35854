"""Tiny, randomly initialised vision-language models with their real processors, built offline.

Each family gets a real ``transformers`` model class (hidden size 64, 2 layers, a tiny vision
tower) and the family's real processor classes (tokenizer, image processor, video processor
where the family has one, chat template), saved with ``save_pretrained`` as safetensors so
:func:`tam_engine.inference.loading.load_model` loads them back exactly like a Hub checkpoint.

The tokenizer is a small byte-level BPE trained here on a few sentences with the ``tokenizers``
library plus the family's special tokens: no download is ever needed. The outputs are random, so
these models are for tests and benchmarks of the plumbing, never for judging explanations.

:func:`build_tokenizer` and :func:`build_qwen2_vl_processor` are public and stable: other parts
of the project (the synthetic-shapes demo model) build on them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

FAMILIES = ("qwen2_vl", "qwen2_5_vl", "llava", "internvl")

DEFAULT_WORDS: tuple[str, ...] = (
    "Describe this image in one sentence.",
    "What is in the picture? What colour is the shape on the left?",
    "A red circle and a blue square on a white background.",
    "The video shows a green triangle moving from left to right.",
    "There is a yellow star above a small black dot near the centre.",
    "How many objects are there? Two cats sit on a wooden table next to a cup of coffee.",
    "A person rides a bicycle along the road while a dog runs behind.",
    "user assistant system You are a helpful assistant.",
    "0 1 2 3 4 5 6 7 8 9 10 100 café naïve 日本 über — ✓",
)

QWEN_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|image_pad|>", "<|video_pad|>",
)
LLAVA_SPECIAL_TOKENS: tuple[str, ...] = ("<unk>", "<s>", "</s>", "<image>", "<pad>")
INTERNVL_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>",
    "<video>", "<image>",
)

# Chat templates written for these tiny models. They follow the shape of each family's own
# template (turn markers, where the media placeholders go) closely enough that the adapters,
# which only rely on the processor and template, are exercised as with the real checkpoints.
QWEN2_VL_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
LLAVA_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] != 'system' %}{{ message['role'].upper() + ': ' }}{% endif %}"
    "{% if message['content'] is string %}{{ message['content'] + ' ' }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}{{ '<image>\n' }}{% endif %}{% endfor %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'text' %}{{ content['text'] + ' ' }}{% endif %}"
    "{% endfor %}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)
INTERNVL_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}{{ '<IMG_CONTEXT>\n' }}"
    "{% elif content['type'] == 'video' %}{{ '<video>\n' }}"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


# ---------------------------------------------------------------------------------- tokenizer
def build_tokenizer(words: Iterable[str] = DEFAULT_WORDS,
                    special_tokens: Sequence[str] = QWEN_SPECIAL_TOKENS,
                    vocab_size: int = 600, *, bos_token: str | None = None,
                    eos_token: str | None = None, pad_token: str | None = None,
                    unk_token: str | None = None, extra: dict[str, Any] | None = None):
    """A small byte-level BPE tokenizer trained on ``words`` (sentences), as a fast tokenizer.

    Every byte is in the alphabet, so any text encodes and decodes losslessly. The special
    tokens get the first ids, in the order given, and are never split. ``bos/eos/pad/unk`` name
    which special tokens play those roles (eos defaults to the first special token).

    Returns a ``PreTrainedTokenizerFast`` (``TokenizersBackend`` in transformers 5).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = list(dict.fromkeys(special_tokens))
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(list(words), trainer=trainer)
    kwargs: dict[str, Any] = {"tokenizer_object": tok, "clean_up_tokenization_spaces": False}
    roles = {"bos_token": bos_token, "eos_token": eos_token or (specials[0] if specials else None),
             "pad_token": pad_token, "unk_token": unk_token}
    kwargs.update({k: v for k, v in roles.items() if v is not None})
    kwargs.update(extra or {})
    fast = PreTrainedTokenizerFast(**kwargs)
    fast.add_special_tokens({"additional_special_tokens": [
        s for s in specials if s not in roles.values()]})
    return fast


# ---------------------------------------------------------------------------------- processors
def build_qwen2_vl_processor(tokenizer, *, min_pixels: int = 28 * 28 * 4,
                             max_pixels: int = 28 * 28 * 64, video_min_pixels: int | None = None,
                             video_max_pixels: int | None = None,
                             chat_template: str = QWEN2_VL_CHAT_TEMPLATE,
                             patch_size: int = 14, merge_size: int = 2,
                             temporal_patch_size: int = 2):
    """A real ``Qwen2VLProcessor`` (image + video processor) around ``tokenizer``.

    The pixel limits default small (4..64 merged cells per image) to keep tiny models fast;
    pass the real checkpoint's limits for realistic sequence lengths.
    """
    from transformers import Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

    common: dict[str, Any] = {"patch_size": patch_size, "merge_size": merge_size,
                              "temporal_patch_size": temporal_patch_size}
    image_processor = Qwen2VLImageProcessor(min_pixels=min_pixels, max_pixels=max_pixels,
                                            **common)
    video_processor = Qwen2VLVideoProcessor(
        min_pixels=video_min_pixels or min_pixels, max_pixels=video_max_pixels or max_pixels,
        **common)
    return Qwen2VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                            video_processor=video_processor, chat_template=chat_template)


def qwen_tokenizer(words: Iterable[str] = DEFAULT_WORDS, vocab_size: int = 600):
    """The Qwen-style tokenizer (ChatML turn markers and vision pads) used by both Qwen families."""
    return build_tokenizer(words, QWEN_SPECIAL_TOKENS, vocab_size, eos_token="<|im_end|>",
                           pad_token="<|endoftext|>")


# ---------------------------------------------------------------------------------- models
def _text_dims(vocab_size: int, hidden: int = 64) -> dict[str, Any]:
    return {"vocab_size": vocab_size, "hidden_size": hidden, "intermediate_size": 2 * hidden,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "max_position_embeddings": 4096}


def qwen2_vl_model(tokenizer, *, family: str = "qwen2_vl", hidden: int = 64,
                   vocab_size: int | None = None, seed: int = 0):
    """A random tiny ``Qwen2VLForConditionalGeneration`` (or Qwen2.5-VL) matching ``tokenizer``.

    ``vocab_size`` may exceed the tokenizer's (e.g. 151,936 for a benchmark with a realistic
    ``lm_head``); extra rows are never produced by the tokenizer.
    """
    import torch
    import transformers as tf

    torch.manual_seed(seed)
    ids = {name: tokenizer.convert_tokens_to_ids(tok) for name, tok in (
        ("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"),
        ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>"))}
    head_dim = hidden // 4
    text: dict[str, Any] = _text_dims(vocab_size or len(tokenizer), hidden)
    text.update(bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
                eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
                pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"))
    # mrope splits the rotary half-dimension into (temporal, height, width) sections.
    half = head_dim // 2
    section = [half - 2 * (half // 3), half // 3, half // 3]
    text["rope_parameters"] = {"rope_type": "default", "rope_theta": 10000.0,
                               "mrope_section": section}
    vision: dict[str, Any]
    if family == "qwen2_vl":
        vision = {"depth": 2, "embed_dim": 32, "hidden_size": hidden, "num_heads": 2,
                  "mlp_ratio": 2, "patch_size": 14, "spatial_merge_size": 2,
                  "temporal_patch_size": 2}
        model: Any = tf.Qwen2VLForConditionalGeneration(
            tf.Qwen2VLConfig(text_config=text, vision_config=vision, **ids))
    elif family == "qwen2_5_vl":
        vision = {"depth": 2, "hidden_size": 32, "out_hidden_size": hidden, "num_heads": 2,
                  "intermediate_size": 64, "patch_size": 14, "spatial_merge_size": 2,
                  "temporal_patch_size": 2, "window_size": 56, "fullatt_block_indexes": [1]}
        model = tf.Qwen2_5_VLForConditionalGeneration(
            tf.Qwen2_5_VLConfig(text_config=text, vision_config=vision, **ids))
    else:
        raise ValueError(f"not a Qwen family: {family!r}")
    _set_generation_ids(model, text)
    return model.eval()


def _build_qwen(family: str, out_dir: Path) -> None:
    tokenizer = qwen_tokenizer()
    processor = build_qwen2_vl_processor(tokenizer)
    model = qwen2_vl_model(tokenizer, family=family)
    model.save_pretrained(out_dir, safe_serialization=True)
    processor.save_pretrained(out_dir)


def _build_llava(out_dir: Path, image_size: int = 56, seed: int = 0) -> None:
    """LLaVA-1.5 layout (llava-hf): CLIP vision tower, Llama text model, ``<image>`` token."""
    import torch
    import transformers as tf

    tokenizer = build_tokenizer(DEFAULT_WORDS, LLAVA_SPECIAL_TOKENS, bos_token="<s>",
                                eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
                                extra={"add_bos_token": True})
    # LLaVA's tokenizer prepends <s>; a fast tokenizer does so through its post-processor.
    from tokenizers import processors

    bos = tokenizer.convert_tokens_to_ids("<s>")
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)])
    image_processor = tf.CLIPImageProcessor(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size})
    processor = tf.LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                  patch_size=14, vision_feature_select_strategy="default",
                                  num_additional_image_tokens=1,
                                  chat_template=LLAVA_CHAT_TEMPLATE)
    torch.manual_seed(seed)
    vision = {"model_type": "clip_vision_model", "hidden_size": 32, "intermediate_size": 64,
              "num_hidden_layers": 2, "num_attention_heads": 2, "image_size": image_size,
              "patch_size": 14, "projection_dim": 32}
    text = {"model_type": "llama", **_text_dims(len(tokenizer)),
            "bos_token_id": bos, "eos_token_id": tokenizer.convert_tokens_to_ids("</s>"),
            "pad_token_id": tokenizer.convert_tokens_to_ids("<pad>")}
    config = tf.LlavaConfig(vision_config=vision, text_config=text,
                            image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
                            image_seq_length=(image_size // 14) ** 2,
                            vision_feature_select_strategy="default", vision_feature_layer=-2)
    model = tf.LlavaForConditionalGeneration(config).eval()
    _set_generation_ids(model, text)
    model.save_pretrained(out_dir, safe_serialization=True)
    processor.save_pretrained(out_dir)


def _build_internvl(out_dir: Path, image_size: int = 112, seed: int = 0) -> None:
    """InternVL3 (-hf layout): InternViT-style tower, pixel-shuffle projector, Qwen2 text model."""
    import torch
    import transformers as tf

    named = {"start_image_token": "<img>", "end_image_token": "</img>",
             "context_image_token": "<IMG_CONTEXT>", "video_token": "<video>"}
    tokenizer = build_tokenizer(DEFAULT_WORDS, INTERNVL_SPECIAL_TOKENS, eos_token="<|im_end|>",
                                pad_token="<|endoftext|>", extra={"extra_special_tokens": named})
    seq_len = (image_size // 14) ** 2 // 4  # pixel shuffle with downsample ratio 0.5
    image_processor = tf.GotOcr2ImageProcessor(
        size={"height": image_size, "width": image_size}, crop_to_patches=False,
        min_patches=1, max_patches=4)
    video_processor = tf.InternVLVideoProcessor(size={"height": image_size, "width": image_size})
    processor = tf.InternVLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                     video_processor=video_processor, image_seq_length=seq_len,
                                     chat_template=INTERNVL_CHAT_TEMPLATE)
    torch.manual_seed(seed)
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
              "num_attention_heads": 2, "image_size": image_size, "patch_size": 14}
    text = {"model_type": "qwen2", **_text_dims(len(tokenizer)),
            "bos_token_id": tokenizer.convert_tokens_to_ids("<|endoftext|>"),
            "eos_token_id": tokenizer.convert_tokens_to_ids("<|im_end|>"),
            "pad_token_id": tokenizer.convert_tokens_to_ids("<|endoftext|>")}
    config = tf.InternVLConfig(vision_config=vision, text_config=text,
                               image_token_id=tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>"),
                               image_seq_length=seq_len, downsample_ratio=0.5)
    model = tf.InternVLForConditionalGeneration(config).eval()
    _set_generation_ids(model, text)
    model.save_pretrained(out_dir, safe_serialization=True)
    processor.save_pretrained(out_dir)


def _set_generation_ids(model, text: dict[str, Any]) -> None:
    gc = model.generation_config
    gc.eos_token_id, gc.pad_token_id = text["eos_token_id"], text["pad_token_id"]
    gc.bos_token_id, gc.do_sample = text["bos_token_id"], False


def build_tiny_model(family: str, out_dir: str | Path) -> Path:
    """Build a random tiny model of ``family`` with its real processor into ``out_dir``.

    Families: ``"qwen2_vl"``, ``"qwen2_5_vl"``, ``"llava"``, ``"internvl"``. Returns the folder,
    loadable by :func:`tam_engine.inference.loading.load_model`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if family in ("qwen2_vl", "qwen2_5_vl"):
        _build_qwen(family, out)
    elif family == "llava":
        _build_llava(out)
    elif family == "internvl":
        _build_internvl(out)
    else:
        from tam_engine.testing.families import family_spec

        family_spec(family).build(out)
    return out
