"""A camera's picture: one JPEG snapshot, or a live MJPEG view; heads hidden as the profile's
`anonymizer` says (blurred by default). Frames come from the camera's worker on request, so a
view costs the pipeline one JPEG encoding per frame sent."""

from __future__ import annotations

import time
from collections.abc import Iterator

from flask import Response
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag

from appliance.api.auth import SECURITY
from appliance.api.errors import ApiError, ErrorResponse, Responses
from appliance.api.routes.cameras import ItemPath, _one
from appliance.api.routes.profile import context

LIVE_FPS = 5.0  # a live view sends at most this many frames a second
BOUNDARY = "frame"
MEDIA_ERRORS: Responses = {401: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse, 422: ErrorResponse,
                           503: ErrorResponse, 504: ErrorResponse}  # fmt: skip


def media_routes() -> APIBlueprint:
    routes = APIBlueprint("media", __name__, url_prefix="/api/v1/cameras", abp_tags=[Tag(name="cameras")],
                          abp_security=SECURITY)  # fmt: skip

    @routes.get("/<item_id>/snapshot.jpg", responses={200: None, **MEDIA_ERRORS})
    def snapshot(path: ItemPath) -> Response:
        """The camera's next frame as JPEG, heads hidden."""
        _one("cameras", path.item_id)
        image = context().snapshots.take(path.item_id)
        return Response(image.jpeg, mimetype="image/jpeg", headers={"Cache-Control": "no-store"})

    @routes.get("/<item_id>/live.mjpg", responses={200: None, **MEDIA_ERRORS})
    def live(path: ItemPath) -> Response:
        """A live view as multipart JPEG (MJPEG), at most 5 frames a second, heads hidden; only for
        cameras with `live_view: true`. At most 4 are open at once (503 beyond)."""
        _one("cameras", path.item_id)
        if not context().loaded.profile.camera(path.item_id).live_view:
            raise ApiError(409, "live_view_off", f"camera '{path.item_id}' offers no live view (cameras[].live_view)")
        snapshots = context().snapshots
        release = context().live_views.open()
        try:
            first = snapshots.take(path.item_id)  # errors (not running, no frame) before the stream starts
        except ApiError:
            release()
            raise

        def frames() -> Iterator[bytes]:
            image, interval = first, 1 / LIVE_FPS
            while True:
                sent = time.monotonic()
                yield b"--" + BOUNDARY.encode() + b"\r\nContent-Type: image/jpeg\r\n"
                yield f"Content-Length: {len(image.jpeg)}\r\n\r\n".encode() + image.jpeg + b"\r\n"
                time.sleep(max(0.0, interval - (time.monotonic() - sent)))
                try:
                    image = snapshots.take(path.item_id)
                except ApiError:
                    return  # the camera stopped: the stream ends

        response = Response(frames(), mimetype=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                            headers={"Cache-Control": "no-store"})  # fmt: skip
        response.call_on_close(release)  # when the viewer leaves, or the server stops
        return response

    return routes
