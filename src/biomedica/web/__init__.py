"""What the web apps (annotate, serve) share: the request guard and the image route.

`guard.RequestGuard` (Host check, cross-site refusal, body caps, multipart only where allowed)
and `images.ImageResponder` (`GET /api/image/{key}?size=thumb|full`, thumbnails in an LRU).
FastAPI/Starlette and Pillow are imported only when used.
"""

from biomedica.web.guard import DEFAULT_MAX_BODY, DEFAULT_MAX_UPLOAD, RequestGuard
from biomedica.web.images import ImageError, ImageResponder, ImageTooLarge, thumbnail

__all__ = ["DEFAULT_MAX_BODY", "DEFAULT_MAX_UPLOAD", "ImageError", "ImageResponder", "ImageTooLarge", "RequestGuard",
           "thumbnail"]
