"""A camera-like RTSP server on 127.0.0.1 for the stream tests: gst-rtsp-server serving a live test pattern.

Runs under the system Python (GObject introspection comes from Debian packages, not PyPI):
``/usr/bin/python3 tests/rtsp_camera.py PORT`` serves rtsp://127.0.0.1:PORT/cam and prints "ready".
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402 -- after the version pins

PIPELINE = ("( videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=180,framerate=25/1 "
            "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 ! rtph264pay name=pay0 pt=96 )")

Gst.init(None)
server = GstRtspServer.RTSPServer()
server.set_service(sys.argv[1])
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(PIPELINE)
factory.set_shared(True)
server.get_mount_points().add_factory("/cam", factory)
server.attach(None)
print("ready", flush=True)
GLib.MainLoop().run()
