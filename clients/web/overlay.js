// The overlay page: watches a session over WebRTC (POST /watch) and draws the avatar on a
// transparent canvas. An alpha session's pictures arrive packed, colour on the left and the matte
// as grey on the right (the server's tracks.pack_matte): the two halves are put back together here,
// so whatever lies under the page (an OBS scene) shows around the person. Plain JavaScript.
"use strict";

(() => {
  const { api, iceComplete, control } = window.posetalkNet;
  const params = new URLSearchParams(location.search);
  const wanted = params.get("session");
  const canvas = document.getElementById("overlay");
  const ctx = canvas.getContext("2d");
  const video = document.getElementById("source");
  video.muted = params.get("muted") === "1";
  const scratch = document.createElement("canvas");
  const sctx = scratch.getContext("2d", { willReadFrequently: true });
  const state = { pc: null, ws: null, session: null, alpha: false, connection: "none", drawn: 0, error: "",
                  retry: null, image: null, shown: -1,
                  drawMs: [] };

  async function watch() {
    state.retry = null;
    const pc = new RTCPeerConnection();
    state.pc = pc;
    const remote = new MediaStream();
    video.srcObject = remote;
    pc.addEventListener("track", (ev) => { remote.addTrack(ev.track); video.play().catch(() => {}); });
    pc.addEventListener("connectionstatechange", () => {
      state.connection = pc.connectionState;
      if (pc.connectionState === "failed") end("the connection failed");
    });
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addTransceiver("audio", { direction: "recvonly" });
    await pc.setLocalDescription(await pc.createOffer());
    await iceComplete(pc, 3000);
    try {
      const answer = await api("watch", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ sdp: pc.localDescription.sdp, type: "offer", session: wanted || undefined }),
      });
      Object.assign(state, { session: answer.session, alpha: answer.alpha, error: "" });
      await pc.setRemoteDescription({ sdp: answer.sdp, type: answer.type });
    } catch (e) {
      // 404: nothing to watch yet (or the named session has gone): keep trying, quietly.
      end(e.status === 404 ? "" : e.message);
      return;
    }
    const ws = control(state.session);  // closed by the server when the session ends
    ws.addEventListener("close", () => { if (state.ws === ws) end(""); });
    state.ws = ws;
  }

  function end(error) {
    state.error = error;
    if (state.ws) { const ws = state.ws; state.ws = null; ws.close(); }
    if (state.pc) { state.pc.close(); state.pc = null; }
    state.session = null;
    state.connection = "none";
    video.srcObject = null;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (!state.retry) state.retry = setTimeout(() => watch().catch((e) => end(e.message)), 1000);
  }

  function draw() {
    requestAnimationFrame(draw);
    const w = video.videoWidth, h = video.videoHeight;
    const shown = video.getVideoPlaybackQuality().totalVideoFrames;  // a new picture since the last draw?
    if (state.pc && w && h && video.readyState >= 2 && shown !== state.shown) {
      state.shown = shown;
      const t0 = performance.now();
      const packed = state.alpha && w === 2 * h;
      const cw = packed ? w / 2 : w;
      if (canvas.width !== cw || canvas.height !== h) { canvas.width = cw; canvas.height = h; state.image = null; }
      if (!packed) {
        ctx.drawImage(video, 0, 0);
      } else {
        if (scratch.width !== w || scratch.height !== h) { scratch.width = w; scratch.height = h; }
        sctx.drawImage(video, 0, 0);
        const src = sctx.getImageData(0, 0, w, h).data;
        if (!state.image) state.image = ctx.createImageData(cw, h);
        const dst = state.image.data;
        for (let y = 0; y < h; y++) {
          let s = y * w * 4, m = s + cw * 4, d = y * cw * 4;
          for (let x = 0; x < cw; x++, s += 4, m += 4, d += 4) {
            dst[d] = src[s]; dst[d + 1] = src[s + 1]; dst[d + 2] = src[s + 2]; dst[d + 3] = src[m + 1];
          }
        }
        ctx.putImageData(state.image, 0, 0);
      }
      state.drawn++;
      state.drawMs.push(performance.now() - t0);
      if (state.drawMs.length > 50) state.drawMs.shift();
    }
  }

  // What the page shows, for scripts and tests.
  function snapshot() {
    return { connection: state.connection, session: state.session, alpha: state.alpha, drawn: state.drawn,
             width: canvas.width, height: canvas.height, videoWidth: video.videoWidth, error: state.error,
             drawMs: state.drawMs.length ? [...state.drawMs].sort((a, b) => a - b)[state.drawMs.length >> 1] : null };
  }

  window.posetalkOverlay = { snapshot };
  watch().catch((e) => end(e.message));
  requestAnimationFrame(draw);
})();
