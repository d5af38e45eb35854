"""Fetch a Hub model before ``tam explain`` loads it, with a progress bar on stderr."""

from __future__ import annotations

import sys

from tam_engine.inference.hub import DownloadProgress


def fetch_model(name: str, allow_pickle: bool = False) -> None:
    """Download ``name`` into the Hub cache if it is a Hub id with files missing there
    (bytes and files, speed, time left); nothing for a local folder or in offline mode.
    Ctrl+C stops it; the next run resumes where it stopped."""
    from tqdm import tqdm

    from tam_engine.inference.hub import download_model, is_hub_id

    if not is_hub_id(name):
        return
    bar: tqdm | None = None

    def on_progress(p: DownloadProgress) -> None:
        nonlocal bar
        if bar is None:
            if p.files_done == p.files_total:
                return  # all in the cache already: no bar
            bar = tqdm(total=p.bytes_total, initial=p.bytes_done, unit="B", unit_scale=True,
                       desc=f"downloading {name}", file=sys.stderr, dynamic_ncols=True)
        bar.update(p.bytes_done - bar.n)
        bar.set_postfix_str(f"{p.files_done}/{p.files_total} files, {p.file[-30:]}")

    try:
        download_model(name, allow_pickle=allow_pickle, on_progress=on_progress)
    finally:
        if bar is not None:
            bar.close()
