"""A real RTSP server on loopback, fed from a video file (GStreamer's gst-rtsp-server).

    /usr/bin/python3 rtsp_server.py VIDEO PORT [h264]

Runs under Debian's Python, which has the GObject bindings (python3-gi,
gir1.2-gst-rtsp-server-1.0). Serves rtsp://127.0.0.1:PORT/live as RTP/JPEG at 10 fps, or with
`h264` an MP4's H.264 as it is (no re-encoding; each client gets the file from its start, paced at
its own rate), and prints "ready" once it listens."""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

video, port = sys.argv[1], sys.argv[2]
Gst.init(None)
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
passthrough = sys.argv[3:] == ["h264"]
if passthrough:
    factory.set_launch(f'( filesrc location="{video}" ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 )')
else:
    factory.set_launch(
        f'( filesrc location="{video}" ! decodebin ! videoconvert ! videorate '
        "! video/x-raw,framerate=10/1 ! jpegenc quality=80 ! rtpjpegpay name=pay0 pt=26 )"
    )
factory.set_shared(not passthrough)
server.get_mount_points().add_factory("/live", factory)
server.attach(None)
print("ready", flush=True)
GLib.MainLoop().run()
