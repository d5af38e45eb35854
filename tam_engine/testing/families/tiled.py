"""The tile-plus-thumbnail families of the matrix: InternVL with tiling, Idefics3, SmolVLM,
LFM2-VL, Aya Vision, Gemma 3 (pan-and-scan) and Llama 4 (refused).

Every tiny model uses 64-px tiles of 8-px patches shrunk 2 x 2 (a 4 x 4 grid per tile), so the
matrix images (128 px to 900 px) are cut into several tiles. SmolVLM's processor needs the
``num2words`` package: building or loading it without that package raises ``ImportError`` (the
tests install a stand-in; the library never does).

The oracle's ground truth (``vision_brightness``) reads the processor's own output: each tile
(or crop, or frame) in ``pixel_values`` order feeds the next run of cells, row-major, so the
``k``-th cell of a tile saw the ``k``-th block of that tile's pixels (the pixel-shuffle and
pooling orders were checked against each model's own functions).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tam_engine.testing.families import FamilySpec
from tam_engine.testing.geometry import block_means, unnormalize
from tam_engine.testing.tiny_models import (
    DEFAULT_WORDS,
    INTERNVL_CHAT_TEMPLATE,
    INTERNVL_SPECIAL_TOKENS,
    _set_generation_ids,
    _text_dims,
    build_tokenizer,
)

TILE, PATCH, SHRINK = 64, 8, 2
SIDE = TILE // PATCH // SHRINK
CELLS = SIDE * SIDE  # 16 cells per tile
# Every tiny processor normalises alike, so the oracle can undo it from the pixels alone.
MEAN = STD = [0.5, 0.5, 0.5]
IMAGE_CASES = ("square", "wide", "tall", "two", "large")
NO_VIDEO = {"video": "takes no video"}

# Chat templates in the shape of each family's own (where the media placeholders go).
SMOLVLM_CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}"
    "{% if message['content'][0]['type'] == 'image' %}{{ ':' }}{% else %}{{ ': ' }}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{ line['text'] }}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% elif line['type'] == 'video' %}"
    "{{ '<video>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
LFM2_VL_CHAT_TEMPLATE = (
    "<|startoftext|>{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}<image>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
AYA_VISION_CHAT_TEMPLATE = (
    "<BOS_TOKEN>{% for message in messages %}<|START_OF_TURN_TOKEN|>"
    "{% if message['role'] == 'user' %}<|USER_TOKEN|>{% else %}<|CHATBOT_TOKEN|>{% endif %}"
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}<image>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}"
    "<|END_OF_TURN_TOKEN|>{% endfor %}"
    "{% if add_generation_prompt %}<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>{% endif %}"
)
GEMMA3_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "<start_of_turn>{{ 'model' if message['role'] == 'assistant' else message['role'] }}\n"
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}{{ '<start_of_image>' }}"
    "{% elif c['type'] == 'text' %}{{ c['text'] | trim }}{% endif %}{% endfor %}"
    "<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
LLAMA4_CHAT_TEMPLATE = (
    "<|begin_of_text|>{% for message in messages %}<|header_start|>{{ message['role'] }}"
    "<|header_end|>\n\n{% for c in message['content'] %}{% if c['type'] == 'image' %}<|image|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}<|eot|>{% endfor %}"
    "{% if add_generation_prompt %}<|header_start|>assistant<|header_end|>\n\n{% endif %}"
)


# ---------------------------------------------------------------------------------- helpers
def _tokenizer(specials: tuple[str, ...], *, eos: str, pad: str, bos: str | None = None,
               named: dict[str, str] | None = None):
    return build_tokenizer(DEFAULT_WORDS, specials, eos_token=eos, pad_token=pad, bos_token=bos,
                           extra={"extra_special_tokens": named} if named else None)


def _text(tokenizer, *, eos: str, pad: str, bos: str, **extra: Any) -> dict[str, Any]:
    ids = tokenizer.convert_tokens_to_ids
    return {**_text_dims(len(tokenizer)), "bos_token_id": ids(bos), "eos_token_id": ids(eos),
            "pad_token_id": ids(pad), **extra}


def _vision(**extra: Any) -> dict[str, Any]:
    return {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 2, "image_size": TILE, "patch_size": PATCH, **extra}


def _save(model, text: dict[str, Any], processor, out_dir: Path) -> None:
    model.eval()
    _set_generation_ids(model, text)
    model.save_pretrained(out_dir, safe_serialization=True)
    processor.save_pretrained(out_dir)


# ---------------------------------------------------------------------------------- builders
def build_internvl_tiled(out_dir: Path, *, vocab_size: int | None = None,
                         hidden: int = 64, seed: int = 0) -> None:
    """InternVL3 whose processor config tiles: up to 6 tiles of 64 px plus the thumbnail.

    ``vocab_size`` may exceed the tokenizer's (a benchmark's realistic ``lm_head``); the extra
    rows are never produced by the tokenizer."""
    import torch
    import transformers as tf

    named = {"start_image_token": "<img>", "end_image_token": "</img>",
             "context_image_token": "<IMG_CONTEXT>", "video_token": "<video>"}
    tok = _tokenizer(INTERNVL_SPECIAL_TOKENS, eos="<|im_end|>", pad="<|endoftext|>", named=named)
    size = {"height": TILE, "width": TILE}
    processor = tf.InternVLProcessor(
        image_processor=tf.GotOcr2ImageProcessor(size=size, crop_to_patches=True, min_patches=1,
                                                 max_patches=6, image_mean=MEAN, image_std=STD),
        video_processor=tf.InternVLVideoProcessor(size=size, image_mean=MEAN, image_std=STD),
        tokenizer=tok,
        image_seq_length=CELLS, chat_template=INTERNVL_CHAT_TEMPLATE)
    torch.manual_seed(seed)
    text = _text(tok, eos="<|im_end|>", pad="<|endoftext|>", bos="<|endoftext|>",
                 model_type="qwen2", **_text_dims(vocab_size or len(tok), hidden))
    config = tf.InternVLConfig(vision_config=_vision(), text_config=text,
                               image_token_id=tok.convert_tokens_to_ids("<IMG_CONTEXT>"),
                               image_seq_length=CELLS, downsample_ratio=1 / SHRINK)
    _save(tf.InternVLForConditionalGeneration(config), text, processor, out_dir)


_IDEFICS3_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<end_of_utterance>",
                      "<fake_token_around_image>", "<image>", "<global-img>", "<video>") + tuple(
    f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7))


def _build_idefics3_like(out_dir: Path, smolvlm: bool) -> None:
    """Images resized to a longest edge of 3 tiles, then split into 64-px tiles + global."""
    import torch
    import transformers as tf

    tok = _tokenizer(_IDEFICS3_SPECIALS, eos="<end_of_utterance>", pad="<|endoftext|>")
    sizes: dict[str, Any] = {"size": {"longest_edge": 3 * TILE},
                             "max_image_size": {"longest_edge": TILE},
                             "image_mean": MEAN, "image_std": STD}
    text = _text(tok, eos="<end_of_utterance>", pad="<|endoftext|>", bos="<|im_start|>",
                 model_type="llama")
    kw = {"vision_config": _vision(), "text_config": text, "scale_factor": SHRINK,
          "image_token_id": tok.convert_tokens_to_ids("<image>")}
    torch.manual_seed(0)
    if smolvlm:
        video = tf.SmolVLMVideoProcessor(size={"longest_edge": TILE},
                                         max_image_size={"longest_edge": TILE},
                                         image_mean=MEAN, image_std=STD)
        processor: Any = tf.SmolVLMProcessor(
            image_processor=tf.SmolVLMImageProcessor(**sizes), video_processor=video,
            tokenizer=tok, image_seq_len=CELLS, chat_template=SMOLVLM_CHAT_TEMPLATE)
        model: Any = tf.SmolVLMForConditionalGeneration(tf.SmolVLMConfig(**kw))
    else:
        processor = tf.Idefics3Processor(image_processor=tf.Idefics3ImageProcessor(**sizes),
                                         tokenizer=tok, image_seq_len=CELLS,
                                         chat_template=SMOLVLM_CHAT_TEMPLATE)
        model = tf.Idefics3ForConditionalGeneration(tf.Idefics3Config(**kw))
    _save(model, text, processor, out_dir)


def build_idefics3(out_dir: Path) -> None:
    _build_idefics3_like(out_dir, smolvlm=False)


def build_smolvlm(out_dir: Path) -> None:
    """Needs ``num2words`` importable (or a stand-in installed by the caller)."""
    _build_idefics3_like(out_dir, smolvlm=True)


def build_lfm2_vl(out_dir: Path) -> None:
    """Small images whole (4..16 cells), large ones as 2..6 tiles + the thumbnail."""
    import torch
    import transformers as tf

    specials = ("<|pad|>", "<|startoftext|>", "<|im_start|>", "<|im_end|>", "<image>",
                "<|image_start|>", "<|image_end|>", "<|img_thumbnail|>") + tuple(
        f"<|img_row_{r}_col_{c}|>" for r in range(1, 7) for c in range(1, 7))
    tok = _tokenizer(specials, eos="<|im_end|>", pad="<|pad|>", bos="<|startoftext|>")
    image_processor = tf.Lfm2VlImageProcessor(
        encoder_patch_size=PATCH, downsample_factor=SHRINK, tile_size=TILE, min_tiles=2,
        max_tiles=6, min_image_tokens=4, max_image_tokens=CELLS,
        size={"height": TILE, "width": TILE}, image_mean=MEAN, image_std=STD)
    processor = tf.Lfm2VlProcessor(image_processor=image_processor, tokenizer=tok,
                                   chat_template=LFM2_VL_CHAT_TEMPLATE)
    torch.manual_seed(0)
    text = _text(tok, eos="<|im_end|>", pad="<|pad|>", bos="<|startoftext|>", model_type="lfm2",
                 layer_types=["conv", "full_attention"], block_auto_adjust_ff_dim=False)
    vision = _vision(model_type="siglip2_vision_model", num_patches=(TILE // PATCH) ** 2)
    del vision["image_size"]
    config = tf.Lfm2VlConfig(vision_config=vision, text_config=text, downsample_factor=SHRINK,
                             projector_hidden_size=64,
                             image_token_id=tok.convert_tokens_to_ids("<image>"))
    _save(tf.Lfm2VlForConditionalGeneration(config), text, processor, out_dir)


def build_aya_vision(out_dir: Path) -> None:
    """GotOcr2 tiling (the processor's default), tiles labelled TILE_k / TILE_GLOBAL."""
    import torch
    import transformers as tf

    specials = ("<PAD>", "<BOS_TOKEN>", "<|END_OF_TURN_TOKEN|>", "<|START_OF_TURN_TOKEN|>",
                "<|USER_TOKEN|>", "<|CHATBOT_TOKEN|>", "<|SYSTEM_TOKEN|>", "<image>",
                "<|START_OF_IMG|>", "<|END_OF_IMG|>", "<|IMG_PATCH|>", "<|IMG_LINE_BREAK|>",
                "TILE", "TILE_GLOBAL")
    tok = _tokenizer(specials, eos="<|END_OF_TURN_TOKEN|>", pad="<PAD>", bos="<BOS_TOKEN>")
    image_processor = tf.GotOcr2ImageProcessor(size={"height": TILE, "width": TILE},
                                               crop_to_patches=True, min_patches=1, max_patches=6,
                                               image_mean=MEAN, image_std=STD)
    processor = tf.AyaVisionProcessor(image_processor=image_processor, tokenizer=tok,
                                      patch_size=PATCH, downsample_factor=SHRINK, img_size=TILE,
                                      chat_template=AYA_VISION_CHAT_TEMPLATE)
    torch.manual_seed(0)
    text = _text(tok, eos="<|END_OF_TURN_TOKEN|>", pad="<PAD>", bos="<BOS_TOKEN>",
                 model_type="cohere2", head_dim=16, sliding_window=64)
    config = tf.AyaVisionConfig(vision_config=_vision(model_type="siglip_vision_model"),
                                text_config=text, downsample_factor=SHRINK,
                                image_token_index=tok.convert_tokens_to_ids("<|IMG_PATCH|>"))
    _save(tf.AyaVisionForConditionalGeneration(config), text, processor, out_dir)


def build_gemma3(out_dir: Path) -> None:
    """Gemma 3 whose image processor config enables pan-and-scan (crops of at least 32 px)."""
    import torch
    import transformers as tf

    specials = ("<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>",
                "<start_of_image>", "<end_of_image>", "<image_soft_token>")
    named = {"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>",
             "image_token": "<image_soft_token>"}
    tok = _tokenizer(specials, eos="<end_of_turn>", pad="<pad>", bos="<bos>", named=named)
    image_processor = tf.Gemma3ImageProcessor(
        size={"height": TILE, "width": TILE}, do_pan_and_scan=True,
        pan_and_scan_min_crop_size=32, pan_and_scan_max_num_crops=4,
        pan_and_scan_min_ratio_to_activate=1.2, image_mean=MEAN, image_std=STD)
    processor = tf.Gemma3Processor(image_processor=image_processor, tokenizer=tok,
                                   image_seq_length=CELLS, chat_template=GEMMA3_CHAT_TEMPLATE)
    torch.manual_seed(0)
    text = _text(tok, eos="<end_of_turn>", pad="<pad>", bos="<bos>", head_dim=16,
                 query_pre_attn_scalar=16, sliding_window=64)
    ids = tok.convert_tokens_to_ids
    config = tf.Gemma3Config(text_config=text,
                             vision_config=_vision(model_type="siglip_vision_model"),
                             mm_tokens_per_image=CELLS, boi_token_index=ids("<start_of_image>"),
                             eoi_token_index=ids("<end_of_image>"),
                             image_token_index=ids("<image_soft_token>"))
    _save(tf.Gemma3ForConditionalGeneration(config), text, processor, out_dir)


def build_llama4(out_dir: Path) -> None:
    """Llama 4 (loads, but transformers cannot generate with its images: refused)."""
    import torch
    import transformers as tf

    specials = ("<|finetune_right_pad_id|>", "<|begin_of_text|>", "<|eot|>", "<|header_start|>",
                "<|header_end|>", "<|image_start|>", "<|image_end|>", "<|image|>", "<|patch|>",
                "<|tile_x_separator|>", "<|tile_y_separator|>")
    pad = "<|finetune_right_pad_id|>"
    tok = _tokenizer(specials, eos="<|eot|>", pad=pad, bos="<|begin_of_text|>")
    processor = tf.Llama4Processor(
        image_processor=tf.Llama4ImageProcessor(size={"height": TILE, "width": TILE},
                                                max_patches=6),
        tokenizer=tok, patch_size=PATCH, pixel_shuffle_ratio=1 / SHRINK,
        chat_template=LLAMA4_CHAT_TEMPLATE)
    torch.manual_seed(0)
    # The pixel-shuffle MLP takes hidden / ratio^2 channels: intermediate = 4 x hidden.
    vision = _vision(intermediate_size=128, vision_output_dim=64, projector_input_dim=64,
                     projector_output_dim=64, pixel_shuffle_ratio=1 / SHRINK)
    text = _text(tok, eos="<|eot|>", pad=pad, bos="<|begin_of_text|>", head_dim=16,
                 intermediate_size_mlp=128, num_local_experts=2, attention_chunk_size=64)
    ids = tok.convert_tokens_to_ids
    config = tf.Llama4Config(vision_config=vision, text_config=text,
                             boi_token_index=ids("<|image_start|>"),
                             eoi_token_index=ids("<|image_end|>"),
                             image_token_index=ids("<|patch|>"))
    _save(tf.Llama4ForConditionalGeneration(config), text, processor, out_dir)


# ---------------------------------------------------------------------------------- oracle
def square_pieces_brightness(prepared: Any) -> np.ndarray:
    """Families whose ``pixel_values`` are square pieces (tiles, thumbnails, crops, frames),
    each feeding one run of ``SIDE x SIDE`` cells, in sequence order."""
    pv = prepared.model_inputs["pixel_values"]
    pv = pv.reshape(-1, *pv.shape[-3:])  # Idefics3/SmolVLM: (1, n, C, H, W)
    return block_means(unnormalize(pv, MEAN, STD), SIDE, SIDE).reshape(-1)


def lfm2_vl_brightness(prepared: Any) -> np.ndarray:
    """LFM2-VL's pieces are patchified (NaFlex): each piece is rebuilt from its
    ``spatial_shapes`` patches, and a cell is ``SHRINK x SHRINK`` patches, row-major."""
    inputs = prepared.model_inputs
    out = []
    for k, (hp, wp) in enumerate(np.asarray(inputs["spatial_shapes"]).reshape(-1, 2)):
        patches = inputs["pixel_values"][k, :hp * wp].reshape(hp, wp, PATCH, PATCH, 3)
        plane = patches.permute(4, 0, 2, 1, 3).reshape(3, hp * PATCH, wp * PATCH)
        out.append(block_means(unnormalize(plane, MEAN, STD),
                               hp // SHRINK, wp // SHRINK).reshape(-1))
    return np.concatenate(out)


SPECS = [
    FamilySpec("internvl_tiled", build_internvl_tiled, IMAGE_CASES + ("video",),
               square_pieces_brightness),
    FamilySpec("idefics3", build_idefics3, IMAGE_CASES, square_pieces_brightness,
               refused=NO_VIDEO),
    FamilySpec("smolvlm", build_smolvlm, IMAGE_CASES + ("video",), square_pieces_brightness),
    FamilySpec("lfm2_vl", build_lfm2_vl, IMAGE_CASES, lfm2_vl_brightness, refused=NO_VIDEO),
    FamilySpec("aya_vision", build_aya_vision, IMAGE_CASES, square_pieces_brightness,
               refused=NO_VIDEO),
    FamilySpec("gemma3", build_gemma3, IMAGE_CASES, square_pieces_brightness, refused=NO_VIDEO),
    FamilySpec("llama4", build_llama4, (), None,
               refused={case: "image_outputs" for case in IMAGE_CASES + ("video",)}),
]
