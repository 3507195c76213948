"""Files in and out: image decoding with its limits (``images``), atomic writes (``files``)."""
