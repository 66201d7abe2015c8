"""Sessions on the network and on devices: aiortc tracks, the aiohttp server, inputs and outputs.

    from posetalk.streaming.server import ServerConfig, running_server

    async with running_server(ServerConfig(port=8080)) as server:   # 127.0.0.1 by default
        print(server.url)                                            # the browser page
        ...

Modules:
  ``pacing``   the pure core of outgoing media: send times, RTP timestamps from sample counts,
               what each video/audio slot carries (repeat when late, skip when behind, silence for
               audio that came too late); no asyncio, exhaustively tested
  ``tracks``   ``SessionMedia`` (the one consumer of ``Session.frames()``, fanning frames out to the
               tracks and to sinks) and the self-pacing aiortc video and audio tracks; the
               microphone pump (a remote audio track into ``Session.push_audio``, and the idle
               timeout that tells a vanished peer)
  ``server``   the aiohttp app: POST /offer, the WebSocket (control, and raw PCM in / frames out),
               portraits, /metrics, /healthz, the page; token, limits and error answers
  ``checks``   ``ServerConfig`` and the checks on what clients send (each a 400 with its reason)
  ``peers``    one client's session and everything it holds, released in one place; the control
               protocol
  ``avatars``  uploaded portraits: limits, prepared once, cached by content
  ``ice``      which addresses media may use (host interfaces, or loopback only)
  ``tls``      https://: the user's certificate, or a self-signed one kept in the cache and reused
  ``inputs``   a file or this machine's microphone into a session; a file as a WebRTC microphone
  ``outputs``  an mp4 (PyAV, in its own thread) and a virtual camera (pyvirtualcam, if installed)
  ``metrics``  Prometheus text

Depends on engine/ and models/; never imported by them."""
